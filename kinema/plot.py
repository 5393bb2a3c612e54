"""`kinema plot RUN|SWEEP ... [--x step|train_s] [--out FILE.png|.svg]`: learning curves from
metrics.jsonl, per configuration the mean over seeds and its 95% bootstrap interval
(analysis/plot.py; matplotlib, headless)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kinema.output import emit


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("plot", help="learning curves over seeds per configuration (PNG/SVG)")
    p.add_argument("paths", nargs="+", type=Path, metavar="RUN|SWEEP",
                   help="run folders, sweep folders, or folders that hold runs")
    p.add_argument("--x", choices=("step", "train_s"), default="step",
                   help="x axis: env steps, or train seconds (wall time outside evaluation)")
    p.add_argument("--out", type=Path, default=Path("curves.png"), metavar="FILE",
                   help="the figure, .png or .svg (default curves.png)")
    p.add_argument("--title", help="the figure's title (default: the envs)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=main)
    return p


def main(a: argparse.Namespace) -> None:
    from analysis.plot import FORMATS, plot
    from analysis.runs import load_groups

    if a.out.suffix.lower() not in FORMATS:  # before any run is read
        raise ValueError(f"--out {a.out} must end in {' or '.join(FORMATS)}")
    groups = load_groups(a.paths)
    out = plot(groups, a.out, x=a.x, title=a.title)
    emit({"out": str(out), "configs": len(groups),
          "runs": sum(len(g.runs) for g in groups)}, as_json=a.json, title="plot")

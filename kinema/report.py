"""`kinema report SWEEP|RUN ... [--target R] [--json]`: per configuration (runs grouped by
their config minus the seed), final and best evaluation return over seeds as mean and IQM with
95% stratified-bootstrap intervals (analysis/), and steps and seconds to a target return."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kinema.output import console, emit_json


def add_parser(sub: Any) -> argparse.ArgumentParser:
    r = sub.add_parser("report", help="returns over seeds per configuration: mean, IQM, 95%% "
                       "bootstrap intervals, time to a target")
    r.add_argument("paths", nargs="+", type=Path, metavar="SWEEP|RUN",
                   help="sweep folders, run folders, or folders that hold runs")
    r.add_argument("--target", type=float, metavar="R", help="target return for steps and "
                   "seconds to target (default: the runs' --target-return, when they share one)")
    r.add_argument("--json", action="store_true", help="print the rows as one JSON object")
    r.set_defaults(handler=main)
    return r


def main(a: argparse.Namespace) -> None:
    import math

    from analysis.report import report
    from analysis.runs import load_groups

    if a.target is not None and not math.isfinite(a.target):
        raise ValueError(f"--target {a.target} is not a finite number")
    rows = report(load_groups(a.paths), a.target)
    if a.json:
        emit_json({"configs": rows})
        return
    console.print(table(rows))


def _interval(row: dict[str, Any], key: str) -> str:
    point, ci = row[key], row[f"{key}_ci"]
    return "-" if point is None else f"{point:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"


def table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    t = Table(title="returns over seeds: point [95% stratified-bootstrap interval]")
    for col in ("config", "env", "seeds", "final mean", "final IQM", "best mean", "best IQM",
                "target", "reached", "steps to target", "train s to target"):
        t.add_column(col, overflow="fold")
    for r in rows:
        steps, secs = r["steps_to_target"], r["train_s_to_target"]
        t.add_row(r["config"], r["env"], str(r["evaluated"]),
                  *(_interval(r, f"{w}_return_{s}") for w in ("final", "best")
                    for s in ("mean", "iqm")),
                  "-" if r["target"] is None else f"{r['target']:g}",
                  "-" if r["reached"] is None else f"{r['reached']}/{r['evaluated']}",
                  "-" if steps is None else f"{steps:.0f}",
                  "-" if secs is None else f"{secs:.1f}")
    return t

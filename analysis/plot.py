"""Learning curves of many runs: per configuration, the mean evaluation return over seeds and
its 95% bootstrap interval (analysis/stats.py), against env steps or train seconds.

matplotlib draws on its Agg canvas (no display, no pyplot state), so it works headless. The
seeds of a configuration are put on one grid of x values: every x at which one of them
evaluated, from the last first evaluation (so that every seed has a value everywhere) to the
last evaluation of any seed. A seed's return between its evaluations is interpolated linearly,
and after its last evaluation (a run that stopped at its target) it keeps its last return.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.runs import Group
from analysis.stats import interval
from data.files import write_atomic

AXES = {"step": "env steps", "train_s": "train seconds (wall time outside evaluation)"}
FORMATS = (".png", ".svg")
SIZE, DPI = (8.0, 5.0), 100
"""Figure size in inches and dots per inch: a PNG of 800 x 500 pixels."""
MAX_POINTS = 200
CURVE_REPS = 2_000
"""Bootstrap repetitions per curve point: enough for a band that is drawn, not tabulated."""


def curve_grid(group: Group, x: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(grid (P,), returns (n_seeds, P)) of a configuration's evaluated runs."""
    if x not in AXES:
        raise ValueError(f"--x {x!r} is not an axis; expected one of {', '.join(AXES)}")
    series = []
    for r in group.runs:
        pts = [(e[x], e["return_mean"]) for e in r.evals if isinstance(e.get(x), int | float)]
        if pts:
            xs, ys = (np.array(v, dtype=np.float64) for v in zip(*sorted(pts), strict=True))
            series.append((xs, ys))
    if not series:
        return np.zeros(0), np.zeros((0, 0))
    start = max(xs[0] for xs, _ in series)
    grid = np.unique(np.concatenate([xs for xs, _ in series]))
    grid = grid[grid >= start]
    if len(grid) > MAX_POINTS:
        grid = np.linspace(grid[0], grid[-1], MAX_POINTS)
    values = np.stack([np.interp(grid, xs, ys) for xs, ys in series])  # right: held
    return grid, values


def plot(groups: list[Group], out: Path, *, x: str = "step", title: str | None = None) -> Path:
    """Draw the curves of `groups` into `out` (.png or .svg, by its suffix); returns `out`."""
    out = Path(out)
    fig = _figure(out)
    ax = fig.add_subplot()
    drawn = 0
    for i, g in enumerate(groups):
        grid, values = curve_grid(g, x)
        if values.size == 0:
            continue
        color = f"C{i % 10}"
        mean = values.mean(axis=0)
        ax.plot(grid, mean, color=color, label=f"{g.label} ({len(values)} seeds)")
        if len(values) > 1:
            lo, hi = interval([values], np.mean, reps=CURVE_REPS)
            ax.fill_between(grid, lo, hi, color=color, alpha=0.2, linewidth=0)
        else:
            ax.plot(grid, mean, "o", color=color, markersize=3)
        drawn += 1
    if not drawn:
        raise ValueError("none of the runs has an evaluation to plot (metrics.jsonl has no "
                         "'eval' record yet)")
    envs = sorted({g.env for g in groups})
    ax.set_title(title or f"{', '.join(envs)}: mean evaluation return, 95% bootstrap interval")
    ax.set_xlabel(AXES[x])
    ax.set_ylabel("evaluation return")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, out)


def _figure(out: Path, size: tuple[float, float] = SIZE) -> Any:
    """A matplotlib Figure on the Agg canvas, for `out` (whose suffix is checked)."""
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"--out {out} must end in {' or '.join(FORMATS)}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ValueError("plotting needs matplotlib, which the sweep extra installs: pip "
                         "install -e '.[sweep]' (scripts/setup.sh installs every extra)") from None
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, out: Path) -> Path:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=out.suffix.lower()[1:])
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, buf.getvalue())  # a reader never sees half a picture
    return out


Bar = tuple[str, list[float], list[bool]]
"""(label, one value per seed, whether each seed reached the target)."""


def bars(panels: list[tuple[str, list[Bar]]], out: Path, *, title: str, ylabel: str,
         size: tuple[float, float] = SIZE) -> Path:
    """One panel per (title, bars): each bar the median over seeds, each seed a point (hollow
    where it missed the target, so its value is the budget it spent); returns `out`."""
    out = Path(out)
    if not panels:
        raise ValueError("nothing to draw: no panel has a bar")
    fig = _figure(out, size)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    for k, (name, group) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        for i, (_, values, solved) in enumerate(group):
            color = f"C{i % 10}"
            ax.bar(i, float(np.median(values)), width=0.6, color=color, alpha=0.5)
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
            for dx, v, ok in zip(jitter, values, solved, strict=True):
                ax.plot(i + dx, v, "o", markersize=4, color=color,
                        markerfacecolor=color if ok else "none")
        ax.set_xticks(range(len(group)), [label for label, _, _ in group])
        ax.set_title(name, fontsize="small")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel(ylabel, fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return _save(fig, out)

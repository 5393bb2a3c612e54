"""How results reach a person: a short rich table, or one JSON object on the last line."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# A pipe gets wide lines rather than rich's 80-column default: tables stay one row per entry.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _flush_c_stdio() -> None:
    import ctypes

    sys.stdout.flush()
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def emit_json(obj: Any) -> None:
    """One JSON line, guaranteed last on stdout."""
    _flush_c_stdio()  # what a C library buffered goes out first: our JSON stays last
    print(json.dumps(obj), flush=True)


def emit(result: dict[str, Any], *, as_json: bool, title: str = "") -> None:
    """Print `result` as a two-column table, or as one JSON line (non-finite -> null)."""
    if as_json:
        emit_json({k: _clean(v) for k, v in result.items()})
        return
    table = Table(title=title or None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in result.items():
        table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
    console.print(table)


def training_progress(total: int, *, enabled: bool = True) -> tuple[Progress, Callable[..., None]]:
    """A rich progress bar over env steps showing steps/s and the latest evaluation return."""
    progress = Progress(
        TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[sps]} steps/s"), TextColumn("eval {task.fields[ret]}"),
        TimeElapsedColumn(), console=err_console,
        disable=not (enabled and err_console.is_terminal),  # a pipe gets no bar redraws
    )
    task = progress.add_task("train", total=total, sps="-", ret="-")

    def update(p: Any) -> None:
        ret = "-" if p.last_eval is None else f"{p.last_eval:.1f}"
        progress.update(task, completed=p.step, sps=f"{p.steps_per_s:.0f}", ret=ret)

    return progress, update

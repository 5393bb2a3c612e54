"""How results reach a person: a short rich table, or one JSON object on the last line."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# A pipe gets wide lines rather than rich's 80-column default: tables stay one row per entry.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

PROGRESS_INTERVAL_S = 5.0
"""Seconds between two plain progress lines when stderr is not a terminal."""


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


class PlainProgress:
    """Training progress for a stderr that is not a terminal (a log file, CI, a pipe): one
    plain line every `interval` seconds of `clock`, and a last one when the block ends."""

    def __init__(self, total: int, stream: TextIO, *, interval: float = PROGRESS_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.stream, self.interval, self.clock = total, stream, interval, clock
        self._start = self._next = 0.0
        self._pending: Any = None  # the newest update not yet printed

    def __enter__(self) -> PlainProgress:
        self._start = self.clock()
        self._next = self._start + self.interval
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._pending is not None and exc_type is None:
            self._write(self._pending, self.clock())

    def update(self, p: Any) -> None:
        """`p`: agents.loops.core.Progress (step, total, steps_per_s, last_eval,
        recent_return)."""
        now = self.clock()
        self._pending = p
        if now >= self._next:
            self._write(p, now)
            self._next = now + self.interval

    def line(self, p: Any, elapsed: float) -> str:
        total = p.total or self.total
        done = f"{p.step}/{total}" if total else f"{p.step}"
        pct = f" ({p.step / total:.0%})" if total else ""
        ev = "-" if p.last_eval is None else f"{p.last_eval:.1f}"
        ep = "-" if p.recent_return is None else f"{p.recent_return:.1f}"
        m, s = divmod(int(elapsed), 60)
        return (f"train {done} steps{pct}, {p.steps_per_s:.0f} steps/s, eval return {ev}, "
                f"episode return {ep}, {m // 60}:{m % 60:02d}:{s:02d} elapsed")

    def _write(self, p: Any, now: float) -> None:
        print(self.line(p, now - self._start), file=self.stream, flush=True)
        self._pending = None


def _ignore(_: Any) -> None:
    pass


def training_progress(
    total: int, *, enabled: bool = True, stream: TextIO | None = None,
    interval: float = PROGRESS_INTERVAL_S, clock: Callable[[], float] = time.monotonic,
) -> tuple[AbstractContextManager[Any], Callable[..., None]]:
    """Progress over env steps (steps/s, latest evaluation return, recent episode return):
    a rich bar on a terminal, plain lines every `interval` seconds otherwise (`stream`, default
    stderr), nothing when not `enabled` (--no-progress, --json)."""
    if not enabled:
        return nullcontext(), _ignore
    tty = err_console.is_terminal if stream is None else stream.isatty()
    if not tty:
        plain = PlainProgress(total, stream or sys.stderr, interval=interval, clock=clock)
        return plain, plain.update
    progress = Progress(
        TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[sps]} steps/s"), TextColumn("eval {task.fields[ret]}"),
        TimeElapsedColumn(), console=err_console,
    )
    task = progress.add_task("train", total=total or None, sps="-", ret="-")

    def update(p: Any) -> None:
        ret = "-" if p.last_eval is None else f"{p.last_eval:.1f}"
        progress.update(task, completed=p.step, total=p.total or total or None,
                        sps=f"{p.steps_per_s:.0f}", ret=ret)

    return progress, update

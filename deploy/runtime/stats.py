"""Latency bookkeeping shared by the runner, the ROS node and the benchmarks (numpy only)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def percentile_us(seconds: Sequence[float] | np.ndarray, q: float) -> float | None:
    """The q-th percentile of durations given in seconds, in microseconds; None when empty."""
    if len(seconds) == 0:
        return None
    return float(np.percentile(np.asarray(seconds, np.float64), q) * 1e6)


class LatencyWindow:
    """The last `size` durations (seconds) in a ring buffer, so a node that runs for days
    reports recent percentiles in constant memory."""

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"size is {size}; expected 1 or more")
        self._buf = np.zeros(size, np.float64)
        self._n = 0  # total added; the buffer holds min(_n, size) of them

    def add(self, seconds: float) -> None:
        self._buf[self._n % self._buf.shape[0]] = seconds
        self._n += 1

    @property
    def count(self) -> int:
        return self._n

    def values(self) -> np.ndarray:
        return self._buf[: min(self._n, self._buf.shape[0])]

    def p_us(self, q: float) -> float | None:
        return percentile_us(self.values(), q)


def time_calls(fn: Callable[[Any], Any], arg: Any, calls: int, warmup: int = 100) -> np.ndarray:
    """Durations (seconds) of `calls` calls fn(arg), after `warmup` untimed ones."""
    for _ in range(warmup):
        fn(arg)
    out = np.empty(calls, np.float64)
    clock = time.perf_counter
    for i in range(calls):
        t0 = clock()
        fn(arg)
        out[i] = clock() - t0
    return out

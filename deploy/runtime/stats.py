"""Latency bookkeeping shared by the runner, the ROS node and the benchmarks (numpy only)."""

from __future__ import annotations

import math
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
    """The last `size` durations (seconds), with percentiles in constant time and memory.

    Each duration is counted in a log-spaced bin (1% wide, so a percentile is within 0.5% of
    the exact one) and a ring buffer remembers the last `size` bins, so the oldest leaves the
    histogram as a new one enters. `add` is O(1) and a percentile O(bins): a ROS node that
    publishes its status every 100 ms spends microseconds on it, not the milliseconds that
    np.percentile over a 65536-sample window costs, on the thread that runs its control loop.
    """

    MIN_S = 1e-7
    """Durations up to 100 ns share the first bin (reported as 0)."""
    MAX_S = 100.0
    RATIO = 1.01
    BINS = 2 + math.ceil(math.log(MAX_S / MIN_S) / math.log(RATIO))
    """Bin 0: <= MIN_S; bins 1..: up to 100 s; the last holds anything longer (or infinite)."""

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"size is {size}; expected 1 or more")
        self._size = size
        self._ring = np.zeros(size, np.int32)  # bin of each remembered duration
        self._counts = np.zeros(self.BINS, np.int64)
        self._n = 0  # total added; the window holds min(_n, size) of them
        self._log_min = math.log(self.MIN_S)
        self._inv_log_ratio = 1.0 / math.log(self.RATIO)
        edges = self.MIN_S * self.RATIO ** (np.arange(self.BINS) - 0.5)
        self._value = np.where(np.arange(self.BINS) == 0, 0.0, edges)  # bin b's value, s

    def add(self, seconds: float) -> None:
        if not seconds > self.MIN_S:  # also NaN
            b = 0
        elif seconds < self.MAX_S:
            b = min(self.BINS - 2, 1 + int((math.log(seconds) - self._log_min)
                                           * self._inv_log_ratio))
        else:  # also infinity
            b = self.BINS - 1
        i = self._n % self._size
        if self._n >= self._size:
            self._counts[self._ring[i]] -= 1
        self._ring[i] = b
        self._counts[b] += 1
        self._n += 1

    @property
    def count(self) -> int:
        return self._n

    def __len__(self) -> int:
        """How many durations the window holds now."""
        return min(self._n, self._size)

    def p_us(self, q: float) -> float | None:
        """The q-th percentile of the window in microseconds (nearest rank); None when empty."""
        return self.percentiles_us((q,))[0]

    def percentiles_us(self, qs: Sequence[float]) -> list[float | None]:
        """Several percentiles from one pass over the bins."""
        n = len(self)
        if n == 0:
            return [None for _ in qs]
        cum = np.cumsum(self._counts)
        ranks = [min(n, 1 + round(q / 100.0 * (n - 1))) for q in qs]
        bins = np.searchsorted(cum, ranks)  # first bin holding the rank-th smallest
        return [float(self._value[b] * 1e6) for b in bins]


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

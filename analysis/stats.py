"""Aggregate scores over runs as rliable does (Agarwal et al. 2021, "Deep Reinforcement
Learning at the Edge of the Statistical Precipice"): the interquartile mean and percentile
intervals from a stratified bootstrap, in numpy.

Stratified bootstrap: each task's runs are resampled with replacement within that task, then
the statistic is computed over all resampled scores together; repeated `reps` times, the 2.5th
and 97.5th percentiles of the statistic are the 95% interval (rliable's
`get_interval_estimates`, which uses arch's StratifiedBootstrap with the percentile method and
50,000 repetitions). With one task it is the ordinary bootstrap over seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

Statistic = Callable[..., NDArray[np.float64]]
"""statistic(x, axis=a): the statistic of `x` along axis `a` (np.mean, iqm)."""
REPS = 50_000
"""rliable's default number of bootstrap repetitions."""


def iqm(x: ArrayLike, axis: int | None = None) -> NDArray[np.float64]:
    """Interquartile mean: the mean of the middle 50% of scores, as rliable computes it with
    scipy.stats.trim_mean(x, 0.25): int(0.25 n) scores are cut from each end."""
    a = np.sort(np.asarray(x, dtype=np.float64), axis=axis)
    if axis is None:
        a, axis = a.ravel(), 0
    n = a.shape[axis]
    cut = int(0.25 * n)
    return np.asarray(np.take(a, np.arange(cut, n - cut), axis=axis).mean(axis=axis))


def stratified_bootstrap(tasks: Sequence[ArrayLike], statistic: Statistic, *, reps: int = REPS,
                         seed: int = 0) -> NDArray[np.float64]:
    """The statistic of `reps` stratified resamples.

    tasks[t] holds task t's scores, shape (n_t, *rest) (rest: e.g. points of a curve, the same
    for every task). Each repetition draws n_t runs with replacement from each task and applies
    `statistic` along the runs of all tasks together. Returns shape (reps, *rest).
    """
    if not tasks:
        raise ValueError("a bootstrap needs at least one task")
    rng = np.random.default_rng(seed)
    drawn = []
    for scores in tasks:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim == 0 or s.shape[0] == 0:
            raise ValueError("every task needs at least one run")
        idx = rng.integers(0, s.shape[0], size=(reps, s.shape[0]))
        drawn.append(s[idx])  # (reps, n_t, *rest)
    return np.asarray(statistic(np.concatenate(drawn, axis=1), axis=1))


def interval(tasks: Sequence[ArrayLike], statistic: Statistic, *, confidence: float = 0.95,
             reps: int = REPS, seed: int = 0) -> NDArray[np.float64]:
    """The percentile interval of `statistic` from a stratified bootstrap: shape (2, *rest),
    lower then upper bound (numpy's linear percentile)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    values = stratified_bootstrap(tasks, statistic, reps=reps, seed=seed)
    tail = 100 * (1 - confidence) / 2
    return np.asarray(np.percentile(values, [tail, 100 - tail], axis=0))


def point_and_interval(scores: ArrayLike, statistic: Statistic, *, reps: int = REPS,
                       seed: int = 0) -> tuple[float, tuple[float, float]]:
    """One task's statistic and its 95% interval, as Python floats."""
    s = np.asarray(scores, dtype=np.float64)
    lo, hi = interval([s], statistic, reps=reps, seed=seed)
    return float(statistic(s, axis=0)), (float(lo), float(hi))

"""The rliable statistics (analysis/stats.py) against hand computations: the IQM of fixed
numbers, and bootstrap intervals against the exact bootstrap distribution, enumerated."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.stats import interval, iqm, point_and_interval, stratified_bootstrap


def exact_percentile_interval(scores: list[float], statistic) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the exact bootstrap distribution: the statistic of
    each of the n^n equally likely resamples (ordered draws with replacement)."""
    values = [float(statistic(np.array(draw), axis=0))
              for draw in itertools.product(scores, repeat=len(scores))]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def test_iqm_is_the_mean_of_the_middle_half():
    # 8 scores: int(0.25 * 8) = 2 cut from each end -> mean(3, 4, 5, 6) = 4.5
    assert iqm([1, 2, 3, 4, 100, 5, 6, 7]) == 4.5
    # 5 scores: int(1.25) = 1 cut from each end -> mean(2, 4, 8) = 14 / 3
    assert iqm([16, 1, 8, 2, 4]) == pytest.approx(14 / 3)
    # fewer than 4 scores: nothing is cut
    assert iqm([1, 2, 9]) == 4.0
    assert iqm([[1, 2], [3, 100], [5, 6], [7, 8]], axis=0).tolist() == [4.0, 7.0]


def test_iqm_matches_scipy_trim_mean_as_rliable_computes_it():
    scipy_stats = pytest.importorskip("scipy.stats", reason="scipy is not installed")
    rng = np.random.default_rng(3)
    for n in (1, 3, 4, 7, 10, 25):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(scipy_stats.trim_mean(x, proportiontocut=0.25))


def test_mean_interval_is_the_exact_bootstrap_percentile_interval():
    # The 4^4 = 256 equally likely resamples of [1, 2, 4, 8]: P(mean < 1.5) = 5/256 (0.020)
    # and P(mean <= 1.5) = 11/256 (0.043), so the 2.5th percentile is 1.5; symmetrically
    # P(mean < 6.5) = 0.965 and P(mean <= 6.5) = 0.980, so the 97.5th is 6.5.
    scores = [1.0, 2.0, 4.0, 8.0]
    assert exact_percentile_interval(scores, np.mean) == (1.5, 6.5)
    for seed in (0, 1, 2):
        lo, hi = interval([scores], np.mean, seed=seed)
        assert (lo, hi) == (1.5, 6.5)
    point, ci = point_and_interval(scores, np.mean)
    assert point == 3.75 and ci == (1.5, 6.5)


def test_iqm_interval_is_the_exact_bootstrap_percentile_interval():
    # 5^5 = 3125 resamples of [1, 2, 4, 8, 16]; the IQM of a resample is the mean of its
    # middle three. Lowest 2.5%: middle three {1, 1, 2} -> 4/3; highest: {8, 16, 16} -> 40/3.
    scores = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert exact_percentile_interval(scores, iqm) == pytest.approx((4 / 3, 40 / 3))
    lo, hi = interval([scores], iqm)
    assert (lo, hi) == pytest.approx((4 / 3, 40 / 3))
    assert point_and_interval(scores, iqm)[0] == pytest.approx(14 / 3)


def test_the_bootstrap_is_stratified_by_task():
    # Task A always scores 10, task B 0: every stratified resample has three of each, so the
    # mean over both is 5 in every repetition. Pooling the six runs would not keep that.
    tasks = [[10.0, 10.0, 10.0], [0.0, 0.0, 0.0]]
    assert interval(tasks, np.mean).tolist() == [5.0, 5.0]
    pooled = interval([[10.0, 10.0, 10.0, 0.0, 0.0, 0.0]], np.mean)
    assert pooled[0] < 5 < pooled[1]
    # tasks with different run counts: each keeps its own count (2 and 1 runs: mean of 3)
    values = stratified_bootstrap([[0.0, 3.0], [6.0]], np.mean, reps=2000)
    assert set(np.round(values, 9)) == {2.0, 3.0, 4.0}


def test_seeded_and_vectorized_over_curve_points():
    curves = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])  # 3 seeds x 2 points
    a = interval([curves], np.mean, reps=5000, seed=7)
    b = interval([curves], np.mean, reps=5000, seed=7)
    assert a.shape == (2, 2) and (a == b).all()
    for p in range(2):  # each point's interval is that point's own bootstrap
        assert a[:, p].tolist() == interval([curves[:, p]], np.mean, reps=5000, seed=7).tolist()


def test_refusals():
    with pytest.raises(ValueError, match="at least one task"):
        interval([], np.mean)
    with pytest.raises(ValueError, match="at least one run"):
        interval([[]], np.mean)
    with pytest.raises(ValueError, match="confidence"):
        interval([[1.0]], np.mean, confidence=1.5)

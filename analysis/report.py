"""Per configuration: final and best evaluation return over seeds (mean, IQM, each with its
95% stratified-bootstrap interval), and env steps and train seconds to a target return.

"Final" is a run's last evaluation (return_mean of its last "eval" record), "best" its highest.
Time to target is the first evaluation whose return_mean reaches the target: its step and its
train_s (wall time outside evaluation); the median is over the seeds that reached it, and
`reached` says how many did.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from analysis.runs import Group, RunData
from analysis.stats import REPS, iqm, point_and_interval


def first_reaching(run: RunData, target: float) -> dict[str, Any] | None:
    """The first evaluation record of `run` whose return_mean is at least `target`."""
    return next((e for e in run.evals if e["return_mean"] >= target), None)


def summarize(group: Group, target: float | None = None, *, reps: int = REPS,
              seed: int = 0) -> dict[str, Any]:
    """One row of `kinema report` for `group` (non-finite or missing values are None)."""
    evaluated = [r for r in group.runs if r.evals]
    row: dict[str, Any] = {"config": group.label, "algo": group.algo, "env": group.env,
                           "runs": len(group.runs), "evaluated": len(evaluated),
                           "seeds": [r.seed for r in group.runs]}
    final = [r.evals[-1]["return_mean"] for r in evaluated]
    best = [max(e["return_mean"] for e in r.evals) for r in evaluated]
    for name, scores in (("final", final), ("best", best)):
        for stat_name, stat in (("mean", np.mean), ("iqm", iqm)):
            point, ci = (point_and_interval(scores, stat, reps=reps, seed=seed) if scores
                         else (None, None))
            row[f"{name}_return_{stat_name}"] = point
            row[f"{name}_return_{stat_name}_ci"] = list(ci) if ci else None
    if target is None:
        targets = {r.train.get("target_return") for r in group.runs}
        target = targets.pop() if len(targets) == 1 else None
    row["target"] = target
    hits = [] if target is None else [h for r in evaluated
                                      if (h := first_reaching(r, target)) is not None]
    row["reached"] = len(hits) if target is not None else None
    for key in ("step", "train_s"):
        values = [h[key] for h in hits if isinstance(h.get(key), int | float)]
        row[f"{'steps' if key == 'step' else key}_to_target"] = (
            statistics.median(values) if values else None)
    row["steps"] = max((r.evals[-1]["step"] for r in evaluated), default=None)
    return row


def report(groups: list[Group], target: float | None = None, *, reps: int = REPS,
           seed: int = 0) -> list[dict[str, Any]]:
    """A row per configuration, in group order."""
    return [summarize(g, target, reps=reps, seed=seed) for g in groups]

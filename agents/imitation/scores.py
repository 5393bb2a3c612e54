"""Reference scores of imitation: the expert-normalized score and its two reference returns.

Every imitation evaluation logs (R - R_random) / (R_expert - R_random), as the `imitation`
library and D4RL report it: R_random is uniform random actions and R_expert the expert, both on
the evaluation seeds; an expert that cannot be replayed cheaply (a person, MPC) is represented
by the mean return of its demonstrations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import sim
from agents.experts.base import Expert, make_expert
from agents.runs.evaluation import EVAL_SEED, evaluate
from data.record import run_episode


def expert_normalized_score(ret: float, random_ret: float, expert_ret: float) -> float:
    """(R - R_random) / (R_expert - R_random): 0 is random, 1 is the expert."""
    return (ret - random_ret) / (expert_ret - random_ret)


def random_return(env: str, episodes: int, **options: Any) -> float:
    """Mean return of uniform random actions on the evaluation seeds (numpy RNG seeded 0), on
    the env made with the sim.make `options`."""
    info, rng = sim.spec(env).info, np.random.default_rng(0)

    def act(obs: np.ndarray) -> np.ndarray:
        if info.discrete:
            return rng.integers(info.act_dim, size=len(obs))
        return rng.uniform(-1.0, 1.0, (len(obs), *info.action_shape)).astype(np.float32)

    return float(evaluate(act, env, episodes, **options).mean())


def expert_return(expert: Expert, env: str, episodes: int, **options: Any) -> float:
    """Mean return of `expert` on the evaluation seeds, one env per episode (experts see it),
    made with the sim.make `options`."""
    e = sim.make(env, render_mode=expert.render_mode, **options)
    try:
        discrete = sim.spec(env).info.discrete
        eps = [run_episode(e, expert, EVAL_SEED + i, discrete=discrete)[0] for i in range(episodes)]
    finally:
        e.close()
    return float(np.mean([ep.total_return for ep in eps if ep is not None]))


def reference_returns(env: str, expert_spec: dict[str, Any], demo_returns: np.ndarray,
                      episodes: int, expert: Expert | None = None,
                      options: dict[str, Any] | None = None) -> dict[str, float]:
    """{"random", "expert"} returns for the normalized score (see the module docstring), on the
    env made with the sim.make `options` (a run's --dynamics: the expert replays there; a
    dataset-only expert's demonstrations stand, as recorded)."""
    options = options or {}
    while expert_spec.get("kind") == "dagger":  # a DAgger dataset: its labelling expert
        expert_spec = expert_spec["expert"]
    kind = expert_spec.get("kind")
    if expert is None and kind in ("scripted", "run"):
        try:
            expert = make_expert("scripted" if kind == "scripted" else expert_spec["run"], env)
        except (ValueError, OSError):
            expert = None  # e.g. the expert's run folder was moved: use the demonstrations
    replayable = expert is not None and expert.spec.get("kind") in ("scripted", "run")
    ref = expert_return(expert, env, episodes, **options) if replayable and expert else float(
        np.mean(demo_returns))
    return {"random": random_return(env, episodes, **options), "expert": ref}


def score_fields(reference: dict[str, float], labels: int, extra: dict[str, Any] | None = None
                 ) -> Callable[[float], dict[str, Any]]:
    """eval_fields for the loop core: the references, the labels, the normalized score, and
    `extra` after them."""
    def fields(return_mean: float) -> dict[str, Any]:
        return {"expert_return": reference["expert"], "random_return": reference["random"],
                "labels": labels, "normalized_score": expert_normalized_score(
                    return_mean, reference["random"], reference["expert"]), **(extra or {})}
    return fields

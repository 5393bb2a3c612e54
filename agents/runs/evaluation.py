"""Evaluation protocol shared by every algorithm and by the benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import sim

EVAL_SEED = 10_000
"""Evaluation episode i uses seed EVAL_SEED + i, for every algorithm and peer."""

Evaluator = Callable[[Callable[[np.ndarray], np.ndarray], str, int], np.ndarray]
"""(act, env, episodes) -> returns: the shape of `evaluate`, which loops take as a parameter."""


def evaluate(
    act: Callable[[np.ndarray], np.ndarray], env: str, episodes: int = 10, *, seed: int = EVAL_SEED,
    **options: Any,
) -> np.ndarray:
    """Returns of `episodes` episodes, episode i seeded with seed + i, run as one vector env
    (built with the sim.make `options`: a run's changed dynamics).

    `act` maps a batch of observations [B, obs_dim] to env actions [B, ...]; it should be
    deterministic for the protocol's numbers to mean anything.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    envs = sim.make_vec(env, episodes, **options)
    try:
        obs, _ = envs.reset(seed=[seed + i for i in range(episodes)])  # type: ignore[arg-type]
        returns = np.zeros(episodes)
        done = np.zeros(episodes, dtype=bool)
        while not done.all():
            action = np.asarray(act(obs))
            obs, reward, terminated, truncated, _ = envs.step(action)
            returns += np.where(done, 0.0, reward)
            done |= terminated | truncated
        return returns
    finally:
        envs.close()


def rollout_observations(
    act: Callable[[np.ndarray], np.ndarray], env: str, steps: int = 1000, *, seed: int = EVAL_SEED
) -> np.ndarray:
    """Observations [steps, obs_dim] visited by `act` (for export parity on real inputs);
    camera frames [C, H, W] come flattened, as an export's graph takes them."""
    e = sim.make(env, seed=seed)
    try:
        obs, _ = e.reset(seed=seed)
        out = []
        for _ in range(steps):
            out.append(obs)
            obs, _, terminated, truncated, _ = e.step(np.asarray(act(obs[None]))[0])
            if terminated or truncated:
                obs, _ = e.reset()
        return np.stack(out).astype(np.float32).reshape(len(out), -1)
    finally:
        e.close()

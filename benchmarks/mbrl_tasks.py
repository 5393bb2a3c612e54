"""The tasks of `kinema bench mbrl` (benchmarks/mbrl.py runs them, mbrl_report.py writes their
tables): each env's target, budgets and evaluation interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Learning:
    env: str
    target: float
    pets_steps: int
    sac_steps: int
    eval_every: int


LEARNING = {
    "pendulum": Learning("pendulum", -200, 3_000, 20_000, 100),
    "inverted-pendulum": Learning("inverted-pendulum", 1000, 5_000, 50_000, 250),
    "cartpole-swingup": Learning("cartpole-swingup", 800, 30_000, 300_000, 1_000),
}


SVG_STEPS = {"pendulum": 8_000}
"""Budgets of the SVG(H) rows (agents/model_based/svg.py), run as `kinema-svg` with the Kinema
rows and evaluated at the same points."""


MBPO_TASKS = {"mbpo-pendulum": ("pendulum", 3_000),
              "mbpo-inverted-pendulum": ("inverted-pendulum", 10_000)}
"""MBPO rows (agents/model_based/mbpo.py): task -> (env, MBPO's budget). Each runs MBPO, Kinema
SAC and SB3 SAC side by side in one run, evaluated at the env's points (LEARNING)."""


MBPO_FINAL = {"mbpo-hopper-30k": "hopper", "mbpo-halfcheetah-30k": "halfcheetah"}
"""MBPO's fixed-budget rows (issue 11): task -> env. MBPO runs benchmarks.rl's sac-ENV-30k task
(30k env steps, evaluated every 10k) from its own preset, beside Kinema SAC and SB3 SAC on that
same task, in one run."""


PETS_FINAL = {"pets-halfcheetah-20k": ("halfcheetah", 20_000)}
"""PETS's fixed-budget rows (issue 10): task -> (env, env steps). PETS and Kinema SAC and SB3
SAC run benchmarks.rl's sac-ENV-30k task cut to that budget, in one run; PETS plans with
PETS_CPU over its preset and is evaluated once, at the end (10 episodes of planning)."""
PETS_CPU: dict[str, Any] = {"samples": 100, "horizon": 15, "particles": 5, "elites": 10}
"""The PETS rows' planner over the preset (K 200, H 30, P 10): 4.1 against 33 GFLOP per
step on half-cheetah, so 20k env steps and a 10-episode evaluation fit in an hour of one
CPU thread. The model (5 members of 3 x 200) and the data schedule stay the preset's."""


MVE_TASKS = {"mve-pendulum": "pendulum"}
"""Model-based value expansion rows (issue 11): task -> env. Kinema SAC with MVE (the overrides
below) beside SAC's preset without it and SB3 SAC, on the env's LEARNING task."""
MVE = {"mve_horizon": 3, "model_hidden": (200, 200)}
"""The MVE rows' settings over SAC's preset: H = 3 model steps, a 2 x 200 ensemble."""

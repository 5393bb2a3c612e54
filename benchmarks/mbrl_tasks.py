"""The tasks of `kinema bench mbrl` (benchmarks/mbrl.py runs them, mbrl_report.py writes their
tables): each env's target, budgets and evaluation interval."""

from __future__ import annotations

from dataclasses import dataclass


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

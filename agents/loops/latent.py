"""The latent-planning loop (TD-MPC): the off-policy loop, with sequence batches and a fresh
evaluation planner.

The agent's replay buffer returns `horizon`-step sequences from `sample` (agents.latent.tdmpc
SequenceReplay over data.replay.sample_sequences), so `agents.loops.off_policy` collects,
stores and updates unchanged: warm-up with uniform actions, `train_freq` env steps, then
`gradient_steps` updates. When the warm-up ends, TD-MPC2 pretrains on its seed data: as many
updates as there were seed steps, in one burst (`seed_pretrain`, Hansen, Su, Wang 2024,
arXiv:2310.16828, and its code), then one update per env step. Every evaluation first re-seeds
the agent's evaluation planner and clears its warm starts (`agent.reset_evaluation`), so
evaluations plan alike and draw nothing from torch's global generator; a resumed run continues
bit for bit on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.loops.core import LoopState, Progress, Schedule
from agents.loops.off_policy import train_off_policy
from agents.protocol import LatentPlanningAgent

if TYPE_CHECKING:
    import gymnasium as gym

    from agents.runs.run import Run


def train_latent(agent: LatentPlanningAgent, envs: gym.vector.VectorEnv, run: Run,
                 schedule: Schedule, *, resume: dict[str, Any] | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """The off-policy loop with the agent's evaluation planner reset before each evaluation
    and, with `seed_pretrain`, learning_starts updates when the seed steps end."""

    def evaluate(act: Callable[[np.ndarray], np.ndarray], env: str, episodes: int) -> Any:
        agent.reset_evaluation()
        return schedule.evaluate(act, env, episodes)

    cfg = agent.cfg
    burst = cfg.learning_starts if getattr(cfg, "seed_pretrain", False) else 0
    return train_off_policy(agent, envs, run, replace(schedule, evaluate=evaluate),
                            resume=resume, on_progress=on_progress, seed_updates=burst)

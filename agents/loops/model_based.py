"""The model-based loop: act with a planner, store every transition, refit the model.

PETS and the CS285 MBRL versions (agents.model_based.pets). The first `learning_starts` env
steps take uniformly random actions (the base policy pi_0); then each iteration fits the
dynamics model to all the data so far (`agent.fit_model()`) and plans for `train_every` env
steps (`agent.explore`), appending what happened to the data. With train_every 0 the model is
fitted once, on pi_0's data (version 0.5), and the loop only plans afterwards. Episodes that end
clear the planner's warm start (`agent.episodes_ended`). The replay buffer is training state,
so it is checkpointed with the agent (bit-exact resume on the CPU). A fit whose loss turns
non-finite stops the run (Diverged) with the last good checkpoint kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from agents.loops.core import Core, Diverged, LoopState, Progress, Schedule
from agents.loops.off_policy import step_and_store, uniform_actions
from agents.protocol import ModelBasedAgent

if TYPE_CHECKING:
    from agents.runs.run import Run

PLAN_CHUNK = 50
"""Env steps between iteration boundaries while planning (progress, checkpoints by time)."""


def train_model_based(agent: ModelBasedAgent, envs: gym.vector.VectorEnv, run: Run,
                      schedule: Schedule, *, resume: dict[str, Any] | None = None,
                      on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """Collect with pi_0, then alternate fits and planned steps until the budget or target."""
    cfg, dev, replay = agent.cfg, agent.device, agent.replay
    N = envs.num_envs

    def evaluate(act: Callable[[np.ndarray], np.ndarray], env: str, episodes: int) -> Any:
        agent.reset_evaluation()  # the same planner seed and no warm start at every evaluation
        return schedule.evaluate(act, env, episodes)

    core = Core(agent, envs, run, replace(schedule, evaluate=evaluate), on_progress=on_progress,
                extra_state=lambda: {"replay": replay.state_dict(),
                                     "next_fit": next_fit})
    obs = core.start(resume)
    assert obs is not None
    next_fit = cfg.learning_starts
    if resume is not None:
        replay.load_state_dict(resume["replay"])
        next_fit = int(resume["next_fit"])
    loop = core.loop

    while loop.step < schedule.steps and loop.solved_at is None:
        fitted: dict[str, float] = {}
        if next_fit >= 0 and loop.step >= next_fit and len(replay) > 0:
            try:
                fitted = agent.fit_model()
            except FloatingPointError as e:
                raise Diverged(f"the dynamics model's loss became non-finite at step "
                               f"{loop.step} ({e}); the last good checkpoint is kept") from None
            core.terms.add(fitted)
            next_fit = loop.step + cfg.train_every if cfg.train_every else -1
        random = loop.step < cfg.learning_starts
        chunk = cfg.learning_starts - loop.step if random else PLAN_CHUNK
        if next_fit > loop.step:
            chunk = min(chunk, next_fit - loop.step)
        for _ in range(max(1, -(-chunk // N))):
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=dev)
            action = uniform_actions(agent.info, N, dev) if random else agent.explore(
                obs_t, loop.step)
            action_np = action.cpu().numpy()
            if not np.all(np.isfinite(action_np)):
                raise Diverged(f"the planner's action became non-finite at step {loop.step}; "
                               "the last good checkpoint is kept")
            obs, ended = step_and_store(envs, replay, core, obs_t, action, action_np)
            agent.episodes_ended(ended)
            loop.step += N
        loop.iteration += 1
        # Planning cost: mean ms per plan (one plan covers N envs) over the run so far.
        fields = {"plan_ms": 1e3 * agent.plan_s / agent.plans} if agent.plans else {}
        core.after_iteration(obs, train_fields=fields | {"fits": agent.fits})
    return loop

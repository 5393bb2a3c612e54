"""The on-policy loop: collect a rollout with the current policy, learn from it, repeat (PPO).

Each iteration fills the agent's preallocated rollout buffer with num_steps vector-env steps,
bootstrapping truncated episodes from their real final observation (info["final_obs"]), then
calls `agent.learn()` once; the loop core evaluates, logs and checkpoints between iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from agents.loops.core import Core, LoopState, Progress, Schedule
from agents.protocol import OnPolicyAgent

if TYPE_CHECKING:
    from agents.runs.run import Run


def train_on_policy(agent: OnPolicyAgent, envs: gym.vector.VectorEnv, run: Run,
                    schedule: Schedule, *, resume: dict[str, Any] | None = None,
                    on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """Collect rollouts with `agent.explore`, learn with `agent.learn`, until the budget."""
    dev, buf = agent.device, agent.buffer
    T, N = buf.num_steps, buf.num_envs

    def as_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=dev)

    core = Core(agent, envs, run, schedule, on_progress=on_progress)
    next_obs = core.start(resume)
    assert next_obs is not None
    if resume is None:
        agent.normalize(as_tensor(next_obs), update=True)
    loop = core.loop
    num_iterations = max(1, schedule.steps // (T * N))
    # s_{t+1} as the env returned it [T, N, obs_dim], for an agent that keeps it (PPO with RND)
    raw_next = getattr(agent, "raw_next_obs", None)

    while loop.step < schedule.steps and loop.solved_at is None:
        agent.set_lr_fraction(max(0.0, 1.0 - loop.iteration / num_iterations))
        obs_n = agent.normalize(as_tensor(next_obs))
        value = agent.value(obs_n)  # V(s) under the critic as it is after the last update
        for t in range(T):
            action, logp = agent.explore(obs_n)
            next_obs, reward, terminated, truncated, info = envs.step(action.cpu().numpy())
            ended = terminated | truncated
            buf.obs[t], buf.actions[t], buf.logp[t], buf.values[t] = obs_n, action, logp, value
            ended_t = torch.as_tensor(ended, device=dev)
            buf.rewards[t] = agent.scale_reward(as_tensor(reward), ended_t)
            buf.terminated[t] = torch.as_tensor(terminated, device=dev)
            buf.ended[t] = ended_t
            obs_n = agent.normalize(as_tensor(next_obs), update=True)
            if raw_next is not None:
                raw_next[t] = as_tensor(next_obs)
            value = agent.value(obs_n)
            next_v = value
            if truncated.any():  # bootstrap from the final observation of truncated episodes
                final = np.stack([info["final_obs"][i] if truncated[i] else next_obs[i]
                                  for i in range(N)])
                v_final = agent.value(agent.normalize(as_tensor(final)))
                next_v = torch.where(torch.as_tensor(truncated, device=dev), v_final, value)
            buf.next_values[t] = next_v
            core.count_episodes(reward, ended)
        core.terms.add(agent.learn())
        loop.iteration += 1
        loop.step += T * N
        core.after_iteration(next_obs, check_every_iteration=on_progress is not None)
    return loop

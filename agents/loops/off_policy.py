"""The off-policy loop: act, store in the replay buffer, learn from replay batches.

SAC, TD3, DDPG, DQN and soft Q-learning. One iteration is `train_freq` vector-env steps, with
`agent.explore(obs, step)` or, for the first `learning_starts` env steps, uniformly random
actions (the agent's own, when it was pre-trained on demonstrations: `pretrain`); then
`gradient_steps` calls of `agent.update(agent.replay.sample(batch_size))`. With
prioritized replay (data.replay.PrioritizedReplayBuffer), each batch is drawn at the annealed
importance exponent beta and its slots get the |TD errors| the update returns as priorities. An
episode that ended stores its real final observation (info["final_obs"]) as next_obs:
truncation bootstraps from it, termination does not. The replay buffer is training state, so
it is checkpointed with the agent (bit-exact resume). A non-finite action means the networks
diverged: Diverged names the loss term. An agent with a random-network-distillation bonus
(`agent.rnd`, agents.model_free.rnd.RND) has every stored next observation fed to its running
statistics (`RND.rewards`); the agent adds the bonus to its batches' rewards itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from agents.loops.core import Core, Diverged, LoopState, Progress, Schedule
from agents.protocol import OffPolicyAgent
from data.replay import PrioritizedReplayBuffer
from sim.registry import EnvInfo

if TYPE_CHECKING:
    from agents.runs.run import Run
    from data.replay import ReplayBuffer


TD_ERROR = "td_error"
"""The term an agent's update returns, for a prioritized batch (one with "weights"), holding
the per-sample |TD error| [B] that become the new priorities (Schaul et al. 2016)."""


def per_beta(beta0: float, step: int, steps: int) -> float:
    """PER's importance-weight exponent at env step `step` of a budget of `steps`: linear from
    beta0 to 1 at the end of the budget (Schaul et al. 2016, section 3.4)."""
    return beta0 + (1.0 - beta0) * min(1.0, step / max(steps, 1))


def uniform_actions(info: EnvInfo, n: int, device: torch.device) -> Tensor:
    """n uniformly random actions (warm-up), from torch's global generator (checkpointed)."""
    if info.discrete:
        return torch.randint(info.act_dim, (n,), device=device)
    return torch.rand(n, info.act_dim, device=device) * 2.0 - 1.0


def step_and_store(envs: gym.vector.VectorEnv, replay: ReplayBuffer, core: Core, obs: Tensor,
                   action: Tensor, action_np: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One vector-env step, stored in `replay` and counted; (next observations, ended).

    An episode that ended stores its real final observation (info["final_obs"]) as next_obs,
    not the first one of the next episode, which the vector env has already reset to.
    """
    next_obs, reward, terminated, truncated, step_info = envs.step(action_np)
    ended = terminated | truncated
    final = next_obs
    if ended.any():
        final = next_obs.copy()
        for i in np.flatnonzero(ended):
            final[i] = step_info["final_obs"][i]
    replay.add(obs, action, reward, final, terminated, truncated)
    core.count_episodes(reward, ended)
    return next_obs, ended


def train_off_policy(agent: OffPolicyAgent, envs: gym.vector.VectorEnv, run: Run,
                     schedule: Schedule, *, resume: dict[str, Any] | None = None,
                     on_progress: Callable[[Progress], None] | None = None,
                     eval_fields: Callable[[float], dict[str, Any]] | None = None,
                     seed_updates: int = 0) -> LoopState:
    """Interleave env steps and replay updates until the budget or the target return;
    `eval_fields(return_mean)` adds a caller's keys to each evaluation record. `seed_updates`
    (> 0) replaces gradient_steps in the first round of updates, the one that ends the
    learning_starts warm-up (TD-MPC2's pretraining on the seed data)."""
    cfg, dev, replay = agent.cfg, agent.device, agent.replay
    N = envs.num_envs
    core = Core(agent, envs, run, schedule, on_progress=on_progress,
                extra_state=lambda: {"replay": replay.state_dict()})
    obs = core.start(resume)
    assert obs is not None
    if resume is not None:
        replay.load_state_dict(resume["replay"])
    loop = core.loop
    # an agent pre-trained on demonstrations (SAC, TD3 --pretrain) warms up with its own policy
    pretrained = bool(getattr(cfg, "pretrain", ""))
    bonus = getattr(agent, "rnd", None)  # SAC, TD3 --rnd: random network distillation

    while loop.step < schedule.steps and loop.solved_at is None:
        for _ in range(cfg.train_freq):
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=dev)
            if loop.step < cfg.learning_starts and not pretrained:
                action = uniform_actions(agent.info, N, dev)
            else:
                action = agent.explore(obs_t, loop.step)
            action_np = action.cpu().numpy()
            if not np.all(np.isfinite(action_np)):
                core.raise_if_diverged()
                raise Diverged(f"the policy's action became non-finite at step {loop.step}; "
                               "the last good checkpoint is kept")
            obs, _ = step_and_store(envs, replay, core, obs_t, action, action_np)
            if bonus is not None:  # RND's running statistics see every stored s'
                bonus.rewards(replay.next_obs[(replay.pos - 1) % replay.rows].reshape(1, N, -1))
            loop.step += N
        if loop.step >= cfg.learning_starts and replay.can_sample():
            # a function of the step count alone, so a resumed run never repeats the burst
            first = loop.step - N * cfg.train_freq < cfg.learning_starts
            updates = seed_updates if first and seed_updates > 0 else cfg.gradient_steps
            if isinstance(replay, PrioritizedReplayBuffer):
                beta = per_beta(cfg.per_beta0, loop.step, schedule.steps)
                for _ in range(updates):
                    batch = replay.sample(cfg.batch_size, beta=beta)
                    terms = agent.update(batch)
                    replay.update_priorities(batch["indices"], terms.pop(TD_ERROR))
                    core.terms.add(terms)
            else:
                for _ in range(updates):
                    core.terms.add(agent.update(replay.sample(cfg.batch_size)))
        loop.iteration += 1
        core.after_iteration(obs, eval_fields=eval_fields)
    return loop

"""The adversarial loop: generator rollouts scored by a learned reward, discriminator updates
against expert transitions from a dataset (GAIL, AIRL).

Each iteration fills the generator's rollout buffer as the on-policy loop does (bootstrapping
truncated episodes from info["final_obs"]), keeping the raw transitions (s, a, s', done) beside
it; then `disc_updates` discriminator steps on random policy and expert minibatches; then the
env's rewards in the buffer are replaced by the learned reward of the updated discriminator and
the generator learns (PPO). Evaluation, logging and checkpoints are the loop core's: evaluation
reports the TRUE env return, the expert-normalized score (agents.imitation.scores: R_random of
uniform random actions on the evaluation seeds, R_expert of the replayed expert or the dataset's
mean return) and the discriminator's accuracy on its last expert and policy batches. At every
checkpoint the learned reward is also written to RUN/reward/ (safetensors + JSON), which
agents.irl.reward.load_reward rebuilds.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import save_file
from torch import Tensor

from agents.imitation.scores import reference_returns, score_fields
from agents.irl.reward import REWARD_DIR, REWARD_META, REWARD_WEIGHTS
from agents.loops.core import Core, LoopState, Progress, Schedule
from agents.loops.offline import open_dataset
from agents.protocol import AdversarialAgent
from data.dataset import Dataset
from data.files import fsync_path, fsync_write, publish_dir

if TYPE_CHECKING:
    from agents.runs.run import Run

KEYS = ("obs", "actions", "next_obs", "terminated")
"""The transition fields the discriminator sees (raw observations, env-unit actions)."""


def expert_transitions(ds: Dataset, max_episodes: int | None, discrete: bool,
                       device: torch.device) -> dict[str, Tensor]:
    """The dataset's transitions as flat tensors {obs, actions, next_obs, terminated} [N, ...]."""
    n = len(ds) if max_episodes is None else min(len(ds), max_episodes)
    eps = list(ds.episodes(range(n)))
    dim = eps[0].observations[0].size
    obs = np.concatenate([e.observations[:-1] for e in eps]).reshape(-1, dim)
    nxt = np.concatenate([e.observations[1:] for e in eps]).reshape(-1, dim)
    acts = np.concatenate([e.labels for e in eps])
    term = np.concatenate([e.terminations for e in eps])
    a = torch.as_tensor(acts).long().reshape(-1) if discrete else torch.as_tensor(
        acts, dtype=torch.float32).reshape(len(obs), -1)
    f32 = torch.float32
    return {"obs": torch.as_tensor(obs, dtype=f32).to(device), "actions": a.to(device),
            "next_obs": torch.as_tensor(nxt, dtype=f32).to(device),
            "terminated": torch.as_tensor(term, dtype=torch.bool).to(device)}


def dataset_reference(ds: Dataset, max_episodes: int | None, env: str, schedule: Schedule
                      ) -> dict[str, float]:
    """The normalized score's references of a run learning from the first `max_episodes` of
    `ds`, on the run's physics (schedule.env_options: --dynamics)."""
    n = len(ds) if max_episodes is None else min(len(ds), max_episodes)
    with torch.random.fork_rng(devices=[]):  # a run expert's init does not move the run's RNG
        return reference_returns(env, ds.metadata.get("expert", {}), ds.returns()[:n],
                                 schedule.eval_episodes, options=schedule.env_options)


def write_reward(run: Run, agent: AdversarialAgent) -> None:
    """RUN/reward/: the learned reward's weights (safetensors) and description (JSON), replaced
    as one folder so a reader never sees a mix of two checkpoints' rewards."""
    weights, meta = agent.learned_reward()
    final = run.path / REWARD_DIR
    tmp, aside = final.with_name(f".{REWARD_DIR}.tmp"), final.with_name(f".{REWARD_DIR}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file(weights, str(tmp / REWARD_WEIGHTS))
        fsync_path(tmp / REWARD_WEIGHTS)
        fsync_write(tmp / REWARD_META, (json.dumps(meta, indent=2) + "\n").encode())
        publish_dir(tmp, final, aside)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def train_adversarial(agent: AdversarialAgent, envs: gym.vector.VectorEnv, run: Run,
                      schedule: Schedule, *, resume: dict[str, Any] | None = None,
                      on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """GAIL/AIRL on `agent.cfg.dataset` until the budget (env steps) or the target return."""
    cfg, dev, buf = agent.cfg, agent.device, agent.buffer
    T, N = buf.num_steps, buf.num_envs
    ds = open_dataset(cfg.dataset, run.env)
    expert = expert_transitions(ds, cfg.max_episodes, agent.info.discrete, dev)
    n_expert = len(expert["obs"])

    def as_tensor(x: np.ndarray) -> Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=dev)

    state: dict[str, Any] = {} if resume is None else dict(resume["adversarial"])

    def extra_state() -> dict[str, Any]:
        write_reward(run, agent)  # beside every checkpoint: the reward of the saved state
        return {"adversarial": state}

    core = Core(agent, envs, run, schedule, on_progress=on_progress, extra_state=extra_state)
    next_obs = core.start(resume)
    assert next_obs is not None
    if resume is None:
        agent.set_expert_statistics(expert["obs"])
        agent.normalize(as_tensor(next_obs), update=True)
        state["reference"] = dataset_reference(ds, cfg.max_episodes, run.env, schedule)
    last: dict[str, Tensor] = {}
    scores = score_fields(state["reference"], n_expert)

    def fields(return_mean: float) -> dict[str, Any]:
        return scores(return_mean) | {k: float(last[k]) for k in (
            "disc_expert_acc", "disc_policy_acc") if k in last}

    raw = {"obs": torch.zeros(T, N, agent.info.obs_dim, device=dev),
           "next_obs": torch.zeros(T, N, agent.info.obs_dim, device=dev)}
    loop = core.loop
    num_iterations = max(1, schedule.steps // (T * N))
    # s_{t+1} as the env returned it, for a generator that keeps it (PPO with RND), as the
    # on-policy loop fills it
    rnd_next = getattr(agent, "raw_next_obs", None)
    while loop.step < schedule.steps and loop.solved_at is None:
        agent.set_lr_fraction(max(0.0, 1.0 - loop.iteration / num_iterations))
        obs = next_obs
        obs_n = agent.normalize(as_tensor(obs))
        value = agent.value(obs_n)
        for t in range(T):
            action, logp = agent.explore(obs_n)
            next_obs, reward, terminated, truncated, info = envs.step(action.cpu().numpy())
            ended = terminated | truncated
            buf.obs[t], buf.actions[t], buf.logp[t], buf.values[t] = obs_n, action, logp, value
            buf.terminated[t] = torch.as_tensor(terminated, device=dev)
            buf.ended[t] = torch.as_tensor(ended, device=dev)
            # s' of the transition: an ended episode's final observation, not the reset one
            real_next = np.stack([info["final_obs"][i] if ended[i] else next_obs[i]
                                  for i in range(N)]) if ended.any() else next_obs
            raw["obs"][t], raw["next_obs"][t] = as_tensor(obs), as_tensor(real_next)
            obs = next_obs
            obs_n = agent.normalize(as_tensor(next_obs), update=True)
            if rnd_next is not None:
                rnd_next[t] = as_tensor(next_obs)
            value = agent.value(obs_n)
            next_v = value
            if truncated.any():  # bootstrap from the final observation of truncated episodes
                v_final = agent.value(agent.normalize(as_tensor(real_next)))
                next_v = torch.where(torch.as_tensor(truncated, device=dev), v_final, value)
            buf.next_values[t] = next_v
            core.count_episodes(reward, ended)  # the true return, for the training log
        policy = {"obs": raw["obs"].reshape(T * N, -1),
                  "actions": buf.actions.reshape(T * N, *buf.actions.shape[2:]),
                  "next_obs": raw["next_obs"].reshape(T * N, -1),
                  "terminated": buf.terminated.reshape(T * N), "logp": buf.logp.reshape(T * N)}
        batch = min(cfg.disc_batch_size, T * N)
        for _ in range(cfg.disc_updates):
            ip = torch.randint(T * N, (batch,), device=dev)
            ie = torch.randint(n_expert, (batch,), device=dev)
            last = agent.update({k: policy[k][ip] for k in KEYS}
                                | {"logp": policy["logp"][ip]}  # the sampler's (GCL)
                                | {f"expert_{k}": expert[k][ie] for k in KEYS})
        learned = agent.reward(policy).reshape(T, N)
        for t in range(T):  # the generator learns from the learned reward, not the env's
            buf.rewards[t] = agent.scale_reward(learned[t], buf.ended[t])
        core.terms.add(last | {"learned_reward": learned.mean()} | agent.learn())
        loop.iteration += 1
        loop.step += T * N
        core.after_iteration(next_obs, check_every_iteration=on_progress is not None,
                             eval_fields=fields)
    return loop

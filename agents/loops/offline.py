"""The offline loop: supervised learning of expert actions from a dataset (behavioral cloning).

`schedule.steps` caps the gradient updates. Each iteration fits up to the next evaluation point
with early stopping on a held-out split, then the loop core evaluates (with the expert-normalized
score, agents.imitation.scores), logs and checkpoints. The loop steps no training env. `split`
and `fit` are shared with the DAgger loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

import sim
from agents.imitation.scores import reference_returns, score_fields
from agents.loops.core import Core, LoopState, Progress, Schedule
from agents.protocol import ImitationAgent
from data.dataset import Dataset

if TYPE_CHECKING:
    import gymnasium as gym

    from agents.runs.run import Run


@dataclass
class Split:
    """Training and validation transitions, as tensors on the learner's device."""

    obs: Tensor
    actions: Tensor
    val_obs: Tensor
    val_actions: Tensor


def split(obs: np.ndarray, actions: np.ndarray, val_frac: float, seed: int,
          device: torch.device) -> Split:
    """A random split of the transitions, fixed by `seed` (so resume sees the same one)."""
    n = len(obs)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(n * val_frac) if n >= 20 else 0
    o = torch.as_tensor(obs.reshape(n, -1), dtype=torch.float32)
    a = torch.as_tensor(actions)
    a = a.long() if a.dtype in (torch.int64, torch.int32) else a.float().reshape(n, -1)
    v, t = perm[:n_val], perm[n_val:]
    return Split(o[t].to(device), a[t].to(device), o[v].to(device), a[v].to(device))


def fit(agent: ImitationAgent, data: Split, updates: int) -> tuple[int, dict[str, float]]:
    """Up to `updates` minibatch updates with early stopping; returns (updates done, losses)."""
    cfg, n = agent.cfg, len(data.obs)
    terms: dict[str, Tensor] = {}
    done = 0
    if updates > 0 and not agent.stopped:
        agent.resume_training()
    while done < updates and not agent.stopped:
        idx = torch.randint(n, (min(cfg.batch_size, n),), device=data.obs.device)
        terms = agent.update({"obs": data.obs[idx], "actions": data.actions[idx]})
        done += 1
        if len(data.val_obs) and agent.updates % cfg.val_every == 0:
            agent.validate(data.val_obs, data.val_actions)
    logged = {k: float(v) for k, v in terms.items()}
    if agent.val_loss is not None:
        logged["val_loss"] = float(agent.val_loss)
    return done, logged


def check_inputs(cfg: Any, env: str) -> None:
    """BC needs a dataset of `env` episodes; DAgger may start from one. Runs before the run
    folder exists, so it reads every episode the loop will read (BC's reference returns read
    them all): a dataset whose hashes hold but whose content cannot be learned from (an
    unreadable HDF5 file, a missing episode, a NaN, lengths that disagree, no episodes) is one
    clear error, not a run folder holding only config.json."""
    if cfg.dataset or not hasattr(cfg, "expert"):
        open_dataset(cfg.dataset, env).check()


def open_dataset(path: str, env: str, flag: str = "--dataset") -> Dataset:
    """The dataset at `path`, verified by its manifest and fitting `env`'s spaces."""
    if not path:
        raise ValueError(f"{flag} DIR is required: a dataset folder written by kinema collect")
    ds = Dataset.open(path)
    if ds.env != env:
        raise ValueError(f"dataset {path} holds {ds.env!r} episodes, not {env!r}")
    info = sim.spec(env).info
    obs, act = ds.observation_space, ds.action_space
    if obs.get("shape") != tuple(info.obs_shape):
        raise ValueError(f"dataset {path} holds observations of shape {list(obs.get('shape', []))}"
                         f"; {env} gives {list(info.obs_shape)}")
    if (act["type"] == "Discrete") != info.discrete or (
            not info.discrete and act["shape"] != tuple(info.action_shape)):
        held = f"{act['n']} discrete values" if act["type"] == "Discrete" else (
            f"shape {list(act['shape'])}")
        raise ValueError(f"dataset {path} holds actions of {held}; {env} takes "
                         f"{'discrete actions' if info.discrete else list(info.action_shape)}")
    return ds


def loop_state(resume: dict[str, Any] | None) -> dict[str, Any]:
    """The imitation loops' own state from a checkpoint (runs before the move kept it in the
    learner's state as "extra")."""
    if resume is None:
        return {}
    return dict(resume["imitation"] if "imitation" in resume else resume["agent"]["extra"])


def train_bc(agent: ImitationAgent, envs: gym.vector.VectorEnv | None, run: Run,
             schedule: Schedule, *, resume: dict[str, Any] | None = None,
             on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """Behavioral cloning on `agent.cfg.dataset`; `schedule.steps` caps the gradient updates."""
    cfg = agent.cfg
    ds = open_dataset(cfg.dataset, run.env)
    obs, actions = ds.transitions(cfg.max_episodes)
    state = loop_state(resume)
    core = Core(agent, None, run, schedule, on_progress=on_progress,
                extra_state=lambda: {"imitation": state})
    core.start(resume)
    if resume is None:
        state.update(split_seed=int(torch.randint(2**31 - 1, ())), labels=len(obs))
        data = split(obs, actions, cfg.val_frac, state["split_seed"], agent.device)
        agent.set_statistics(data.obs)
        n_eps = len(ds) if cfg.max_episodes is None else min(len(ds), cfg.max_episodes)
        state["reference"] = reference_returns(
            run.env, ds.metadata.get("expert", {}), ds.returns()[:n_eps], schedule.eval_episodes)
    else:
        data = split(obs, actions, cfg.val_frac, state["split_seed"], agent.device)
    loop = core.loop
    scores = score_fields(state["reference"], state["labels"])
    while loop.step < schedule.steps and loop.solved_at is None:
        done, logged = fit(agent, data, min(loop.next_eval, schedule.steps) - loop.step)
        loop.step += done
        stopped = agent.stopped
        if stopped or loop.step >= schedule.steps:
            agent.restore_best()  # the policy kept is the one with the best validation loss
        core.terms.reset()
        core.terms.add(logged)

        def fields(return_mean: float, stopped: bool = stopped) -> dict[str, Any]:
            return scores(return_mean) | {"early_stopped": stopped}

        core.after_iteration(None, force_eval=True, eval_fields=fields)
        if stopped:
            break
    return loop

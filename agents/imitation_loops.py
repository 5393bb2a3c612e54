"""Training loops of the imitation learners (BC and DAgger) and their reference scores.

Both are plain functions with the signature of agents/loops.py, run by agents/train.py, and
checkpoint through the same run directory. Their step counters differ from RL's: BC counts
gradient updates (`--steps` caps them), DAgger counts expert labels. Every evaluation logs the
expert-normalized score (R - R_random) / (R_expert - R_random), as the `imitation` library and
D4RL report it: R_random is uniform random actions and R_expert the expert, both on the
evaluation seeds; an expert that cannot be replayed cheaply (a person, MPC) is represented by the
mean return of its demonstrations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

import sim
from agents.dagger import beta_schedule
from agents.evaluation import EVAL_SEED, evaluate
from agents.loops import LoopState, Progress, Schedule, _check_finite, _checkpoint
from data.dataset import Dataset
from data.record import open_writer, run_episode

if TYPE_CHECKING:
    from agents.run import Run


def expert_normalized_score(ret: float, random_ret: float, expert_ret: float) -> float:
    """(R - R_random) / (R_expert - R_random): 0 is random, 1 is the expert."""
    return (ret - random_ret) / (expert_ret - random_ret)


def random_return(env: str, episodes: int) -> float:
    """Mean return of uniform random actions on the evaluation seeds (numpy RNG seeded 0)."""
    info, rng = sim.spec(env).info, np.random.default_rng(0)

    def act(obs: np.ndarray) -> np.ndarray:
        if info.discrete:
            return rng.integers(info.n_actions, size=len(obs))
        return rng.uniform(-1.0, 1.0, (len(obs), *info.action_shape)).astype(np.float32)

    return float(evaluate(act, env, episodes).mean())


def expert_return(expert: Any, env: str, episodes: int) -> float:
    """Mean return of `expert` on the evaluation seeds, one env per episode (experts see it)."""
    e = sim.make(env, render_mode=expert.render_mode)
    try:
        discrete = sim.spec(env).info.discrete
        eps = [run_episode(e, expert, EVAL_SEED + i, discrete=discrete)[0] for i in range(episodes)]
    finally:
        e.close()
    return float(np.mean([ep.total_return for ep in eps if ep is not None]))


def reference_returns(env: str, expert_spec: dict[str, Any], demo_returns: np.ndarray,
                      episodes: int, expert: Any = None) -> dict[str, float]:
    """{"random", "expert"} returns for the normalized score (see the module docstring)."""
    from agents.experts import make_expert

    while expert_spec.get("kind") == "dagger":  # a DAgger dataset: its labelling expert
        expert_spec = expert_spec["expert"]
    kind = expert_spec.get("kind")
    if expert is None and kind in ("scripted", "run"):
        try:
            expert = make_expert("scripted" if kind == "scripted" else expert_spec["run"], env)
        except (ValueError, OSError):
            expert = None  # e.g. the expert's run folder was moved: use the demonstrations
    replayable = expert is not None and expert.spec.get("kind") in ("scripted", "run")
    ref = expert_return(expert, env, episodes) if replayable else float(np.mean(demo_returns))
    return {"random": random_return(env, episodes), "expert": ref}


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


def fit(agent: Any, data: Split, updates: int) -> tuple[int, dict[str, float]]:
    """Up to `updates` minibatch updates with early stopping; returns (updates done, losses)."""
    cfg, n = agent.cfg, len(data.obs)
    terms: dict[str, Tensor] = {}
    done = 0
    if updates > 0 and not agent.counters["stopped"]:
        agent.resume_training()
    while done < updates and not agent.counters["stopped"]:
        idx = torch.randint(n, (min(cfg.batch_size, n),), device=data.obs.device)
        terms = agent.update({"obs": data.obs[idx], "actions": data.actions[idx]})
        done += 1
        agent.counters["updates"] = int(agent.counters.get("updates", 0)) + 1
        if len(data.val_obs) and agent.counters["updates"] % cfg.val_every == 0:
            val = agent.validation_loss(data.val_obs, data.val_actions)  # one sync per check
            agent.counters["val_loss"] = val
            if agent.check_validation(val):
                agent.counters["stopped"] = 1
    logged = {k: float(v) for k, v in terms.items()}
    if agent.counters.get("val_loss") is not None:
        logged["val_loss"] = float(agent.counters["val_loss"])
    return done, logged


def _evaluate(agent: Any, run: Run, loop: LoopState, schedule: Schedule, **extra: Any) -> None:
    e0 = time.perf_counter()
    returns = evaluate(lambda o: agent.act(o, deterministic=True).cpu().numpy(), run.env,
                       schedule.eval_episodes)
    loop.eval_s += time.perf_counter() - e0
    loop.last_eval = float(returns.mean())
    ref = agent.extra["reference"]
    run.log({"kind": "eval", "step": loop.step, "wall_s": loop.wall_s, "train_s": loop.train_s,
             "return_mean": loop.last_eval, "return_std": float(returns.std()),
             "episodes": len(returns), "expert_return": ref["expert"],
             "random_return": ref["random"], "labels": agent.extra["labels"],
             "normalized_score": expert_normalized_score(loop.last_eval, ref["random"],
                                                         ref["expert"]), **extra})
    if schedule.target_return is not None and loop.last_eval >= schedule.target_return:
        loop.solved_at = loop.step


def check_inputs(cfg: Any, env: str) -> None:
    """BC needs a dataset of `env` episodes; DAgger may start from one."""
    if cfg.dataset or not hasattr(cfg, "expert"):
        _dataset(cfg.dataset, env)


def _dataset(path: str, env: str, flag: str = "--dataset") -> Dataset:
    if not path:
        raise ValueError(f"{flag} DIR is required: a dataset folder written by kinema collect")
    ds = Dataset.open(path)
    if ds.env != env:
        raise ValueError(f"dataset {path} holds {ds.env!r} episodes, not {env!r}")
    return ds


def train_bc(agent: Any, envs: Any, run: Run, schedule: Schedule, *,
             start: tuple[LoopState, np.ndarray] | None = None,
             on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """Behavioral cloning on a dataset; `schedule.steps` caps the gradient updates."""
    cfg = agent.cfg
    ds = _dataset(cfg.dataset, run.env)
    obs, actions = ds.transitions(cfg.max_episodes)
    next_obs = np.zeros((envs.num_envs, *agent.info.obs_shape), dtype=np.float32)
    if start is None:
        loop = LoopState(next_eval=schedule.eval_every, next_checkpoint=schedule.checkpoint_every)
        agent.extra = {"split_seed": int(torch.randint(2**31 - 1, ())), "labels": len(obs)}
        data = split(obs, actions, cfg.val_frac, agent.extra["split_seed"], agent.device)
        agent.set_statistics(data.obs)
        n_eps = len(ds) if cfg.max_episodes is None else min(len(ds), cfg.max_episodes)
        agent.extra["reference"] = reference_returns(
            run.env, ds.metadata.get("expert", {}), ds.returns()[:n_eps], schedule.eval_episodes)
    else:
        loop, _ = start
        data = split(obs, actions, cfg.val_frac, agent.extra["split_seed"], agent.device)
    t0, wall0 = time.perf_counter(), loop.wall_s
    while loop.step < schedule.steps and loop.solved_at is None:
        target = min(loop.next_eval, schedule.steps)
        done, logged = fit(agent, data, target - loop.step)
        loop.step += done
        stopped = bool(agent.counters["stopped"])
        _check_finite(loop.step, logged)
        if stopped or loop.step >= schedule.steps:
            agent.restore_best()  # the policy kept is the one with the best validation loss
        loop.wall_s = wall0 + time.perf_counter() - t0
        loop.train_s = loop.wall_s - loop.eval_s
        run.log({"kind": "train", "step": loop.step, "wall_s": loop.wall_s,
                 "train_s": loop.train_s, **logged})
        _evaluate(agent, run, loop, schedule, early_stopped=stopped)
        while loop.next_eval <= loop.step:
            loop.next_eval += schedule.eval_every
        _checkpoint(run, agent, loop, envs, next_obs)
        if on_progress:
            on_progress(Progress(loop.step, schedule.steps, loop.step / max(loop.train_s, 1e-9),
                                 loop.last_eval, None))
        if stopped:
            break
    return loop


def train_dagger(agent: Any, envs: Any, run: Run, schedule: Schedule, *,
                 start: tuple[LoopState, np.ndarray] | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """DAgger rounds until `schedule.steps` expert labels; the dataset is RUN/dataset."""
    from agents.experts import make_expert

    cfg, env_name = agent.cfg, run.env
    expert = make_expert(cfg.expert, env_name)
    env = sim.make(env_name, render_mode=expert.render_mode)
    discrete = agent.info.discrete
    next_obs = np.zeros((envs.num_envs, *agent.info.obs_shape), dtype=np.float32)
    ds_path = run.path / "dataset"
    writer = open_writer(ds_path, env_name, env, {"kind": "dagger", "expert": expert.spec},
                         append=start is not None)
    try:
        if start is None:
            loop = LoopState(next_eval=schedule.eval_every)
            agent.extra = {"split_seed": int(torch.randint(2**31 - 1, ())), "round": 0,
                           "seed_base": 10**7 + 1000 * int(torch.randint(10**5, ())), "labels": 0}
            if cfg.dataset:  # start from given demonstrations, copied so the input stays as it is
                demos = list(_dataset(cfg.dataset, env_name).episodes())[: cfg.max_episodes]
            else:
                demos = [run_episode(env, expert, agent.extra["seed_base"] + i,
                                     discrete=discrete)[0] for i in range(cfg.initial_episodes)]
                demos = [d for d in demos if d is not None]
            if not demos:
                raise ValueError("the expert gave no demonstrations to start from")
            writer.add(demos)
            agent.extra["labels"] = loop.step = sum(d.steps for d in demos)
            agent.extra["reference"] = reference_returns(
                env_name, expert.spec, np.array([d.total_return for d in demos]),
                schedule.eval_episodes, expert=expert)
        else:
            loop, _ = start
        wall0, t0 = loop.wall_s, time.perf_counter()
        resumed = start is not None  # a checkpoint is taken after a round's fit: collect next
        while True:
            i = int(agent.extra["round"])
            if not resumed:
                obs, actions = Dataset.open(ds_path).transitions()
                data = split(obs, actions, cfg.val_frac, agent.extra["split_seed"] + i,
                             agent.device)
                if not cfg.warm_start and i > 0:  # a fresh learner each round, as in the paper
                    extra = agent.extra
                    agent.__init__(cfg, agent.info, agent.device)
                    agent.extra = extra
                agent.set_statistics(data.obs)
                agent.reset_early_stopping()
                _, logged = fit(agent, data, cfg.updates_per_round)
                _check_finite(loop.step, logged)
                agent.restore_best()
                loop.wall_s = wall0 + time.perf_counter() - t0
                loop.train_s = loop.wall_s - loop.eval_s
                run.log({"kind": "train", "step": loop.step, "wall_s": loop.wall_s,
                         "train_s": loop.train_s, "round": i, **logged})
                _evaluate(agent, run, loop, schedule, round=i,
                          beta=beta_schedule(i, cfg.beta_decay))
                loop.iteration = i
                _checkpoint(run, agent, loop, envs, next_obs)
                if on_progress:
                    on_progress(Progress(loop.step, schedule.steps, 0.0, loop.last_eval, None))
            resumed = False
            if loop.step >= schedule.steps or loop.solved_at is not None:
                return loop
            i += 1
            beta = beta_schedule(i, cfg.beta_decay)
            rng = np.random.default_rng(int(agent.extra["seed_base"]) + i)
            for j in range(cfg.episodes_per_round):
                seed = int(agent.extra["seed_base"]) + 100 * i + j

                def learner(o: np.ndarray) -> np.ndarray:
                    return agent.act(o[None], deterministic=True).cpu().numpy()[0]

                ep, sig = run_episode(env, expert, seed, discrete=discrete, learner=learner,
                                      beta=beta, rng=rng)
                if sig == "quit":
                    return loop
                if ep is not None:
                    writer.add(ep)  # aggregation: D <- D u D_pi, committed episode by episode
                    loop.step += ep.steps
            agent.extra.update(round=i, labels=loop.step)
    finally:
        writer.close()
        env.close()

"""Training loops: plain functions that take an agent. No callbacks framework, no inheritance.

Each loop runs until the step budget or the target return, evaluating every `eval_every` env
steps with the shared protocol, logging to the run, and checkpointing at iteration boundaries
(the only points where the whole state, envs included, is well defined), so resume is exact.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import sim
from agents.evaluation import evaluate
from agents.off_policy import uniform_actions

if TYPE_CHECKING:
    from agents.run import Run


class Diverged(RuntimeError):
    """A loss term became non-finite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class Schedule:
    """When to stop, evaluate and checkpoint (env steps)."""

    steps: int
    eval_every: int
    eval_episodes: int = 10
    target_return: float | None = None
    checkpoint_every: int = 0
    """0: checkpoint only at evaluations and at the end."""


@dataclass
class LoopState:
    """Counters of a loop, saved in every checkpoint."""

    step: int = 0
    iteration: int = 0
    train_s: float = 0.0
    """Wall time outside evaluation."""
    wall_s: float = 0.0
    eval_s: float = 0.0
    next_eval: int = 0
    next_checkpoint: int = 0
    last_eval: float | None = None
    solved_at: int | None = None
    ep_return: list[float] = field(default_factory=list)
    ep_length: list[int] = field(default_factory=list)
    recent_returns: list[float] = field(default_factory=list)


@dataclass
class Progress:
    """What a progress display needs after each iteration."""

    step: int
    total: int
    steps_per_s: float
    last_eval: float | None
    recent_return: float | None


def _rng_state(device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _checkpoint(run: Run, agent: Any, loop: LoopState, envs: Any, next_obs: np.ndarray) -> None:
    agent_state = agent.state_dict()
    run.save(loop.step, {
        "agent": {k: v for k, v in agent_state.items() if k != "optim"},
        "optim": agent_state["optim"],
        "loop": vars(loop) | {"next_obs": next_obs.tolist()},
        "rng": _rng_state(agent.device),
        "envs": [sim.get_state(e) for e in envs.envs],
        # off-policy agents: the replay buffer is training state too (bit-exact resume)
        **({"replay": agent.replay.state_dict()} if hasattr(agent, "replay") else {}),
    })


def restore(agent: Any, envs: Any, tree: dict[str, Any]) -> tuple[LoopState, np.ndarray]:
    """Put agent, envs and RNGs back to a checkpoint; returns the loop state and next obs."""
    agent.load_state_dict(tree["agent"] | {"optim": tree["optim"]})
    for e, st in zip(envs.envs, tree["envs"], strict=True):
        sim.set_state(e, st)
    _set_rng_state(tree["rng"], agent.device)
    if "replay" in tree:
        agent.replay.load_state_dict(tree["replay"])
    loop = dict(tree["loop"])
    next_obs = np.asarray(loop.pop("next_obs"), dtype=np.float32)
    return LoopState(**loop), next_obs


def _check_finite(step: int, terms: dict[str, float]) -> None:
    for name, value in terms.items():
        if not math.isfinite(value):
            raise Diverged(f"loss term {name!r} became {value} at step {step}; "
                           "the last good checkpoint is kept")


class _Terms:
    """Sums of the loss terms since the last log point, kept on the device (no host sync)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += 1

    def means(self) -> dict[str, float]:
        """Window means as Python floats: one host sync. A non-finite term stays non-finite."""
        return {k: float(v) / self.count for k, v in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.count = {}, 0


def _count_episodes(ep_return: np.ndarray, ep_length: np.ndarray, reward: np.ndarray,
                    ended: np.ndarray, recent: deque) -> None:
    """Add one step to the per-env return and length; finished episodes go to `recent`."""
    ep_return += reward
    ep_length += 1
    for i in np.flatnonzero(ended):
        recent.append(float(ep_return[i]))
        ep_return[i], ep_length[i] = 0.0, 0


def _wall_clock(loop: LoopState) -> Callable[[], float]:
    """Wall seconds of the run so far, continuing the count of a resumed loop."""
    t0, wall0 = time.perf_counter(), loop.wall_s
    return lambda: wall0 + time.perf_counter() - t0


def _after_iteration(
    agent: Any, envs: Any, run: Run, schedule: Schedule, loop: LoopState, next_obs: np.ndarray,
    recent: deque, terms: _Terms, wall: Callable[[], float],
    on_progress: Callable[[Progress], None] | None, *, check_every_iteration: bool,
) -> None:
    """Evaluate, log and checkpoint when due, and report progress: what every loop shares.

    Loss terms reach the host only when logged or checked, and a non-finite one raises Diverged
    before a checkpoint is written, so LATEST always names a finite state.
    """
    due_eval = loop.step >= loop.next_eval or loop.step >= schedule.steps
    due_ckpt = bool(schedule.checkpoint_every) and loop.step >= loop.next_checkpoint
    logged: dict[str, float] = {}
    if check_every_iteration or due_eval or due_ckpt:
        logged = terms.means() if terms.count else {}
        _check_finite(loop.step, logged)
    loop.wall_s = wall()
    loop.train_s = loop.wall_s - loop.eval_s
    loop.recent_returns = list(recent)
    if due_eval:
        run.log({"kind": "train", "step": loop.step, "wall_s": loop.wall_s,
                 "train_s": loop.train_s, "steps_per_s": loop.step / max(loop.train_s, 1e-9),
                 "episode_return": float(np.mean(recent)) if recent else None, **logged})
        terms.reset()
        e0 = time.perf_counter()
        returns = evaluate(lambda o: agent.act(o, deterministic=True).cpu().numpy(),
                           run.env, schedule.eval_episodes)
        loop.eval_s += time.perf_counter() - e0
        loop.wall_s = wall()
        loop.last_eval = float(returns.mean())
        run.log({"kind": "eval", "step": loop.step, "wall_s": loop.wall_s,
                 "train_s": loop.train_s, "return_mean": loop.last_eval,
                 "return_std": float(returns.std()), "episodes": len(returns)})
        while loop.next_eval <= loop.step:
            loop.next_eval += schedule.eval_every
        if schedule.target_return is not None and loop.last_eval >= schedule.target_return:
            loop.solved_at = loop.step
    if due_ckpt:
        while loop.next_checkpoint <= loop.step:
            loop.next_checkpoint += schedule.checkpoint_every
    if due_eval or due_ckpt:
        _checkpoint(run, agent, loop, envs, next_obs)
    if on_progress:
        on_progress(Progress(loop.step, schedule.steps, loop.step / max(loop.train_s, 1e-9),
                             loop.last_eval, float(np.mean(recent)) if recent else None))


def train_on_policy(
    agent: Any,
    envs: Any,
    run: Run,
    schedule: Schedule,
    *,
    start: tuple[LoopState, np.ndarray] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> LoopState:
    """Collect rollouts with `agent.explore`, learn with `agent.learn`, repeat (PPO-style).

    The agent owns a preallocated RolloutBuffer (`agent.buffer`) and offers `normalize`,
    `explore`, `value`, `scale_reward`, `set_lr_fraction`, `learn`.
    """
    dev, buf = agent.device, agent.buffer
    T, N = buf.num_steps, buf.num_envs
    def as_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=dev)

    if start is None:
        loop = LoopState(ep_return=[0.0] * N, ep_length=[0] * N,
                         next_eval=schedule.eval_every, next_checkpoint=schedule.checkpoint_every)
        next_obs, _ = envs.reset()
        agent.normalize(as_tensor(next_obs), update=True)
    else:
        loop, next_obs = start
    recent = deque(loop.recent_returns, maxlen=20)
    ep_return, ep_length = np.array(loop.ep_return), np.array(loop.ep_length)
    num_iterations = max(1, schedule.steps // (T * N))
    wall, terms = _wall_clock(loop), _Terms()

    while loop.step < schedule.steps and loop.solved_at is None:
        if agent.cfg.anneal_lr:
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
            value = agent.value(obs_n)
            next_v = value
            if truncated.any():  # bootstrap from the final observation of truncated episodes
                final = np.stack([info["final_obs"][i] if truncated[i] else next_obs[i]
                                  for i in range(N)])
                v_final = agent.value(agent.normalize(as_tensor(final)))
                next_v = torch.where(torch.as_tensor(truncated, device=dev), v_final, value)
            buf.next_values[t] = next_v
            _count_episodes(ep_return, ep_length, reward, ended, recent)
        terms.add(agent.learn())
        loop.iteration += 1
        loop.step += T * N
        loop.ep_return, loop.ep_length = ep_return.tolist(), ep_length.tolist()
        _after_iteration(agent, envs, run, schedule, loop, next_obs, recent, terms, wall,
                         on_progress, check_every_iteration=on_progress is not None)
    return loop


def train_off_policy(
    agent: Any,
    envs: Any,
    run: Run,
    schedule: Schedule,
    *,
    start: tuple[LoopState, np.ndarray] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> LoopState:
    """Act, store in the replay buffer, and learn from uniform batches (SAC, TD3, DDPG, DQN).

    One iteration is `train_freq` vector-env steps, with `agent.explore(obs, step)` or, for the
    first `learning_starts` env steps, uniformly random actions; then `gradient_steps` calls of
    `agent.update(agent.replay.sample(batch_size))`. An episode that ended stores its real final
    observation (info["final_obs"]) as next_obs: truncation bootstraps from it, termination
    does not. A non-finite action means the networks diverged: Diverged names the loss term.
    """
    cfg, dev, info = agent.cfg, agent.device, agent.info
    N = envs.num_envs
    if start is None:
        loop = LoopState(ep_return=[0.0] * N, ep_length=[0] * N,
                         next_eval=schedule.eval_every, next_checkpoint=schedule.checkpoint_every)
        obs, _ = envs.reset()
    else:
        loop, obs = start
    recent = deque(loop.recent_returns, maxlen=20)
    ep_return, ep_length = np.array(loop.ep_return), np.array(loop.ep_length)
    wall, terms = _wall_clock(loop), _Terms()

    while loop.step < schedule.steps and loop.solved_at is None:
        for _ in range(cfg.train_freq):
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=dev)
            if loop.step < cfg.learning_starts:
                action = uniform_actions(info, N, dev)
            else:
                action = agent.explore(obs_t, loop.step)
            action_np = action.cpu().numpy()
            if not np.all(np.isfinite(action_np)):
                _check_finite(loop.step, terms.means() if terms.count else {})
                raise Diverged(f"the policy's action became non-finite at step {loop.step}; "
                               "the last good checkpoint is kept")
            next_obs, reward, terminated, truncated, step_info = envs.step(action_np)
            ended = terminated | truncated
            final = next_obs
            if ended.any():  # the vector env already reset these; store where they ended
                final = next_obs.copy()
                for i in np.flatnonzero(ended):
                    final[i] = step_info["final_obs"][i]
            agent.replay.add(obs_t, action, reward, final, terminated, truncated)
            _count_episodes(ep_return, ep_length, reward, ended, recent)
            obs = next_obs
            loop.step += N
        if loop.step >= cfg.learning_starts and agent.replay.size >= agent.replay.n_step:
            for _ in range(cfg.gradient_steps):
                terms.add(agent.update(agent.replay.sample(cfg.batch_size)))
        loop.iteration += 1
        loop.ep_return, loop.ep_length = ep_return.tolist(), ep_length.tolist()
        _after_iteration(agent, envs, run, schedule, loop, obs, recent, terms, wall,
                         on_progress, check_every_iteration=False)
    return loop

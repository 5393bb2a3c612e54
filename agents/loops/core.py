"""The loop core: what every training loop does between its own iterations.

Every loop (on-policy, off-policy, offline, DAgger, and the families to come) is a plain
function that owns its data collection and updates and calls `Core.after_iteration` after each
iteration. The core evaluates, logs, reports progress, checks for divergence and checkpoints,
all in one place. Checkpoints are taken at iteration boundaries (the only points where the whole
state, envs included, is well defined), so resume is exact. Evaluation is the schedule's
`evaluate` (agents.runs.evaluation.evaluate unless a caller passes its own, e.g. a benchmark
that times it).
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
from agents.protocol import Agent
from agents.runs.evaluation import Evaluator, evaluate

if TYPE_CHECKING:
    import gymnasium as gym

    from agents.runs.run import Run


CHECKPOINT_WALL_S = 600.0
"""The default wall-time bound between checkpoints: 10 minutes."""


class Diverged(RuntimeError):
    """A loss term became non-finite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class Schedule:
    """When to stop, evaluate and checkpoint (env steps), and how to evaluate."""

    steps: int
    eval_every: int
    eval_episodes: int = 10
    target_return: float | None = None
    checkpoint_every: int = 0
    """0: checkpoint only at evaluations and at the end."""
    keep_checkpoints: int | None = 3
    """The newest checkpoints kept on disk (None: all)."""
    checkpoint_wall_s: float | None = CHECKPOINT_WALL_S
    """Also checkpoint at the first iteration boundary this many wall seconds after the last
    checkpoint (None: never), so a long run between evaluations can always be resumed."""
    evaluate: Evaluator = field(default=evaluate, compare=False, repr=False)
    """The evaluation protocol: (act, env, episodes) -> returns."""
    env_options: dict[str, Any] = field(default_factory=dict, compare=False)
    """The sim.make options of the run's envs (--dynamics), which `evaluate` already applies:
    for the loops that compute their own references on the same physics."""


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
    checkpoint_wall_s: float = 0.0
    """wall_s at the last checkpoint (the wall-time bound counts from there)."""
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


class Terms:
    """Sums of the loss terms since the last log point, kept on the device (no host sync)."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.count = 0

    def add(self, terms: dict[str, Any]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += 1

    def means(self) -> dict[str, float]:
        """Window means as Python floats: one host sync. A non-finite term stays non-finite."""
        return {k: float(v) / self.count for k, v in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.count = {}, 0


def check_finite(step: int, terms: dict[str, float]) -> None:
    """Raise Diverged naming the first non-finite loss term."""
    for name, value in terms.items():
        if not math.isfinite(value):
            raise Diverged(f"loss term {name!r} became {value} at step {step}; "
                           "the last good checkpoint is kept")


def _rng_state(device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


class Core:
    """One loop's shared state and its evaluate/log/progress/checkpoint/divergence step.

    `envs` is the vector env the loop steps, or None for a loop that steps no training env
    (BC). `extra_state` returns more training state for the checkpoint (a replay buffer, the
    imitation loops' references); the loop reads it back from `resume` itself.
    """

    def __init__(
        self, agent: Agent, envs: gym.vector.VectorEnv | None, run: Run, schedule: Schedule, *,
        on_progress: Callable[[Progress], None] | None = None,
        extra_state: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.agent, self.envs, self.run, self.schedule = agent, envs, run, schedule
        self.on_progress, self.extra_state = on_progress, extra_state
        self.terms = Terms()
        self.loop = LoopState()
        self.recent: deque[float] = deque(maxlen=20)
        self.ep_return, self.ep_length = np.zeros(0), np.zeros(0, dtype=np.int64)
        self._t0, self._wall0 = time.perf_counter(), 0.0

    def start(self, resume: dict[str, Any] | None) -> np.ndarray | None:
        """A fresh loop state and reset envs, or the checkpointed ones; returns the next obs."""
        n = 0 if self.envs is None else self.envs.num_envs
        if resume is None:
            s = self.schedule
            self.loop = LoopState(ep_return=[0.0] * n, ep_length=[0] * n, next_eval=s.eval_every,
                                  next_checkpoint=s.checkpoint_every)
            next_obs = None if self.envs is None else self.envs.reset()[0]
        else:
            self.loop, next_obs = self._restore(resume)
            self._reschedule()
        self.recent.extend(self.loop.recent_returns)
        self.ep_return, self.ep_length = np.array(self.loop.ep_return), np.array(
            self.loop.ep_length, dtype=np.int64)
        self._t0, self._wall0 = time.perf_counter(), self.loop.wall_s
        return next_obs

    def _reschedule(self) -> None:
        """After a resume, the next evaluation (and step-count checkpoint) comes at the first
        multiple of the schedule's interval past the current step. With the run's own intervals
        that is what the checkpoint holds (the loop keeps them there), so a resume stays
        bit-exact; a resume with another --eval-every or --checkpoint-every follows the new
        one from here instead of first waiting for the old one's next point."""
        loop, s = self.loop, self.schedule
        loop.next_eval = (loop.step // s.eval_every + 1) * s.eval_every
        if s.checkpoint_every:
            loop.next_checkpoint = (loop.step // s.checkpoint_every + 1) * s.checkpoint_every

    def _restore(self, tree: dict[str, Any]) -> tuple[LoopState, np.ndarray | None]:
        agent = self.agent
        agent.load_state_dict(tree["agent"] | {"optim": tree["optim"]})
        if self.envs is not None:
            for e, st in zip(self.envs.envs, tree["envs"], strict=True):  # type: ignore[attr-defined]
                sim.set_state(e, st)
        _set_rng_state(tree["rng"], agent.device)
        terms = tree.get("terms")  # absent from checkpoints written before it was saved
        if terms is not None:
            self.terms.count = int(terms["count"])
            self.terms.sums = {k: v.to(agent.device) if isinstance(v, torch.Tensor) else v
                               for k, v in terms["sums"].items()}
        loop = dict(tree["loop"])
        next_obs = loop.pop("next_obs")
        obs = None if self.envs is None else np.asarray(next_obs, dtype=np.float32)
        return LoopState(**loop), obs

    def count_episodes(self, reward: np.ndarray, ended: np.ndarray) -> None:
        """Add one vector step to each env's return and length; finished ones go to `recent`."""
        self.ep_return += reward
        self.ep_length += 1
        for i in np.flatnonzero(ended):
            self.recent.append(float(self.ep_return[i]))
            self.ep_return[i], self.ep_length[i] = 0.0, 0

    def recent_return(self) -> float | None:
        return float(np.mean(self.recent)) if self.recent else None

    def raise_if_diverged(self) -> None:
        check_finite(self.loop.step, self.terms.means() if self.terms.count else {})

    def after_iteration(
        self, next_obs: np.ndarray | None, *, check_every_iteration: bool = False,
        force_eval: bool = False, train_fields: dict[str, Any] | None = None,
        eval_fields: Callable[[float], dict[str, Any]] | None = None,
    ) -> None:
        """Evaluate, log and checkpoint when due, and report progress.

        Loss terms reach the host only when logged or checked, and a non-finite one raises
        Diverged before a checkpoint is written, so LATEST always names a finite state.
        `force_eval` evaluates (and checkpoints) now whatever the schedule says;
        `train_fields` and `eval_fields(return_mean)` add a loop's own keys to the records.
        """
        loop, schedule = self.loop, self.schedule
        loop.wall_s = self._wall()
        due_eval = force_eval or loop.step >= loop.next_eval or loop.step >= schedule.steps
        due_steps = bool(schedule.checkpoint_every) and loop.step >= loop.next_checkpoint
        due_ckpt = due_steps or (schedule.checkpoint_wall_s is not None and loop.wall_s
                                 - loop.checkpoint_wall_s >= schedule.checkpoint_wall_s)
        logged: dict[str, float] = {}
        if check_every_iteration or due_eval or due_ckpt:
            logged = self.terms.means() if self.terms.count else {}
            check_finite(loop.step, logged)
        loop.train_s = loop.wall_s - loop.eval_s
        loop.recent_returns = list(self.recent)
        loop.ep_return, loop.ep_length = self.ep_return.tolist(), self.ep_length.tolist()
        if due_eval:
            self.run.log({"kind": "train", "step": loop.step, "wall_s": loop.wall_s,
                          "train_s": loop.train_s, "steps_per_s": self.steps_per_s(),
                          "episode_return": self.recent_return(), **(train_fields or {}),
                          **logged})
            self.terms.reset()
            self._evaluate(eval_fields)
        if due_steps:
            while loop.next_checkpoint <= loop.step:
                loop.next_checkpoint += schedule.checkpoint_every
        if due_eval or due_ckpt:
            loop.checkpoint_wall_s = loop.wall_s
            self._checkpoint(next_obs)
        if self.on_progress:
            self.on_progress(Progress(loop.step, schedule.steps, self.steps_per_s(),
                                      loop.last_eval, self.recent_return()))

    def steps_per_s(self) -> float:
        return self.loop.step / max(self.loop.train_s, 1e-9)

    def _wall(self) -> float:
        """Wall seconds of the run so far, continuing the count of a resumed loop."""
        return self._wall0 + time.perf_counter() - self._t0

    def _evaluate(self, eval_fields: Callable[[float], dict[str, Any]] | None) -> None:
        loop, schedule, agent = self.loop, self.schedule, self.agent
        e0 = time.perf_counter()
        returns = schedule.evaluate(lambda o: agent.act(o, deterministic=True).cpu().numpy(),
                                    self.run.env, schedule.eval_episodes)
        loop.eval_s += time.perf_counter() - e0
        loop.wall_s = self._wall()
        loop.last_eval = float(returns.mean())
        self.run.log({"kind": "eval", "step": loop.step, "wall_s": loop.wall_s,
                      "train_s": loop.train_s, "return_mean": loop.last_eval,
                      "return_std": float(returns.std()), "episodes": len(returns),
                      **(eval_fields(loop.last_eval) if eval_fields else {})})
        while loop.next_eval <= loop.step:
            loop.next_eval += schedule.eval_every
        if schedule.target_return is not None and loop.last_eval >= schedule.target_return:
            loop.solved_at = loop.step

    def _checkpoint(self, next_obs: np.ndarray | None) -> None:
        agent, envs = self.agent, self.envs
        agent_state = agent.state_dict()
        self.run.save(self.loop.step, {
            "agent": {k: v for k, v in agent_state.items() if k != "optim"},
            "optim": agent_state["optim"],
            "loop": vars(self.loop) | {"next_obs": [] if next_obs is None else next_obs.tolist()},
            "rng": _rng_state(agent.device),
            "terms": {"count": self.terms.count, "sums": dict(self.terms.sums)},
            "envs": [] if envs is None else [sim.get_state(e) for e in envs.envs],  # type: ignore[attr-defined]
            **(self.extra_state() if self.extra_state else {}),
        }, keep_last=self.schedule.keep_checkpoints)

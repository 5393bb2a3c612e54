"""The DAgger loop: rounds of fitting, then running the learner while the expert labels.

Ross, Gordon & Bagnell (2011), Algorithm 3.1; the algorithm and its config are documented in
agents/imitation/dagger.py. `schedule.steps` caps the expert labels: the episode that reaches
the cap is cut there (its last step marked truncated, a time limit rather than a failure) and
committed like any other, so RUN/dataset never holds more labels than the budget. The
aggregated dataset is committed episode by episode in the verified layout `kinema collect`
writes, so a crash loses at most the episode in progress; a checkpoint is taken after each
round's fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

import sim
from agents.experts.base import Expert, make_expert
from agents.imitation.scores import reference_returns, score_fields
from agents.loops.core import Core, LoopState, Progress, Schedule
from agents.loops.offline import fit, loop_state, open_dataset, split
from agents.protocol import ImitationAgent
from data.dataset import Dataset, DatasetWriter
from data.episode import Episode
from data.record import open_writer, run_episode

if TYPE_CHECKING:
    import gymnasium as gym

    from agents.imitation.dagger import DAggerConfig
    from agents.runs.run import Run


def beta_schedule(i: int, p: float) -> float:
    """Probability of executing the expert's action in round i: 1 for i = 0, p^i after."""
    return 1.0 if i == 0 else p**i


class LabelBudget:
    """The expert, asked for at most `limit` labels in one episode (None: no limit).

    `run_episode` asks `signal()` before each step and `act()` once per step (the label); after
    `limit` labels the signal is "stop", which ends the episode with its last step truncated.
    The expert's own signals (a person's stop, discard or quit) pass through.
    """

    def __init__(self, expert: Expert, limit: int | None) -> None:
        self.expert, self.limit, self.given = expert, limit, 0
        self.name, self.spec, self.render_mode = expert.name, expert.spec, expert.render_mode

    def begin(self, env: gym.Env, obs: np.ndarray) -> bool:
        self.given = 0
        return self.expert.begin(env, obs)

    def signal(self) -> str | None:
        sig = self.expert.signal()
        if sig is None and self.limit is not None and self.given >= self.limit:
            return "stop"
        return sig

    def act(self, obs: np.ndarray, env: gym.Env) -> np.ndarray:
        self.given += 1
        return self.expert.act(obs, env)


def cut(ep: Episode, steps: int) -> Episode:
    """The first `steps` steps of `ep` (all of it if shorter), the last one truncated."""
    if steps >= ep.steps:
        return ep
    truncations = ep.truncations[:steps].copy()
    truncations[-1] = True
    labels = None if ep.expert_actions is None else ep.expert_actions[:steps]
    return dataclasses.replace(ep, observations=ep.observations[: steps + 1],
                               actions=ep.actions[:steps], rewards=ep.rewards[:steps],
                               terminations=ep.terminations[:steps], truncations=truncations,
                               expert_actions=labels)


class Rounds:
    """One DAgger run's collection: the env, the expert, the dataset writer and the label cap.

    `state` is the loop's checkpointed state (round, labels, seeds). Runs started before the
    cap existed have no "label_cap" in it and keep recording whole episodes, so they resume to
    the numbers they would have reached.
    """

    def __init__(self, cfg: DAggerConfig, env: gym.Env, expert: Expert, writer: DatasetWriter,
                 state: dict[str, Any], loop: LoopState, steps: int, discrete: bool) -> None:
        self.cfg, self.env, self.expert, self.writer = cfg, env, expert, writer
        self.state, self.loop, self.steps, self.discrete = state, loop, steps, discrete

    def left(self) -> int | None:
        """Labels left in the budget (None: an old run without the cap)."""
        return self.steps - self.loop.step if self.state.get("label_cap") else None

    def spent(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def episode(self, seed: int, **mixture: Any) -> tuple[Episode | None, str | None]:
        """One episode with at most `left()` labels (see `run_episode` for the mixture)."""
        return run_episode(self.env, LabelBudget(self.expert, self.left()), seed,
                           discrete=self.discrete, **mixture)

    def add(self, ep: Episode) -> None:
        self.writer.add(ep)  # aggregation: D <- D u D_pi, committed episode by episode
        self.loop.step += ep.steps

    def initial(self, env_name: str) -> list[Episode]:
        """beta_0 = 1: the given demonstrations, or `initial_episodes` of the expert driving."""
        cfg, base = self.cfg, int(self.state["seed_base"])
        demos: list[Episode] = []
        if cfg.dataset:  # copied, so the input stays as it is
            for d in list(open_dataset(cfg.dataset, env_name).episodes())[: cfg.max_episodes]:
                left = self.left()
                if not self.spent():
                    demos.append(d if left is None else cut(d, left))
                    self.add(demos[-1])
        else:
            for i in range(cfg.initial_episodes):
                ep = None if self.spent() else self.episode(base + i)[0]
                if ep is not None:
                    demos.append(ep)
                    self.add(ep)
        if not demos:
            raise ValueError("the expert gave no demonstrations to start from")
        return demos

    def collect(self, i: int, act: Callable[[np.ndarray], np.ndarray]) -> str | None:
        """Round i: up to `episodes_per_round` episodes of pi_i = beta_i pi* + (1 - beta_i)
        pi_theta, labelled by the expert, within the budget; "quit" when a person quit."""
        base = int(self.state["seed_base"])
        rng = np.random.default_rng(base + i)
        for j in range(self.cfg.episodes_per_round):
            if self.spent():
                break
            ep, sig = self.episode(base + 100 * i + j, learner=act, rng=rng,
                                   beta=beta_schedule(i, self.cfg.beta_decay))
            if sig == "quit":
                return sig
            if ep is not None:
                self.add(ep)
        self.state.update(round=i, labels=self.loop.step)
        return None


def fit_round(agent: ImitationAgent, core: Core, ds_path: Path, state: dict[str, Any],
              i: int) -> None:
    """Train pi_theta on the aggregated D (round i), then evaluate, log and checkpoint."""
    cfg = cast("DAggerConfig", agent.cfg)
    obs, actions = Dataset.open(ds_path).transitions()
    data = split(obs, actions, cfg.val_frac, state["split_seed"] + i, agent.device)
    if not cfg.warm_start and i > 0:  # a fresh learner each round, as in the paper
        agent.reinitialize()
    agent.set_statistics(data.obs)
    agent.reset_early_stopping()
    _, logged = fit(agent, data, cfg.updates_per_round)
    agent.restore_best()
    core.loop.iteration = i
    core.terms.reset()
    core.terms.add(logged)
    scores = score_fields(state["reference"], state["labels"],
                          {"round": i, "beta": beta_schedule(i, cfg.beta_decay)})
    core.after_iteration(None, force_eval=True, train_fields={"round": i}, eval_fields=scores)


def train_dagger(agent: ImitationAgent, envs: gym.vector.VectorEnv | None, run: Run,
                 schedule: Schedule, *, resume: dict[str, Any] | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """DAgger rounds until `schedule.steps` expert labels."""
    cfg = cast("DAggerConfig", agent.cfg)
    env_name = run.env
    expert = make_expert(cfg.expert, env_name)
    env = sim.make(env_name, render_mode=expert.render_mode)
    ds_path = run.path / "dataset"
    writer = open_writer(ds_path, env_name, env, {"kind": "dagger", "expert": expert.spec},
                         append=resume is not None)
    state = loop_state(resume)
    core = Core(agent, None, run, schedule, on_progress=on_progress,
                extra_state=lambda: {"imitation": state})
    core.start(resume)
    loop = core.loop
    rounds = Rounds(cfg, env, expert, writer, state, loop, schedule.steps, agent.info.discrete)

    def learner(o: np.ndarray) -> np.ndarray:
        return agent.act(o[None], deterministic=True).cpu().numpy()[0]

    try:
        if resume is None:
            state.update(split_seed=int(torch.randint(2**31 - 1, ())), round=0,
                         seed_base=10**7 + 1000 * int(torch.randint(10**5, ())), labels=0,
                         label_cap=True)
            demos = rounds.initial(env_name)
            state["labels"] = loop.step
            state["reference"] = reference_returns(
                env_name, expert.spec, np.array([d.total_return for d in demos]),
                schedule.eval_episodes, expert=expert)
        fitted = resume is not None  # a checkpoint is taken after a round's fit: collect next
        while True:
            if not fitted:
                fit_round(agent, core, ds_path, state, int(state["round"]))
            fitted = False
            if loop.step >= schedule.steps or loop.solved_at is not None:
                return loop
            if rounds.collect(int(state["round"]) + 1, learner) == "quit":
                return loop
    finally:
        writer.close()
        env.close()

"""The DAgger loop: rounds of fitting, then running the learner while the expert labels.

Ross, Gordon & Bagnell (2011), Algorithm 3.1; the algorithm and its config are documented in
agents/imitation/dagger.py. `schedule.steps` caps the expert labels. The aggregated dataset is
RUN/dataset, committed episode by episode in the verified layout `kinema collect` writes, so a
crash loses at most the episode in progress; a checkpoint is taken after each round's fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

import sim
from agents.experts.base import make_expert
from agents.imitation.scores import reference_returns, score_fields
from agents.loops.core import Core, LoopState, Progress, Schedule
from agents.loops.offline import fit, loop_state, open_dataset, split
from agents.protocol import ImitationAgent
from data.dataset import Dataset
from data.record import open_writer, run_episode

if TYPE_CHECKING:
    import gymnasium as gym

    from agents.imitation.dagger import DAggerConfig
    from agents.runs.run import Run


def beta_schedule(i: int, p: float) -> float:
    """Probability of executing the expert's action in round i: 1 for i = 0, p^i after."""
    return 1.0 if i == 0 else p**i


def train_dagger(agent: ImitationAgent, envs: gym.vector.VectorEnv | None, run: Run,
                 schedule: Schedule, *, resume: dict[str, Any] | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """DAgger rounds until `schedule.steps` expert labels."""
    cfg = cast("DAggerConfig", agent.cfg)
    env_name, discrete = run.env, agent.info.discrete
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
    try:
        if resume is None:
            state.update(split_seed=int(torch.randint(2**31 - 1, ())), round=0,
                         seed_base=10**7 + 1000 * int(torch.randint(10**5, ())), labels=0)
            if cfg.dataset:  # start from given demonstrations, copied so the input stays as it is
                demos = list(open_dataset(cfg.dataset, env_name).episodes())[: cfg.max_episodes]
            else:
                found = [run_episode(env, expert, state["seed_base"] + i, discrete=discrete)[0]
                         for i in range(cfg.initial_episodes)]
                demos = [d for d in found if d is not None]
            if not demos:
                raise ValueError("the expert gave no demonstrations to start from")
            writer.add(demos)
            state["labels"] = loop.step = sum(d.steps for d in demos)
            state["reference"] = reference_returns(
                env_name, expert.spec, np.array([d.total_return for d in demos]),
                schedule.eval_episodes, expert=expert)
        fitted = resume is not None  # a checkpoint is taken after a round's fit: collect next
        while True:
            i = int(state["round"])
            if not fitted:
                obs, actions = Dataset.open(ds_path).transitions()
                data = split(obs, actions, cfg.val_frac, state["split_seed"] + i, agent.device)
                if not cfg.warm_start and i > 0:  # a fresh learner each round, as in the paper
                    agent.reinitialize()
                agent.set_statistics(data.obs)
                agent.reset_early_stopping()
                _, logged = fit(agent, data, cfg.updates_per_round)
                agent.restore_best()
                loop.iteration = i
                core.terms.reset()
                core.terms.add(logged)
                scores = score_fields(state["reference"], state["labels"],
                                      {"round": i, "beta": beta_schedule(i, cfg.beta_decay)})
                core.after_iteration(None, force_eval=True, train_fields={"round": i},
                                     eval_fields=scores)
            fitted = False
            if loop.step >= schedule.steps or loop.solved_at is not None:
                return loop
            i += 1
            beta = beta_schedule(i, cfg.beta_decay)
            rng = np.random.default_rng(int(state["seed_base"]) + i)
            for j in range(cfg.episodes_per_round):
                seed = int(state["seed_base"]) + 100 * i + j

                def learner(o: np.ndarray) -> np.ndarray:
                    return agent.act(o[None], deterministic=True).cpu().numpy()[0]

                ep, sig = run_episode(env, expert, seed, discrete=discrete, learner=learner,
                                      beta=beta, rng=rng)
                if sig == "quit":
                    return loop
                if ep is not None:
                    writer.add(ep)  # aggregation: D <- D u D_pi, committed episode by episode
                    loop.step += ep.steps
            state.update(round=i, labels=loop.step)
    finally:
        writer.close()
        env.close()

"""Start, resume and reload training runs: the glue between configs, envs, agents and runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import sim
from agents.loops.core import LoopState, Progress, Schedule
from agents.protocol import Agent, Algorithm
from agents.registry import algorithm, check_fits
from agents.runs.config import (
    MUTABLE_ON_RESUME,
    TrainConfig,
    config_difference,
    config_from_dict,
    resolve_device,
)
from agents.runs.evaluation import Evaluator, evaluate
from agents.runs.run import Run

OnProgress = Callable[[Progress], None] | None


@dataclass
class TrainResult:
    run: Path
    loop: LoopState


def _setup(cfg: TrainConfig, algo_cfg: Any, evaluator: Evaluator
           ) -> tuple[Algorithm, Agent, gym.vector.VectorEnv | None, Schedule]:
    algo = algorithm(cfg.algo)
    info = sim.spec(cfg.env).info
    check_fits(algo, cfg.env, info)
    if algo.check is not None:
        algo.check(algo_cfg, cfg.env)
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    agent = algo.make_agent(algo_cfg, info, device)
    envs = sim.make_vec(cfg.env, algo_cfg.num_envs, seed=cfg.seed) if algo.vector_envs else None
    steps = cfg.steps or algo.default_steps(cfg.env)
    schedule = Schedule(
        steps=steps,
        eval_every=cfg.eval_every or max(1, steps // 20),
        eval_episodes=cfg.eval_episodes,
        target_return=cfg.target_return,
        checkpoint_every=cfg.checkpoint_every,
        evaluate=evaluator,
    )
    return algo, agent, envs, schedule


def _run_loop(algo: Algorithm, agent: Agent, envs: gym.vector.VectorEnv | None, run: Run,
              schedule: Schedule, resume_tree: dict[str, Any] | None,
              on_progress: OnProgress) -> LoopState:
    with run:
        try:
            return algo.loop(agent, envs, run, schedule, resume=resume_tree,
                             on_progress=on_progress)
        finally:
            if envs is not None:
                envs.close()


def train(cfg: TrainConfig, algo_cfg: Any | None = None, *, on_progress: OnProgress = None,
          evaluator: Evaluator = evaluate) -> TrainResult:
    """A new run: runs/<env>-<algo>-<time>/ with config, metrics, TensorBoard, checkpoints.

    `evaluator` is the evaluation protocol the loop calls (a benchmark passes a timed one).
    """
    algo = algorithm(cfg.algo)
    algo_cfg = algo_cfg if algo_cfg is not None else algo.preset(cfg.env)
    algo, agent, envs, schedule = _setup(cfg, algo_cfg, evaluator)
    config = {"train": dataclasses.asdict(cfg), "algo_config": dataclasses.asdict(algo_cfg)}
    try:
        run = Run.create(Path(cfg.runs_dir), cfg.env, cfg.algo, config)
    except BaseException:
        if envs is not None:
            envs.close()
        raise
    return TrainResult(run.path, _run_loop(algo, agent, envs, run, schedule, None, on_progress))


def resume(
    run_path: Path, *, train_overrides: dict[str, Any] | None = None,
    algo_overrides: dict[str, Any] | None = None, on_progress: OnProgress = None,
    evaluator: Evaluator = evaluate,
) -> TrainResult:
    """Continue a run from its LATEST checkpoint, bit-exactly on CPU.

    Budget, evaluation, checkpoint and device options may change; any other difference is
    refused with the list of differing fields.
    """
    run = Run.open(run_path)
    saved_train, saved_algo = run.config["train"], run.config["algo_config"]
    diff = config_difference(saved_train, train_overrides or {}, MUTABLE_ON_RESUME)
    diff += config_difference(saved_algo, algo_overrides or {}, frozenset())
    if diff:
        raise ValueError(f"cannot resume {run.path.name} with a different config "
                         f"({'; '.join(diff)}); "
                         f"only {', '.join(sorted(MUTABLE_ON_RESUME))} may change")
    cfg = config_from_dict(TrainConfig, saved_train | (train_overrides or {}))
    algo_cfg = config_from_dict(algorithm(cfg.algo).config_cls, saved_algo)
    algo, agent, envs, schedule = _setup(cfg, algo_cfg, evaluator)
    try:
        step, tree = run.load()
        run.resume_from(step)
    except BaseException:
        if envs is not None:
            envs.close()
        raise
    return TrainResult(run.path, _run_loop(algo, agent, envs, run, schedule, tree, on_progress))


def load_agent(run_path: Path, *, step: int | None = None, device: str = "cpu"
               ) -> tuple[Agent, Run]:
    """The trained agent of a run (LATEST checkpoint unless `step`), for eval and export."""
    run = Run.open(run_path)
    algo = algorithm(run.config["train"]["algo"])
    algo_cfg = config_from_dict(algo.config_cls, run.config["algo_config"])
    agent = algo.make_agent(algo_cfg, sim.spec(run.env).info, resolve_device(device))
    _, tree = run.load(step)
    agent.load_state_dict(tree["agent"] | {"optim": tree["optim"]})
    return agent, run


__all__ = ["Progress", "TrainConfig", "TrainResult", "load_agent", "resume", "train"]

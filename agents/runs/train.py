"""Start, resume and reload training runs: the glue between configs, envs, agents and runs."""

from __future__ import annotations

import dataclasses
import functools
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
    default_eval_every,
    env_options,
    resolve_device,
    typed_fields,
)
from agents.runs.evaluation import Evaluator, evaluate
from agents.runs.restore import check_resume_tree, restore_agent
from agents.runs.run import CONFIG_FILE, Run, RunError, check_runs_dir
from sim.errors import UnknownNameError

OnProgress = Callable[[Progress], None] | None


STOP_REASONS = ("budget", "target_return", "converged", "early_stopping", "expert_quit")
"""Why training stopped: the step budget was spent, an evaluation reached --target-return, the
stopping rule of a tabular planner or MaxEnt IRL was met (converged), early stopping on the
validation loss ended it (BC), or the expert quit (DAgger, teleop)."""


@dataclass
class TrainResult:
    run: Path
    loop: LoopState
    stopped: str = "budget"
    """One of STOP_REASONS."""


def stop_reason(loop: LoopState, steps: int, agent: Agent) -> str:
    """Why a loop that returned normally stopped (one of STOP_REASONS).

    Short of the budget and the target, a DAgger loop (its config names an expert) ends only
    when the expert quits; a tabular planner or MaxEnt IRL when it converged; BC's loop only
    when early stopping ends it.
    """
    if loop.solved_at is not None:
        return "target_return"
    if loop.step >= steps:
        return "budget"
    if getattr(getattr(agent, "cfg", None), "expert", None) is not None:
        return "expert_quit"
    if getattr(agent, "converged", False):  # dynamic programming, MaxEnt IRL: the tolerance
        return "converged"
    return "early_stopping" if getattr(agent, "stopped", False) else "budget"


def _setup(cfg: TrainConfig, algo_cfg: Any, evaluator: Evaluator
           ) -> tuple[Algorithm, Agent, gym.vector.VectorEnv | None, Schedule]:
    algo = algorithm(cfg.algo)
    info = sim.spec(cfg.env).info
    check_fits(algo, cfg.env, info)
    if algo.check is not None:
        algo.check(algo_cfg, cfg.env)
    reward = _learned_reward(cfg, algo)  # before the seed: the agent's init does not see it
    options = _dynamics_options(cfg)
    if options:  # training and evaluation on the changed physics
        evaluator = functools.partial(evaluator, **options)
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    agent = algo.make_agent(algo_cfg, info, device)
    envs = sim.make_vec(cfg.env, algo_cfg.num_envs, seed=cfg.seed, **options) if (
        algo.vector_envs and reward is None) else None
    if reward is not None:  # the same envs, their reward replaced by the learned one
        from agents.irl.reward import learned_reward_envs

        envs = learned_reward_envs(reward, cfg.env, algo_cfg.num_envs, seed=cfg.seed,
                                   **options)
    steps = cfg.steps or algo.default_steps(cfg.env)
    schedule = Schedule(
        steps=steps,
        eval_every=cfg.eval_every or default_eval_every(steps),
        eval_episodes=cfg.eval_episodes,
        target_return=cfg.target_return,
        checkpoint_every=cfg.checkpoint_every,
        keep_checkpoints=cfg.keep_checkpoints or None,
        evaluate=evaluator,
        env_options=options,
    )
    return algo, agent, envs, schedule


def _dynamics_options(cfg: TrainConfig) -> dict[str, Any]:
    """The sim.make options of --dynamics, checked on one env of the run's (a parameter the
    env does not expose is refused in one line)."""
    options = env_options(cfg.dynamics)
    if options:
        if not algorithm(cfg.algo).vector_envs:
            raise ValueError(f"--dynamics needs an algorithm that steps training envs; "
                             f"{cfg.algo} learns from a dataset or a model of the env")
        try:
            sim.make(cfg.env, **options).close()
        except ValueError as e:
            raise ValueError(f"--dynamics {cfg.dynamics!r} does not fit {cfg.env!r}: "
                             f"{' '.join(str(e).split())}") from None
    return options


def _learned_reward(cfg: TrainConfig, algo: Algorithm) -> Any:
    """The reward of --learned-reward RUN, checked against the env, or None."""
    if not cfg.learned_reward:
        return None
    if not algo.vector_envs:
        raise ValueError(f"--learned-reward needs an algorithm that steps training envs; "
                         f"{algo.name} learns from a dataset")
    from agents.irl.reward import check_reward_fits, load_reward

    reward = load_reward(cfg.learned_reward)
    check_reward_fits(reward, cfg.learned_reward, cfg.env)
    return reward


def _run_loop(algo: Algorithm, agent: Agent, envs: gym.vector.VectorEnv | None, run: Run,
              schedule: Schedule, resume_tree: dict[str, Any] | None,
              on_progress: OnProgress) -> TrainResult:
    with run:
        try:
            loop = algo.loop(agent, envs, run, schedule, resume=resume_tree,
                             on_progress=on_progress)
        finally:
            if envs is not None:
                envs.close()
    return TrainResult(run.path, loop, stop_reason(loop, schedule.steps, agent))


def train(cfg: TrainConfig, algo_cfg: Any | None = None, *, on_progress: OnProgress = None,
          evaluator: Evaluator = evaluate) -> TrainResult:
    """A new run: runs/<env>-<algo>-<time>/ with config, metrics, TensorBoard, checkpoints.

    `evaluator` is the evaluation protocol the loop calls (a benchmark passes a timed one).
    """
    algo = algorithm(cfg.algo)
    algo_cfg = algo_cfg if algo_cfg is not None else algo.preset(cfg.env)
    check_runs_dir(Path(cfg.runs_dir))  # before envs and networks are built
    algo, agent, envs, schedule = _setup(cfg, algo_cfg, evaluator)
    config = {"train": dataclasses.asdict(cfg), "algo_config": dataclasses.asdict(algo_cfg)}
    try:
        run = Run.create(Path(cfg.runs_dir), cfg.env, cfg.algo, config)
    except BaseException:
        if envs is not None:
            envs.close()
        raise
    return _run_loop(algo, agent, envs, run, schedule, None, on_progress)


def resume(
    run_path: Path, *, train_overrides: dict[str, Any] | None = None,
    algo_overrides: dict[str, Any] | None = None, on_progress: OnProgress = None,
    evaluator: Evaluator = evaluate,
) -> TrainResult:
    """Continue a run from its LATEST checkpoint, bit-exactly on CPU.

    Budget, evaluation, checkpoint and device options may change; any other difference is
    refused with the list of differing fields. The checkpoint is read and checked against the
    agent config.json describes before anything in the run folder changes.
    """
    run = Run.open(run_path)
    overrides = train_overrides or {}
    cfg, algo_cfg = saved_configs(run, overrides)
    diff = config_difference(run.config["train"], overrides, MUTABLE_ON_RESUME)
    diff += config_difference(run.config["algo_config"], algo_overrides or {}, frozenset())
    if diff:
        raise ValueError(f"cannot resume {run.path.name} with a different config "
                         f"({'; '.join(diff)}); "
                         f"only {', '.join(sorted(MUTABLE_ON_RESUME))} may change")
    algo, agent, envs, schedule = _setup(cfg, algo_cfg, evaluator)
    try:
        step, tree = run.load()
        folder = run.path / "checkpoints" / str(step)
        check_resume_tree(tree, folder, agent, None if envs is None else envs.num_envs)
        restore_agent(agent, tree, folder)  # the loop loads it again; this finds faults first
        run.clean_leftovers()
        run.resume_from(step)
    except BaseException:
        if envs is not None:
            envs.close()
        raise
    return _run_loop(algo, agent, envs, run, schedule, tree, on_progress)


def saved_configs(run: Run, overrides: dict[str, Any] | None = None) -> tuple[TrainConfig, Any]:
    """The run's TrainConfig (with `overrides`) and algorithm config, from its config.json.

    A fault of config.json (a missing section, a value of the wrong type or out of range) is a
    RunError naming the file; a bad override is a ValueError naming its flag. The saved device
    is checked as a value only: this machine may lack it, and --device may change it.
    """
    file = run.path / CONFIG_FILE
    sections = {}
    for name in ("train", "algo_config"):
        section = run.config.get(name)
        if not isinstance(section, dict):
            raise RunError(f"{file} has no {name!r} section (an object of options); a run's "
                           "config holds 'train' and 'algo_config'")
        sections[name] = section
    where = "train"
    try:
        saved = typed_fields(TrainConfig, sections["train"])
        TrainConfig(**(saved | {"device": "cpu"}))
        sim.spec(saved["env"])
        where = "algo_config"
        algo_cfg = config_from_dict(algorithm(saved["algo"]).config_cls, sections["algo_config"])
    except (ValueError, UnknownNameError) as e:
        raise RunError(f"{file}: in {where!r}, {e}") from None
    return TrainConfig(**(saved | (overrides or {}))), algo_cfg


def load_agent(run_path: Path, *, step: int | None = None, device: str = "cpu"
               ) -> tuple[Agent, Run]:
    """The trained agent of a run (LATEST checkpoint unless `step`), for eval and export."""
    run = Run.open(run_path)
    cfg, algo_cfg = saved_configs(run, {"device": device})
    algo = algorithm(cfg.algo)
    try:
        info = sim.spec(run.env).info
    except UnknownNameError as e:
        raise RunError(f"{run.path / CONFIG_FILE}: {e}") from None
    agent = algo.make_agent(algo_cfg, info, resolve_device(device))
    step, tree = run.load(step)
    restore_agent(agent, tree, run.path / "checkpoints" / str(step))
    return agent, run


__all__ = ["Progress", "TrainConfig", "TrainResult", "load_agent", "resume", "saved_configs",
           "train"]

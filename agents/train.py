"""Start, resume and reload training runs: the glue between configs, envs, agents and runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import sim
from agents.loops import LoopState, Progress, Schedule, restore
from agents.registry import Algorithm, algorithm, check_fits, config_from_dict
from agents.run import Run


@dataclass(frozen=True)
class TrainConfig:
    """Options of a training run that are not the algorithm's hyperparameters."""

    algo: str
    """Algorithm name (kinema train --help lists them)."""
    env: str
    """Environment name (kinema envs lists them)."""
    steps: int | None = None
    """Env-step budget (default: the algorithm's preset for the env)."""
    seed: int = 0
    """Seed of the networks, the sampling and the training envs (env i gets seed + i)."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    eval_every: int | None = None
    """Evaluate every N env steps (default: steps / 20)."""
    eval_episodes: int = 10
    """Deterministic evaluation episodes, seeds 10000.. 10000+K-1."""
    target_return: float | None = None
    """Stop at the first evaluation whose mean return reaches this."""
    checkpoint_every: int = 0
    """Checkpoint every N env steps (0: at each evaluation and at the end)."""
    threads: int = 1
    """torch CPU threads; 1 is fastest for small networks on few cores (see BENCHMARKS.md)."""
    runs_dir: str = "runs"
    """Folder that holds run directories."""

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every", "eval_episodes", "threads"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
        if self.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0, got {self.checkpoint_every}")
        resolve_device(self.device)


MUTABLE_ON_RESUME = frozenset(
    {"steps", "eval_every", "eval_episodes", "target_return", "checkpoint_every", "device",
     "threads", "runs_dir"}
)


@dataclass
class TrainResult:
    run: Path
    loop: LoopState


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else must be a device torch accepts here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r} asked for CUDA, but torch sees no CUDA device here; "
                         "use auto or cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def _setup(cfg: TrainConfig, algo_cfg: Any) -> tuple[Algorithm, Any, Any, Schedule]:
    algo = algorithm(cfg.algo)
    info = sim.spec(cfg.env).info
    check_fits(algo, cfg.env, info)
    algo.check(algo_cfg, cfg.env)
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    agent = algo.make_agent(algo_cfg, info, device)
    # imitation learners have no num_envs: their loops only evaluate on the env
    envs = sim.make_vec(cfg.env, getattr(algo_cfg, "num_envs", 1), seed=cfg.seed)
    steps = cfg.steps or algo.default_steps(cfg.env)
    schedule = Schedule(
        steps=steps,
        eval_every=cfg.eval_every or max(1, steps // 20),
        eval_episodes=cfg.eval_episodes,
        target_return=cfg.target_return,
        checkpoint_every=cfg.checkpoint_every,
    )
    return algo, agent, envs, schedule


def train(cfg: TrainConfig, algo_cfg: Any | None = None, *, on_progress=None) -> TrainResult:
    """A new run: runs/<env>-<algo>-<time>/ with config, metrics, TensorBoard, checkpoints."""
    algo = algorithm(cfg.algo)
    algo_cfg = algo_cfg if algo_cfg is not None else algo.preset(cfg.env)
    algo, agent, envs, schedule = _setup(cfg, algo_cfg)
    config = {"train": dataclasses.asdict(cfg), "algo_config": dataclasses.asdict(algo_cfg)}
    with Run.create(Path(cfg.runs_dir), cfg.env, cfg.algo, config) as run:
        try:
            loop = algo.loop(agent, envs, run, schedule, on_progress=on_progress)
        finally:
            envs.close()
        return TrainResult(run.path, loop)


def config_difference(
    saved: dict[str, Any], asked: dict[str, Any], allowed: frozenset
) -> list[str]:
    """'field: saved -> asked' for every field that differs and may not change."""
    return [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in asked.items()
            if k not in allowed and _jsonish(saved.get(k)) != _jsonish(v)]


def _jsonish(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def resume(
    run_path: Path, *, train_overrides: dict[str, Any] | None = None,
    algo_overrides: dict[str, Any] | None = None, on_progress=None,
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
    algo_cls = algorithm(cfg.algo).config_cls
    algo_cfg = config_from_dict(algo_cls, saved_algo)
    algo, agent, envs, schedule = _setup(cfg, algo_cfg)
    step, tree = run.load()
    start = restore(agent, envs, tree)
    run.resume_from(step)
    with run:
        try:
            loop = algo.loop(agent, envs, run, schedule, start=start, on_progress=on_progress)
        finally:
            envs.close()
        return TrainResult(run.path, loop)


def load_agent(run_path: Path, *, step: int | None = None, device: str = "cpu") -> tuple[Any, Run]:
    """The trained agent of a run (LATEST checkpoint unless `step`), for eval and export."""
    run = Run.open(run_path)
    algo = algorithm(run.config["train"]["algo"])
    algo_cfg = config_from_dict(algo.config_cls, run.config["algo_config"])
    agent = algo.make_agent(algo_cfg, sim.spec(run.env).info, resolve_device(device))
    _, tree = run.load(step)
    agent.load_state_dict(tree["agent"] | {"optim": tree["optim"]})
    return agent, run


__all__ = ["Progress", "TrainConfig", "TrainResult", "load_agent", "resume", "train"]

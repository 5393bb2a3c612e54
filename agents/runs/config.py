"""The options of a training run, declared once: the CLI's flags, help and resume rules come
from these fields (kinema/train.py), and configs round-trip through config.json here."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import torch


def option(*, resume: bool = False, positive: bool = False,
           metavar: str | None = None) -> dict[str, Any]:
    """Field metadata of a TrainConfig option.

    resume: the option may change when a run is resumed (MUTABLE_ON_RESUME);
    positive: an integer that must be >= 1 (checked here and by the `kinema train` flag);
    metavar: the value's name in `kinema train --help` (the docstring refers to it).
    """
    meta = {"resume": resume, "positive": positive, "metavar": metavar}
    return {k: v for k, v in meta.items() if v}


RESUME = option(resume=True)
"""Field metadata: this option may change when a run is resumed."""


@dataclass(frozen=True)
class TrainConfig:
    """Options of a training run that are not the algorithm's hyperparameters."""

    algo: str
    """Algorithm name (kinema train --help lists them)."""
    env: str
    """Environment name (kinema envs lists them)."""
    steps: int | None = field(default=None, metadata=option(resume=True, positive=True))
    """Env-step budget (default: the algorithm's preset for the env)."""
    seed: int = 0
    """Seed of the networks, the sampling and the training envs (env i gets seed + i)."""
    device: str = field(default="auto", metadata=RESUME)
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    eval_every: int | None = field(default=None,
                                  metadata=option(resume=True, positive=True, metavar="N"))
    """Evaluate every N env steps (default: steps / 20)."""
    eval_episodes: int = field(default=10, metadata=option(resume=True, positive=True, metavar="K"))
    """Deterministic evaluation episodes, seeds 10000.. 10000+K-1."""
    target_return: float | None = field(default=None, metadata=option(resume=True, metavar="R"))
    """Stop at the first evaluation whose mean return reaches R."""
    checkpoint_every: int = field(default=0, metadata=option(resume=True, metavar="N"))
    """Checkpoint every N env steps (0: at each evaluation and at the end)."""
    threads: int = field(default=1, metadata=option(resume=True, positive=True))
    """torch CPU threads; 1 is fastest for small networks on few cores (see BENCHMARKS.md)."""
    runs_dir: str = field(default="runs", metadata=RESUME)
    """Folder that holds run directories."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.metadata.get("positive") and v is not None and v < 1:
                raise ValueError(f"--{f.name.replace('_', '-')} must be a positive integer, "
                                 f"got {v}")
        if self.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0, got {self.checkpoint_every}")
        resolve_device(self.device)


MUTABLE_ON_RESUME = frozenset(f.name for f in dataclasses.fields(TrainConfig)
                              if f.metadata.get("resume"))
"""Options `kinema train --resume RUN` may change; any other difference is refused."""


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


def require(ok: bool, what: str, value: object, accepted: str) -> None:
    """Refuse a config value in one line that names it and what is accepted."""
    if not ok:
        raise ValueError(f"{what} must be {accepted}, got {value!r}")


def require_positive(cfg: object, *names: str, prefix: str = "") -> None:
    """Each named field of `cfg` must be an integer >= 1."""
    for name in names:
        v = getattr(cfg, name)
        require(isinstance(v, int) and v >= 1, f"{prefix}{name}", v, "an integer >= 1")


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a frozen config dataclass from its JSON form (lists back to tuples)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in data.items():
        origin = typing.get_origin(hints[k])
        if isinstance(v, list) and (origin is tuple or _has_tuple(hints[k])):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


def _has_tuple(tp: Any) -> bool:
    return isinstance(tp, types.UnionType) and any(typing.get_origin(a) is tuple
                                                    for a in typing.get_args(tp))


def config_difference(
    saved: dict[str, Any], asked: dict[str, Any], allowed: frozenset[str]
) -> list[str]:
    """'field: saved -> asked' for every field that differs and may not change."""
    return [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in asked.items()
            if k not in allowed and _jsonish(saved.get(k)) != _jsonish(v)]


def _jsonish(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v

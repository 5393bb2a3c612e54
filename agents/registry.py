"""The algorithms `kinema train` knows, and what each one needs."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents import loops, ppo
from sim.errors import UnknownNameError
from sim.registry import EnvInfo


@dataclass(frozen=True)
class Algorithm:
    name: str
    config_cls: type
    preset: Callable[[str], Any]
    """env name -> default config for that env."""
    make_agent: Callable[..., Any]
    """(config, EnvInfo, torch.device) -> agent."""
    loop: Callable[..., Any]
    actions: tuple[str, ...]
    """Action spaces it handles: 'discrete', 'continuous'."""
    default_steps: Callable[[str], int]
    description: str


ALGORITHMS: dict[str, Algorithm] = {
    "ppo": Algorithm(
        name="ppo",
        config_cls=ppo.PPOConfig,
        preset=ppo.preset,
        make_agent=ppo.PPO,
        loop=loops.train_on_policy,
        actions=("discrete", "continuous"),
        default_steps=lambda env: {"cartpole": 100_000, "pendulum": 200_000}.get(env, 1_000_000),
        description="Proximal Policy Optimization (Schulman et al. 2017), on-policy.",
    ),
}


def algorithm(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UnknownNameError("algorithm", name, ALGORITHMS) from None


def check_fits(algo: Algorithm, env: str, info: EnvInfo) -> None:
    """Refuse an algorithm on an action space it cannot handle, naming those that can."""
    kind = "discrete" if info.discrete else "continuous"
    if kind not in algo.actions:
        fits = sorted(a.name for a in ALGORITHMS.values() if kind in a.actions)
        raise ValueError(f"{algo.name} needs {' or '.join(algo.actions)} actions but {env!r} has "
                         f"{kind} actions; algorithms for {kind} actions: {', '.join(fits)}")


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a frozen config dataclass from its JSON form (lists back to tuples)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(fields)}")
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

"""The algorithms `kinema train` knows, and what each one needs."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents import bc, dagger, dqn, imitation_loops, loops, ppo, sac, td3
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
    check: Callable[[Any, str], None] = lambda cfg, env: None
    """(config, env) -> None; raises ValueError on inputs the loop would refuse later (run
    before the run folder is created, so a mistake leaves nothing behind)."""


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
    "sac": Algorithm(
        name="sac",
        config_cls=sac.SACConfig,
        preset=sac.preset,
        make_agent=sac.SAC,
        loop=loops.train_off_policy,
        actions=("continuous",),
        default_steps=lambda env: {"pendulum": 20_000, "inverted-pendulum": 50_000}.get(
            env, 1_000_000),
        description="Soft Actor-Critic (Haarnoja et al. 2018), off-policy, maximum entropy.",
    ),
    "td3": Algorithm(
        name="td3",
        config_cls=td3.TD3Config,
        preset=td3.preset,
        make_agent=td3.TD3,
        loop=loops.train_off_policy,
        actions=("continuous",),
        default_steps=lambda env: {"pendulum": 20_000, "inverted-pendulum": 50_000}.get(
            env, 1_000_000),
        description="Twin Delayed DDPG (Fujimoto et al. 2018), off-policy, deterministic.",
    ),
    "ddpg": Algorithm(
        name="ddpg",
        config_cls=td3.TD3Config,
        preset=td3.ddpg_preset,
        make_agent=td3.TD3,
        loop=loops.train_off_policy,
        actions=("continuous",),
        default_steps=lambda env: {"pendulum": 20_000, "inverted-pendulum": 50_000}.get(
            env, 1_000_000),
        description="Deep Deterministic Policy Gradient (Lillicrap et al. 2016): TD3's preset "
                    "with one critic, no delay, no target smoothing.",
    ),
    "dqn": Algorithm(
        name="dqn",
        config_cls=dqn.DQNConfig,
        preset=dqn.preset,
        make_agent=dqn.DQN,
        loop=loops.train_off_policy,
        actions=("discrete",),
        default_steps=lambda env: {"cartpole": 50_000}.get(env, 1_000_000),
        description="Double DQN (Mnih et al. 2015; van Hasselt et al. 2016), n-step, dueling.",
    ),
    "bc": Algorithm(
        name="bc",
        config_cls=bc.BCConfig,
        preset=bc.preset,
        make_agent=bc.BC,
        loop=imitation_loops.train_bc,
        actions=("discrete", "continuous"),
        default_steps=lambda env: 20_000,
        description="Behavioral cloning (Pomerleau 1989) from a dataset; steps are updates.",
        check=imitation_loops.check_inputs,
    ),
    "dagger": Algorithm(
        name="dagger",
        config_cls=dagger.DAggerConfig,
        preset=dagger.preset,
        make_agent=bc.BC,
        loop=imitation_loops.train_dagger,
        actions=("discrete", "continuous"),
        default_steps=lambda env: 5_000,
        description="DAgger (Ross et al. 2011): BC plus expert relabeling of the learner's "
                    "states; steps are expert labels.",
        check=imitation_loops.check_inputs,
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

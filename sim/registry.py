"""One registry of environments, every backend behind the Gymnasium API.

An entry is an `EnvSpec`: how to build the raw backend env plus what Kinema promises about it
(name, backend, tags). `make` adds the wrappers that every Kinema env shares: actions in
[-1, 1] scaled to the robot's units, flat float32 observations, and a stability guard. Widening
the registry is adding `register(EnvSpec(...))` lines in a backend module.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from sim.errors import UnknownNameError
from sim.wrappers import NormalizedActions, StabilityGuard

BACKENDS = ("gymnasium", "mujoco", "dm_control", "pybullet")
TAGS = ("locomotion", "manipulation", "cart-pole", "state", "pixels", "discrete", "continuous")


@dataclass(frozen=True)
class EnvSpec:
    """What Kinema promises about one environment."""

    name: str
    backend: str
    tags: tuple[str, ...]
    build: Callable[..., gym.Env] = field(repr=False, compare=False)
    """Builds the raw backend env: build(render_mode=..., **overrides) -> gym.Env."""
    max_episode_steps: int
    description: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} is not one of {BACKENDS}")
        unknown = set(self.tags) - set(TAGS)
        if unknown:
            raise ValueError(f"tags {sorted(unknown)} are not among {TAGS}")

    @property
    def info(self) -> EnvInfo:
        return _info(self.name)


@dataclass(frozen=True)
class EnvInfo:
    """Facts measured from a built env: spaces, control period, action units."""

    obs_shape: tuple[int, ...]
    obs_dtype: str
    discrete: bool
    action_shape: tuple[int, ...]
    n_actions: int | None
    action_low: tuple[float, ...] | None
    """Bounds of the robot's action units (before Kinema's [-1, 1] scaling)."""
    action_high: tuple[float, ...] | None
    dt: float
    """Control period in seconds (one env step)."""

    @property
    def rate_hz(self) -> float:
        return 1.0 / self.dt


_REGISTRY: dict[str, EnvSpec] = {}


def register(spec_: EnvSpec) -> None:
    if spec_.name in _REGISTRY:
        raise ValueError(f"environment {spec_.name!r} is registered twice")
    _REGISTRY[spec_.name] = spec_


def names(tag: str | None = None) -> list[str]:
    """Registered names, optionally only those carrying `tag`."""
    if tag is not None and tag not in TAGS:
        raise UnknownNameError("tag", tag, TAGS)
    return sorted(n for n, s in _REGISTRY.items() if tag is None or tag in s.tags)


def spec(name: str) -> EnvSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("environment", name, _REGISTRY) from None


def make(
    name: str, *, seed: int | None = None, render_mode: str | None = None, **overrides: Any
) -> gym.Env:
    """Build env `name` with Kinema's shared wrappers; seeded when `seed` is given."""
    s = spec(name)
    env = s.build(render_mode=render_mode, **overrides)
    env = gym.wrappers.TimeLimit(env, s.max_episode_steps) if env.spec is None else env
    if isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.dtype != np.float32:
        with warnings.catch_warnings():  # Box warns that float64 bounds lose precision: intended
            warnings.simplefilter("ignore", UserWarning)
            env = gym.wrappers.DtypeObservation(env, np.float32)
    env = StabilityGuard(env)
    if isinstance(env.action_space, gym.spaces.Box):
        env = NormalizedActions(env)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def make_vec(
    name: str, n: int, *, seed: int | None = None, asynchronous: bool = False, **overrides: Any
) -> gym.vector.VectorEnv:
    """`n` copies of `name` in a gymnasium vector env, sub-env i seeded with seed + i.

    Autoreset is SAME_STEP: an episode's last observation is in info["final_obs"] and the
    returned observation already starts the next episode, so on-policy learners can bootstrap
    through truncation and no reset is pending between steps (which keeps resume exact).
    """
    if n < 1:
        raise ValueError(f"number of envs must be >= 1, got {n}")
    spec(name)  # fail early with suggestions
    fns = [functools.partial(make, name, **overrides) for _ in range(n)]
    cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    envs = cls(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs


@functools.cache
def _info(name: str) -> EnvInfo:
    env = make(name)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        discrete = isinstance(act_space, gym.spaces.Discrete)
        raw = env.get_wrapper_attr("raw_action_space") if not discrete else None
        return EnvInfo(
            obs_shape=tuple(obs_space.shape),
            obs_dtype=str(obs_space.dtype),
            discrete=discrete,
            action_shape=() if discrete else tuple(act_space.shape),
            n_actions=int(act_space.n) if discrete else None,
            action_low=None if raw is None else tuple(float(x) for x in raw.low.ravel()),
            action_high=None if raw is None else tuple(float(x) for x in raw.high.ravel()),
            dt=float(_control_dt(env)),
        )
    finally:
        env.close()


def _control_dt(env: gym.Env) -> float:
    u = env.unwrapped
    for attr in ("dt", "tau", "control_timestep"):
        if hasattr(u, attr):
            return float(getattr(u, attr))
    fps = env.metadata.get("render_fps")
    if fps:
        return 1.0 / float(fps)
    raise ValueError(f"cannot tell the control period of {env}")

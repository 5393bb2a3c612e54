"""One registry of environments, every backend behind the Gymnasium API.

An entry is an `EnvSpec`: how to build the raw backend env plus what Kinema promises about it
(name, backend, tags). `make` adds the wrappers that every Kinema env shares: actions in
[-1, 1] scaled to the robot's units, flat float32 observations (pixels: uint8 HxWxC), a time
limit, and a stability guard; on request, the sim-to-real wrappers of `sim.sim2real`. Widening
the registry is adding `register(EnvSpec(...))` lines in a backend module.

Builders return the bare backend env (no Gymnasium wrappers): `make` owns the whole stack, which
keeps it short (the registry's overhead is benchmarked) and the same on every backend.

Backend modules register their entries when imported, and they are imported on first need, so
`import sim` loads no simulator: `spec`/`make` import them in BACKEND_MODULES order (cheapest
first) only until the name is found (`make("cartpole")` loads none of dm-control, MuJoCo or
PyBullet), while `names`, an unknown name and `register` import them all.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym

from sim import sim2real
from sim.errors import UnknownNameError
from sim.quiet import quiet_stdout
from sim.wrappers import FrameStack, NormalizedActions, PixelObservation, StabilityGuard

BACKENDS = ("gymnasium", "mujoco", "dm_control", "pybullet")
TAGS = ("locomotion", "manipulation", "cart-pole", "tabular", "state", "pixels", "discrete",
        "continuous")


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
    randomization: Mapping[str, tuple[float, float]] | None = field(default=None, compare=False)
    """Domain-randomization scale ranges {parameter: (low, high)} for `domain_randomization=True`;
    None: `sim2real.DEFAULT_RANGES` for every parameter the backend exposes."""
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """Default `make` options of this entry (e.g. frame_stack=3 for pixel entries)."""
    terminates: bool = True
    """Whether an episode can end by termination (falling over, reaching the goal), not only
    at the time limit. TD-MPC2's preset reads it (`episodic`); the known termination functions
    of agents.model_based.rewards agree with it (tests/agents/model_based/test_rewards.py)."""

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
    name: str = ""
    """The registry entry these facts were measured from (an agent that needs env knowledge
    beyond the spaces, e.g. PETS's known reward function, looks it up by this name)."""

    @property
    def rate_hz(self) -> float:
        return 1.0 / self.dt

    @property
    def obs_dim(self) -> int:
        """Width of the flattened observation."""
        return int(math.prod(self.obs_shape))

    @property
    def act_dim(self) -> int:
        """Width of the action vector networks produce (discrete: the number of actions)."""
        if self.discrete:  # a discrete entry always has n_actions
            return int(cast(int, self.n_actions))
        return int(math.prod(self.action_shape))


_REGISTRY: dict[str, EnvSpec] = {}

BACKEND_MODULES = (
    "sim.gymnasium_envs", "sim.tabular_envs", "sim.dm_control_envs", "sim.bullet_envs")
"""The modules whose import registers the built-in entries, cheapest import first: Gymnasium's
(MuJoCo loads only when one of its envs is built), the tabular MDPs (numpy), dm-control's
(MuJoCo), PyBullet's."""
_QUIET_MODULES = ("sim.bullet_envs",)
"""PyBullet prints its build date on import; these are imported under `quiet_stdout`."""
_loaded: set[str] = set()
_loading: list[str] = []
"""Backend modules being imported now (their `register` calls load nothing more)."""


def _load(module: str) -> None:
    """Import one backend module; if that fails, drop what it registered and re-raise."""
    if module in _loaded:
        return
    before = set(_REGISTRY)
    _loading.append(module)
    try:
        if module in _QUIET_MODULES:
            with quiet_stdout():
                importlib.import_module(module)
        else:
            importlib.import_module(module)
    except BaseException:
        for name in set(_REGISTRY) - before:  # a retry re-registers them
            del _REGISTRY[name]
        raise
    finally:
        _loading.remove(module)
    _loaded.add(module)


def _load_all() -> None:
    for module in BACKEND_MODULES:
        _load(module)


def register(spec_: EnvSpec) -> None:
    if not _loading:  # a user's entry: the built-in names must be known to refuse a duplicate
        _load_all()
    if spec_.name in _REGISTRY:
        raise ValueError(f"environment {spec_.name!r} is registered twice")
    _REGISTRY[spec_.name] = spec_


def names(tag: str | None = None) -> list[str]:
    """Registered names, optionally only those carrying `tag`."""
    if tag is not None and tag not in TAGS:
        raise UnknownNameError("tag", tag, TAGS)
    _load_all()
    return sorted(n for n, s in _REGISTRY.items() if tag is None or tag in s.tags)


def spec(name: str) -> EnvSpec:
    found = _REGISTRY.get(name)
    for module in BACKEND_MODULES:
        if found is not None:
            return found
        _load(module)
        found = _REGISTRY.get(name)
    if found is None:
        raise UnknownNameError("environment", name, _REGISTRY)
    return found


_WRAPPER_OPTIONS = ("max_episode_steps", "frame_stack", "pixel_size", *sim2real.OPTIONS)


def make(
    name: str, *, seed: int | None = None, render_mode: str | None = None, **options: Any
) -> gym.Env:
    """Build env `name` with Kinema's shared wrappers; seeded when `seed` is given.

    Options (all optional; any other keyword goes to the backend's constructor):
      max_episode_steps   time limit in env steps (default: the spec's)
      frame_stack         stack the last k observations on the last axis (pixel entries: 3)
      pixel_size          side of pixel observations (pixel entries only; default 84)
      domain_randomization, obs_noise, action_delay, action_repeat, init_perturbation
                          the sim-to-real wrappers, see `sim.sim2real`
    """
    s = spec(name)
    build_kw = {**s.options, **options}
    wrap = {k: build_kw.pop(k) for k in list(build_kw) if k in _WRAPPER_OPTIONS}
    pixels = "pixels" in s.tags
    size = int(wrap.pop("pixel_size", 84))
    if pixels:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"{name!r} renders its observations; render_mode must be "
                             f"'rgb_array' or None, got {render_mode!r}")
        render_mode = "rgb_array"
        build_kw.update(width=size, height=size)
    elif "pixel_size" in options:
        raise ValueError(f"pixel_size applies to pixel entries only; {name!r} is not one")
    try:
        env = s.build(render_mode=render_mode, **build_kw)
    except TypeError as exc:
        if "unexpected keyword" not in str(exc):
            raise
        raise ValueError(f"{name!r} ({s.backend}) does not take option(s) "
                         f"{sorted(build_kw)}: {exc}; make options are "
                         f"{', '.join(_WRAPPER_OPTIONS)}") from None
    # Physics-level wrappers sit on the bare env, so every layer above sees their effect.
    env = sim2real.wrap_physics(env, s, wrap)
    env = gym.wrappers.TimeLimit(env, int(wrap.pop("max_episode_steps", s.max_episode_steps)))
    if pixels:
        env = PixelObservation(env, size)
    env = StabilityGuard(env)
    if isinstance(env.action_space, gym.spaces.Box):
        env = NormalizedActions(env)
    env = sim2real.wrap_control(env, wrap)
    k = int(wrap.pop("frame_stack", 1))
    if k > 1:
        env = FrameStack(env, k)
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
        # Every entry's spaces have a shape: Box observations, Box or Discrete actions.
        return EnvInfo(
            obs_shape=tuple(cast(tuple[int, ...], obs_space.shape)),
            obs_dtype=str(obs_space.dtype),
            discrete=discrete,
            action_shape=() if discrete else tuple(cast(tuple[int, ...], act_space.shape)),
            n_actions=int(act_space.n) if isinstance(act_space, gym.spaces.Discrete) else None,
            action_low=None if raw is None else tuple(float(x) for x in raw.low.ravel()),
            action_high=None if raw is None else tuple(float(x) for x in raw.high.ravel()),
            dt=float(_control_dt(env)),
            name=name,
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

"""Sim-to-real wrappers: the gap between a simulator and a robot, made deliberate.

Each is a Gymnasium wrapper usable on its own, and each is an option of `sim.make`:

    sim.make("cheetah-run", seed=0, domain_randomization=True, obs_noise=0.01,
             action_delay=1, action_repeat=2, init_perturbation=0.05)

- `DomainRandomization` (domain_randomization=True or {param: (low, high)}): at every reset,
  mass, friction, damping and actuator gain are multiplied element by element by factors drawn
  uniformly from the ranges (the spec's `randomization`, else DEFAULT_RANGES), through the
  backend's own model API (`sim.physics`). The values before randomization are put back at the
  next reset and on close, so factors never compound (Tobin et al. 2017; Peng et al. 2018).
- `ObservationNoise` (obs_noise=std): adds N(0, std^2) to every observation, std in
  observation units (a scalar or one per entry).
- `ActionDelay` (action_delay=k): the action sent at step t reaches the robot at step t+k; the
  first k steps apply the neutral action (zeros: the middle of [-1, 1]; index 0 if discrete).
- `ActionRepeat` (action_repeat=n): one step applies the action n times and sums the rewards,
  stopping early when the episode ends.
- `InitialStatePerturbation` (init_perturbation=std): after each reset, adds N(0, std^2) to the
  joint positions (hinge/slide; quaternions are left alone) and velocities.

Randomness: each wrapper has its own generator, reseeded from the seed given to `reset`
(mixed with a per-wrapper constant, so streams are independent of the env's and of each other).
Physics-level wrappers (randomization, perturbation) sit directly on the bare env; the others
act on the [-1, 1] actions and the final observations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from sim.physics import PARAMETERS, physics_of, sizes

OPTIONS = ("domain_randomization", "obs_noise", "action_delay", "action_repeat",
           "init_perturbation")

DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "mass": (0.8, 1.2), "friction": (0.7, 1.3), "damping": (0.8, 1.2), "gain": (0.9, 1.1),
}


def _rng(seed: int | None, salt: int) -> np.random.Generator:
    return np.random.default_rng(None if seed is None else [seed, salt])


class DomainRandomization(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Per-episode multiplicative randomization of physics parameters (see module doc)."""

    def __init__(self, env: gym.Env, ranges: Mapping[str, tuple[float, float]]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, ranges=dict(ranges))
        gym.Wrapper.__init__(self, env)
        self._physics = physics_of(env.unwrapped)
        unknown = set(ranges) - set(self._physics.parameters)
        if unknown:
            raise ValueError(f"cannot randomize {sorted(unknown)} on {type(env.unwrapped).__name__}"
                             f"; it exposes {list(self._physics.parameters)}")
        for name, (lo, hi) in ranges.items():
            if not 0 < lo <= hi:
                raise ValueError(f"range of {name!r} must satisfy 0 < low <= high, got {(lo, hi)}")
        self.ranges = {k: (float(lo), float(hi)) for k, (lo, hi) in ranges.items()}
        self._sizes = sizes(self._physics)
        self.rng = _rng(None, 1)
        self._base: dict[str, np.ndarray] | None = None
        self.scales: dict[str, np.ndarray] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.restore()
        if seed is not None:
            self.rng = _rng(seed, 1)
        obs, info = self.env.reset(seed=seed, options=options)
        # Read after the inner reset: some tasks set model values when an episode starts.
        self._base = self._physics.snapshot()
        self.scales = {name: self.rng.uniform(lo, hi, self._sizes[name])
                       for name, (lo, hi) in self.ranges.items()}
        self._physics.scale(self._base, self.scales)
        return obs, info

    def restore(self) -> None:
        """Put back the values from before this episode's randomization."""
        if self._base is not None:
            self._physics.restore(self._base)
        self._base, self.scales = None, {}

    def close(self) -> None:
        self.restore()
        super().close()

    def get_wrapper_state(self) -> dict[str, Any]:
        enc = {k: v.tolist() for k, v in self.scales.items()}
        base = None if self._base is None else {k: (v.dtype.str, list(v.shape), v.ravel().tolist())
                                                 for k, v in self._base.items()}
        return {"scales": enc, "base": base}

    def set_wrapper_state(self, state: dict[str, Any]) -> None:
        base = state["base"]
        self._base = None if base is None else {
            k: np.asarray(d, dtype=np.dtype(t)).reshape(shape) for k, (t, shape, d) in base.items()}
        self.scales = {k: np.asarray(v, dtype=np.float64) for k, v in state["scales"].items()}
        if self._base is not None:
            self._physics.scale(self._base, self.scales)


class InitialStatePerturbation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Gaussian noise on the initial joint positions and velocities (see module doc)."""

    def __init__(self, env: gym.Env, std: float) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, std=std)
        gym.Wrapper.__init__(self, env)
        if not std >= 0:
            raise ValueError(f"init_perturbation must be a std >= 0, got {std}")
        self.std = float(std)
        self._physics = physics_of(env.unwrapped)
        self.rng = _rng(None, 2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.rng = _rng(seed, 2)
        _, info = self.env.reset(seed=seed, options=options)
        q, v = self._physics.joint_state()
        q = q + self.rng.normal(0.0, self.std, q.shape)
        v = v + self.rng.normal(0.0, self.std, v.shape)
        self._physics.set_joint_state(q, v)
        return self._physics.observe(), info


class ObservationNoise(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Additive Gaussian observation noise with a declared std (see module doc)."""

    def __init__(self, env: gym.Env, std: float | Sequence[float]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, std=std)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not (isinstance(space, gym.spaces.Box) and space.dtype.kind == "f"):
            raise ValueError("obs_noise applies to float (state) observations, not to "
                             f"{space}")
        std_a = np.broadcast_to(np.asarray(std, dtype=np.float64), space.shape)
        if not np.all(std_a >= 0):
            raise ValueError(f"obs_noise std must be >= 0, got {std}")
        self.std = std_a.copy()
        self.rng = _rng(None, 3)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.rng = _rng(seed, 3)
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observation(obs), info

    def observation(self, observation: Any) -> np.ndarray:
        noise = self.rng.standard_normal(self.std.shape) * self.std
        return (observation + noise).astype(observation.dtype)


class ActionDelay(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The env applies the action given k steps earlier (see module doc)."""

    def __init__(self, env: gym.Env, k: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, k=k)
        gym.Wrapper.__init__(self, env)
        if k < 0:
            raise ValueError(f"action_delay must be >= 0 steps, got {k}")
        self.k = int(k)
        space = env.action_space
        self._box = isinstance(space, gym.spaces.Box)
        shape = space.shape if isinstance(space, gym.spaces.Box) else ()
        dtype = np.float32 if self._box else np.int64
        self.queue = np.zeros((self.k, *shape), dtype=dtype)  # oldest first; a plain attribute

    def reset(self, **kwargs: Any):
        self.queue[:] = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        a = np.asarray(action, dtype=self.queue.dtype)
        # Check now: a bad action found k steps later would point at the wrong step.
        if a.shape != self.queue.shape[1:]:
            raise ValueError(f"action has shape {a.shape}; this env takes shape "
                             f"{self.queue.shape[1:]}")
        if self._box and not np.all(np.isfinite(a)):
            raise ValueError(f"action {a.tolist()} is not finite; actions must be finite numbers")
        if self.k == 0:
            return self.env.step(a)
        out = self.queue[0].copy()
        self.queue[:-1] = self.queue[1:]
        self.queue[-1] = a
        return self.env.step(out if self._box else int(out))


class ActionRepeat(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Each step applies the action n times, summing rewards (see module doc)."""

    def __init__(self, env: gym.Env, n: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, n=n)
        gym.Wrapper.__init__(self, env)
        if n < 1:
            raise ValueError(f"action_repeat must be >= 1, got {n}")
        self.n = int(n)

    def step(self, action: Any):
        total = 0.0
        for _ in range(self.n):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def wrap_physics(env: gym.Env, spec: Any, options: dict[str, Any]) -> gym.Env:
    """The physics-level wrappers asked for in `options` (consumed), on the bare env."""
    std = options.pop("init_perturbation", None)
    if std:
        env = InitialStatePerturbation(env, std)
    dr = options.pop("domain_randomization", None)
    if dr:
        if dr is True:
            physics = physics_of(env.unwrapped)
            ranges = dict(spec.randomization or {k: v for k, v in DEFAULT_RANGES.items()
                                                 if k in physics.parameters})
        else:
            ranges = dict(dr)
            bad = set(ranges) - set(PARAMETERS)
            if bad:
                raise ValueError(f"unknown randomization parameters {sorted(bad)}; known: "
                                 f"{list(PARAMETERS)}")
        env = DomainRandomization(env, ranges)
    return env


def wrap_control(env: gym.Env, options: dict[str, Any]) -> gym.Env:
    """The action- and observation-level wrappers asked for in `options` (consumed)."""
    n = options.pop("action_repeat", None)
    if n is not None and n != 1:
        env = ActionRepeat(env, n)
    k = options.pop("action_delay", None)
    if k:
        env = ActionDelay(env, k)
    std = options.pop("obs_noise", None)
    if std is not None and np.any(np.asarray(std) != 0):
        env = ObservationNoise(env, std)
    return env

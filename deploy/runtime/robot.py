"""What the runner talks to: a `Robot` protocol, and `SimRobot`, any `sim` env played as one.

The protocol is the smallest surface a real driver can offer (read a timestamped observation,
send a command in the robot's units, stop safely), so the runner and safety layer are the same
code in simulation and on hardware. `SimRobot` makes the whole deploy path testable here.
"""

from __future__ import annotations

import operator
import time
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Robot(Protocol):
    """A robot as the runner sees it."""

    def read(self) -> tuple[np.ndarray, float]:
        """The latest observation [obs_dim] and when it was measured (time.monotonic() s)."""
        ...

    def send(self, action: np.ndarray) -> None:
        """Command `action` [act_dim] in the robot's units (a discrete index as a float)."""
        ...

    def safe_stop(self) -> None:
        """Bring the robot to its safe state (brakes, zero torque); later sends are ignored."""
        ...


@runtime_checkable
class EpisodicRobot(Robot, Protocol):
    """A robot that knows episodes (a simulator), so a run can be counted in episodes."""

    returns: list[float]
    """Returns of the finished episodes, oldest first."""


class SimRobot:
    """Runs `sim.make(env_name)` as a robot: each `send` is one env step.

    Commands arrive in the robot's units (what a bundle outputs) and are mapped back to the
    env's [-1, 1] by inverting the affine scaling `sim.make` applies; discrete commands are
    rounded to the nearest index. Episodes reset automatically and their returns are kept.
    """

    def __init__(self, env_name: str, seed: int = 0) -> None:
        import sim  # here, not at the top: a robot computer runs bundles without simulators

        seed = check_seed(seed)
        info = sim.spec(env_name).info
        self.env_name = env_name
        self.info = info
        self._env = sim.make(env_name)
        obs, _ = self._env.reset(seed=seed)
        self._obs = _flat(obs)
        if not info.discrete:
            assert info.action_low is not None and info.action_high is not None
            self._low = np.asarray(info.action_low, np.float64)
            span = np.asarray(info.action_high, np.float64) - self._low
            self._span = np.where(span > 0, span, 1.0)  # a fixed joint (low == high) maps to -1
        self.act_dim = 1 if info.discrete else int(np.prod(info.action_shape))
        self.returns: list[float] = []
        self.episode_return = 0.0
        self.steps = 0
        self.stopped = False

    @property
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) [act_dim] of the commands this robot takes, in its units; for a
        discrete env 0 and n_actions - 1."""
        info = self.info
        if info.discrete:
            assert info.n_actions is not None
            return np.zeros(1), np.full(1, info.n_actions - 1.0)
        assert info.action_low is not None and info.action_high is not None
        return (np.asarray(info.action_low, np.float64).reshape(-1),
                np.asarray(info.action_high, np.float64).reshape(-1))

    @property
    def episodes(self) -> int:
        return len(self.returns)

    def read(self) -> tuple[np.ndarray, float]:
        # The simulated world stands still between steps, so its state is always current:
        # stamped at read time, as a driver stamps a fresh measurement.
        return self._obs.copy(), time.monotonic()

    def send(self, action: np.ndarray) -> None:
        if self.stopped:
            return
        a = np.asarray(action, np.float64).reshape(-1)
        if a.shape != (self.act_dim,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action {a.tolist()} must be {self.act_dim} finite numbers in the "
                             f"robot's units for {self.env_name!r}")
        obs, reward, terminated, truncated, _ = self._env.step(self._to_env(a))
        self.steps += 1
        self.episode_return += float(reward)
        if terminated or truncated:
            self.returns.append(self.episode_return)
            self.episode_return = 0.0
            obs, _ = self._env.reset()
        self._obs = _flat(obs)

    def safe_stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self._env.close()

    def _to_env(self, a: np.ndarray) -> int | np.ndarray:
        """Robot units -> what env.step takes (inverse of sim's [-1, 1] -> units map)."""
        if self.info.discrete:
            assert self.info.n_actions is not None
            return int(np.clip(np.rint(a[0]), 0, self.info.n_actions - 1))
        scaled = 2.0 * (a - self._low) / self._span - 1.0
        return scaled.reshape(self.info.action_shape).astype(np.float32)


def _flat(obs: Any) -> np.ndarray:
    """The env's observation as a robot reads it: float32 [obs_dim], camera frames [H, W, 3k]
    flattened in C order (what an exported graph takes; deploy.contract's obs_shape)."""
    return np.asarray(obs, np.float32).reshape(-1)


def check_seed(seed: object) -> int:
    """A simulator seed: an integer >= 0 (what gymnasium and numpy's SeedSequence accept)."""
    try:
        value = None if isinstance(seed, bool) else operator.index(seed)  # type: ignore[arg-type]
    except TypeError:
        value = None
    if value is None:
        raise ValueError(f"seed {seed!r} is not an integer; expected an integer >= 0")
    if value < 0:
        raise ValueError(f"seed {value} is negative; expected an integer >= 0")
    return value

"""Wrappers every Kinema env carries (applied by `sim.make`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

# MuJoCo reports divergence through warning counters rather than exceptions.
_MJ_INSTABILITY_WARNINGS = ("mjWARN_BADQACC", "mjWARN_BADQPOS", "mjWARN_BADQVEL")


class NormalizedActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Presents a Box action space as [-1, 1] and scales to the robot's units.

    Wrong shapes and non-finite actions raise ValueError: they are bugs upstream and must never
    reach the physics. Finite actions outside [-1, 1] are clipped, as an actuator saturates:
    Gaussian policies sample past the bounds by design, and refusing them would only push the
    clip into every caller.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        raw = env.action_space
        assert isinstance(raw, gym.spaces.Box)
        if not (np.all(np.isfinite(raw.low)) and np.all(np.isfinite(raw.high))):
            raise ValueError(f"cannot normalize an unbounded action space {raw}")
        self.raw_action_space = raw
        self._low = raw.low.astype(np.float64)
        self._half = (raw.high.astype(np.float64) - self._low) / 2.0
        self.action_space = gym.spaces.Box(-1.0, 1.0, raw.shape, np.float32)

    def action(self, action: Any) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"action has shape {a.shape}; this env takes shape {self.action_space.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action {a.tolist()} is not finite; actions must be finite numbers")
        a = np.clip(a, -1.0, 1.0)
        return (self._low + (a + 1.0) * self._half).astype(self.raw_action_space.dtype)


class StabilityGuard(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Never lets simulator instability pass silently.

    A step whose observation or reward is non-finite, or that raises a MuJoCo instability
    warning, ends the episode (terminated=True) with info["sim_unstable"] = True. The last
    finite observation is returned and the reward is 0, so nothing non-finite reaches a learner.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._last_obs: np.ndarray | None = None
        data = getattr(env.unwrapped, "data", None)
        self._mj_warnings = None
        if data is not None and hasattr(data, "warning"):
            import mujoco

            self._mj_warnings = [int(getattr(mujoco.mjtWarning, w)) for w in _MJ_INSTABILITY_WARNINGS]

    def _warning_count(self) -> int:
        if self._mj_warnings is None:
            return 0
        w = self.env.unwrapped.data.warning
        return sum(int(w[i].number) for i in self._mj_warnings)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._last_obs = np.array(obs, copy=True)
        return obs, info

    def step(self, action: Any):
        before = self._warning_count()
        obs, reward, terminated, truncated, info = self.env.step(action)
        unstable = self._warning_count() > before
        if not (np.all(np.isfinite(obs)) and np.isfinite(reward)):
            unstable = True
        if unstable:
            info = dict(info, sim_unstable=True)
            return self._last_obs.copy(), 0.0, True, truncated, info
        self._last_obs = np.array(obs, copy=True)
        return obs, reward, terminated, truncated, info

    def get_wrapper_state(self) -> dict[str, Any]:
        return {"last_obs": None if self._last_obs is None else self._last_obs.tolist()}

    def set_wrapper_state(self, state: dict[str, Any]) -> None:
        last = state["last_obs"]
        dtype = self.observation_space.dtype
        self._last_obs = None if last is None else np.asarray(last, dtype=dtype)

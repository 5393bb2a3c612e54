"""Wrappers every Kinema env carries (applied by `sim.make`), plus pixels and frame stacking.

These run on every step of every env, so they are written for speed: the registry's promise is
at most ~5% over the raw backend step (benchmarks/sim.py measures it). Hence scalar checks
through one dot product instead of elementwise passes, and `step` overridden directly rather
than through `ActionWrapper.action`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, cast

import gymnasium as gym
import numpy as np

# MuJoCo reports divergence through warning counters rather than exceptions.
_MJ_INSTABILITY_WARNINGS = ("mjWARN_BADQACC", "mjWARN_BADQPOS", "mjWARN_BADQVEL")


def _all_finite(x: np.ndarray) -> bool:
    """True when every entry is finite. One dot product: NaN/Inf in any entry make it
    non-finite; a finite overflow of the sum of squares falls back to the exact test."""
    s = x.dot(x) if x.ndim == 1 else np.vdot(x, x)  # ndarray.dot skips vdot's dispatch
    return math.isfinite(s) or bool(np.isfinite(x).all())


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
        self._dtype = raw.dtype
        self._shape = raw.shape
        # Python floats: for the handful of numbers in an action, a list comprehension beats
        # four numpy calls (the registry's overhead budget is ~2 us a step on halfcheetah).
        low, high = raw.low.astype(np.float64).ravel(), raw.high.astype(np.float64).ravel()
        self._half = ((high - low) / 2.0).tolist()
        self._mid = ((high + low) / 2.0).tolist()
        # Most robots' units already are [-1, 1] (dm-control, most Gymnasium MuJoCo envs): then
        # an in-range action needs no arithmetic at all.
        self._identity = bool(np.all(low == -1.0) and np.all(high == 1.0))
        self.action_space = gym.spaces.Box(-1.0, 1.0, raw.shape, np.float32)

    def action(self, action: Any) -> np.ndarray:
        a = action if type(action) is np.ndarray else np.asarray(action, dtype=np.float64)
        if a.shape != self._shape:
            raise ValueError(f"action has shape {a.shape}; this env takes shape {self._shape}")
        xs = a.tolist() if a.ndim == 1 else a.ravel().tolist()
        total = sum(xs)  # NaN or +-Inf in any entry make the sum non-finite
        if total - total != 0.0 and not np.isfinite(a).all():
            raise ValueError(f"action {a.tolist()} is not finite; actions must be finite numbers")
        if self._identity and a.dtype == self._dtype and -1.0 <= min(xs) and max(xs) <= 1.0:
            return a  # already in the robot's units and range (the env only reads it)
        # Clip to [-1, 1] (an actuator saturates), then map to the robot's units.
        u = [m + h * (1.0 if x > 1.0 else -1.0 if x < -1.0 else x)
             for x, m, h in zip(xs, self._mid, self._half, strict=True)]
        out = np.array(u, dtype=self._dtype)
        return out if out.shape == self._shape else out.reshape(self._shape)

    def step(self, action: Any):
        return self.env.step(self.action(action))


class StabilityGuard(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Never lets simulator instability pass silently; also presents float obs as float32.

    A step whose observation or reward is non-finite, or that raises a MuJoCo instability
    warning, ends the episode (terminated=True) with info["sim_unstable"] = True. The last
    finite observation is returned and the reward is 0, so nothing non-finite reaches a learner.
    (Casting here rather than in a separate DtypeObservation layer saves a Python call per step.)
    """

    # A live view into MuJoCo's data, never replaced; its bytes belong to this simulator.
    _state_exclude = ("_mj_numbers", "_mj_bytes")

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        space = env.observation_space
        self._cast = isinstance(space, gym.spaces.Box) and space.dtype.kind == "f" and (
            space.dtype != np.float32)
        self._check_obs = isinstance(space, gym.spaces.Box) and space.dtype.kind == "f"
        if self._cast:
            box = cast(gym.spaces.Box, space)  # _cast holds only for a Box
            with warnings.catch_warnings():  # Box warns that float64 bounds lose precision
                warnings.simplefilter("ignore", UserWarning)
                self.observation_space = gym.spaces.Box(
                    box.low.astype(np.float32), box.high.astype(np.float32), box.shape,
                    np.float32)
        self._last_obs: np.ndarray | None = None
        self._mj_index: tuple[int, ...] = ()
        self._mj_numbers = np.zeros(0, np.int32)
        self._mj_count = 0
        self._mj_bytes = b""
        data = getattr(env.unwrapped, "data", None)
        if data is not None and type(data).__module__.startswith("mujoco"):
            import mujoco

            self._mj_numbers = data.warning.number  # a live view of MuJoCo's warning counters
            self._mj_index = tuple(int(getattr(mujoco.mjtWarning, w))
                                   for w in _MJ_INSTABILITY_WARNINGS)

    def _warning_count(self) -> int:
        numbers = self._mj_numbers
        return sum([int(numbers[i]) for i in self._mj_index])

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        if self._cast:
            obs = obs.astype(np.float32)
        self._last_obs = obs
        self._sync_warnings()  # mj_resetData clears the counters
        return obs, info

    def _sync_warnings(self) -> None:
        self._mj_count = self._warning_count()
        self._mj_bytes = self._mj_numbers.tobytes()

    def step(self, action: Any):
        if self._last_obs is None:  # the one order check of the stack (gym.make's is not used)
            raise RuntimeError("call reset() before step() (sim.make(name, seed=S) resets)")
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._cast:
            obs = obs.astype(np.float32)
        unstable = not math.isfinite(reward) or (self._check_obs and not _all_finite(obs))
        # Any warning counter moving changes the bytes (one cheap call); only then count the
        # instability warnings among them.
        if self._mj_index and self._mj_numbers.tobytes() != self._mj_bytes:
            self._mj_bytes = self._mj_numbers.tobytes()
            count = self._warning_count()
            unstable = unstable or count != self._mj_count
            self._mj_count = count
        if unstable:
            info = dict(info, sim_unstable=True)
            return self._last_obs.copy(), 0.0, True, truncated, info
        self._last_obs = obs  # obs arrays are fresh each step, so a reference suffices
        return obs, reward, terminated, truncated, info

    def get_wrapper_state(self) -> dict[str, Any]:
        return {"last_obs": None if self._last_obs is None else self._last_obs.tolist()}

    def set_wrapper_state(self, state: dict[str, Any]) -> None:
        last = state["last_obs"]
        dtype = self.observation_space.dtype
        self._last_obs = None if last is None else np.asarray(last, dtype=dtype)
        self._sync_warnings()  # this simulator's counters, not the saved one's


class PixelObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Replaces the observation with the env's rendered frame, uint8 HxWx3.

    The env must render `rgb_array` frames at the requested size (the pixel entries build it so);
    a frame of another shape is a configuration error and raises.
    """

    def __init__(self, env: gym.Env, size: int = 84) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, size=size)
        gym.ObservationWrapper.__init__(self, env)
        if env.render_mode != "rgb_array":
            raise ValueError(f"pixel observations need render_mode='rgb_array', got "
                             f"{env.render_mode!r}")
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        frame = np.asarray(self.env.render(), dtype=np.uint8)
        if frame.shape != self.observation_space.shape:
            raise ValueError(f"rendered frame has shape {frame.shape}; expected "
                             f"{self.observation_space.shape}")
        return frame


class FrameStack(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """The last `k` observations concatenated on the last axis (pixels: channels, HxWx3k).

    After a reset the first frame is repeated, as in DQN (Mnih et al. 2015), so the shape never
    changes. The stack is a plain array attribute, so `sim.get_state` carries it.
    """

    def __init__(self, env: gym.Env, k: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, k=k)
        gym.ObservationWrapper.__init__(self, env)
        if k < 1:
            raise ValueError(f"frame_stack must be >= 1, got {k}")
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box)
        self.k = k
        self._width = space.shape[-1]
        with warnings.catch_warnings():  # float32 bounds of inf are fine
            warnings.simplefilter("ignore", UserWarning)
            self.observation_space = gym.spaces.Box(
                np.concatenate([space.low] * k, axis=-1), np.concatenate([space.high] * k, axis=-1),
                dtype=space.dtype)
        self.frames = np.zeros(self.observation_space.shape, space.dtype)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.frames = np.concatenate([obs] * self.k, axis=-1)
        return self.frames.copy(), info

    def observation(self, observation: Any) -> np.ndarray:
        w = self._width
        self.frames = np.concatenate([self.frames[..., w:], observation], axis=-1)
        return self.frames.copy()

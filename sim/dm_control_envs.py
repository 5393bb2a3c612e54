"""dm-control suite tasks behind the Gymnasium API (our adapter), and their registry entries.

`DmControlEnv` turns a `dm_control.suite` task into a `gymnasium.Env`:
- observations: the task's observation dict flattened to one float32 vector, keys in sorted
  order (stable whatever order a task builds its dict in); `obs_slices` names the parts;
- actions: the actuators' own ranges (`sim.make` presents them as [-1, 1]);
- the suite's time limit is a truncation, a task's termination (discount 0) a termination;
- a `PhysicsError` (MuJoCo divergence) ends the episode with info["sim_unstable"] = True and
  the message in info["physics_error"]; it is never swallowed silently.
- seeding: reset(seed=s) gives the task a fresh `RandomState(s)`, the only randomness it uses.

`step` runs the same calls as `dm_control.rl.control.Environment.step` (before_step, physics
step, after_step, reward, observation) without building a `TimeStep`, and checks MuJoCo's
warning counters as `Physics.check_invalid_state` does (any new warning is a physics error) but
with one bytes comparison instead of a context manager and three numpy calls; that pays for
the flattening and for Kinema's wrappers (benchmarks/sim.py). `model`/`data` expose the MuJoCo
structs, so the stability guard, `sim.physics` and `sim.state` treat it as any MuJoCo env.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from absl import logging as absl_logging

from sim.registry import EnvSpec, register

# dm_control's bundled XML uses compiler attributes MuJoCo 3.x deprecates (e.g. 'settotalmass');
# the warning is about dm_control's own files, not the user's, and floods every command.
absl_logging.set_verbosity(absl_logging.ERROR)

# Model fields that suite tasks write when an episode starts (reacher's target, finger's
# damping, manipulator's target pose); a snapshot carries them with the integration state.
_TASK_MODEL_FIELDS = ("body_pos", "body_quat", "geom_pos", "geom_size", "site_pos", "site_size",
                      "site_rgba", "dof_damping")


class DmControlEnv(gym.Env):
    """One dm-control suite task as a Gymnasium env (see module doc)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}
    # Live MuJoCo structs and views, restored through mj_setState, never replaced.
    _state_exclude = ("model", "data", "_warnings")

    def __init__(self, domain: str, task: str, *, render_mode: str | None = None,
                 width: int = 240, height: int = 240, camera_id: int = 0,
                 task_kwargs: dict[str, Any] | None = None) -> None:
        from dm_control import suite

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        self._env = suite.load(domain, task, task_kwargs={"random": 0, **(task_kwargs or {})})
        self._physics = self._env.physics
        self._task = self._env.task
        self.model, self.data = self._physics.model.ptr, self._physics.data.ptr
        self.render_mode, self.width, self.height, self.camera_id = (
            render_mode, width, height, camera_id)
        self.dt = float(self._env.control_timestep())
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.dt)}
        self._n_sub_steps = int(self._env._n_sub_steps)
        self._warnings = self.data.warning.number  # live view of MuJoCo's warning counters
        self._step_limit = self._env._step_limit  # the suite's time limit in steps (may be inf)
        spec = self._env.observation_spec()
        self.obs_slices: dict[str, slice] = {}
        start = 0
        for key in sorted(spec):
            n = int(np.prod(spec[key].shape))
            self.obs_slices[key] = slice(start, start + n)
            start += n
        self._flat_keys = [(k, s, len(spec[k].shape) > 1) for k, s in self.obs_slices.items()]
        self._obs_size = start
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (start,), np.float32)
        act = self._env.action_spec()
        self.action_space = gym.spaces.Box(act.minimum.astype(np.float32),
                                           act.maximum.astype(np.float32), act.shape, np.float32)
        self.steps = 0

    def _flatten(self, observation: dict[str, Any]) -> np.ndarray:
        out = np.empty(self._obs_size, np.float32)
        for key, sl, nd in self._flat_keys:
            v = observation[key]
            out[sl] = v.ravel() if nd else v
        return out

    def observe(self) -> np.ndarray:
        return self._flatten(self._task.get_observation(self._physics))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._task._random = np.random.RandomState(seed)
        timestep = self._env.reset()  # initialize_episode inside physics.reset_context()
        self.steps = 0
        return self._flatten(timestep.observation), {}

    def step(self, action: Any):
        task, physics = self._task, self._physics
        before = self._warnings.tobytes()
        task.before_step(action, physics)
        # Physics.step minus its check_invalid_state context (dm-control is pinned, 1.0.50).
        if physics.legacy_step:
            physics._step_with_up_to_date_position_velocity(self._n_sub_steps)
        else:
            mujoco.mj_step(self.model, self.data, self._n_sub_steps)
        task.after_step(physics)
        if self._warnings.tobytes() != before:
            return self.observe(), 0.0, True, False, {"sim_unstable": True,
                                                      "physics_error": self._physics_error(before)}
        reward = float(task.get_reward(physics))
        obs = self._flatten(task.get_observation(physics))
        self.steps += 1
        discount = task.get_termination(physics)
        terminated = discount is not None and discount == 0.0
        truncated = not terminated and (discount is not None or self.steps >= self._step_limit)
        return obs, reward, terminated, truncated, {}

    def _physics_error(self, before: bytes) -> str:
        """dm-control's PhysicsError message for the warnings raised since `before`."""
        old = np.frombuffer(before, dtype=self._warnings.dtype)
        names = [n for n, new, was in zip(mujoco.mjtWarning.__members__, self._warnings, old,
                                           strict=False) if new > was]
        return f"Physics state is invalid. Warning(s) raised: {', '.join(names)}"

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._physics.render(height=self.height, width=self.width,
                                    camera_id=self.camera_id)

    def close(self) -> None:
        self._env.close()

    def kinema_physics(self) -> Any:
        from sim.physics import MujocoPhysics

        return MujocoPhysics(self.model, self.data, self.observe)

    # sim.state: the integration state comes through `model`/`data`; these add what lives
    # outside it (the task's random state and the model fields tasks write).
    def get_wrapper_state(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, gauss = self._task._random.get_state()
        return {"random": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
                "model": {f: getattr(self.model, f).ravel().tolist() for f in _TASK_MODEL_FIELDS}}

    def set_wrapper_state(self, state: dict[str, Any]) -> None:
        name, keys, pos, has_gauss, gauss = state["random"]
        self._task._random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, gauss))
        for f, values in state["model"].items():
            arr = getattr(self.model, f)
            arr[...] = np.asarray(values, arr.dtype).reshape(arr.shape)


def _dm(domain: str, task: str, *, render_mode: str | None = None, camera_id: int = 0,
        **overrides: Any) -> DmControlEnv:
    return DmControlEnv(domain, task, render_mode=render_mode, camera_id=camera_id, **overrides)


def _entry(name: str, domain: str, task: str, tags: tuple[str, ...], description: str,
           *, steps: int = 1000, pixels: bool = False, camera_id: int = 0) -> None:
    cont = ("state", "continuous")
    register(EnvSpec(name=name, backend="dm_control", tags=(*tags, *cont),
                     build=functools.partial(_dm, domain, task, camera_id=camera_id),
                     max_episode_steps=steps, description=description, terminates=False))
    if pixels:  # DrQ / TD-MPC settings: 84x84 frames from camera 0, three stacked
        register(EnvSpec(name=f"{name}-pixels", backend="dm_control",
                         tags=(*tags, "pixels", "continuous"),
                         build=functools.partial(_dm, domain, task, camera_id=camera_id),
                         max_episode_steps=steps, description=f"{description} From pixels.",
                         options={"frame_stack": 3}, terminates=False))


_entry("cartpole-balance", "cartpole", "balance", ("cart-pole",),
       "dm-control cart-pole: keep the pole upright from a near-upright start (Tassa et al. 2018).")
_entry("cartpole-swingup", "cartpole", "swingup", ("cart-pole",),
       "dm-control cart-pole: swing the pole up from hanging down and balance it.", pixels=True)
_entry("cheetah-run", "cheetah", "run", ("locomotion",),
       "dm-control planar cheetah; reward for running forward up to 10 m/s.", pixels=True)
_entry("walker-walk", "walker", "walk", ("locomotion",),
       "dm-control planar walker; stand upright and walk forward at 1 m/s.", pixels=True)
_entry("hopper-hop", "hopper", "hop", ("locomotion",),
       "dm-control planar hopper; hop forward while staying upright.")
_entry("quadruped-walk", "quadruped", "walk", ("locomotion",),
       "dm-control four-legged robot in 3D; walk forward at 0.5 m/s.")
_entry("reacher-easy", "reacher", "easy", ("manipulation",),
       "dm-control two-link arm; touch a large randomly placed target.", pixels=True)
_entry("finger-spin", "finger", "spin", ("manipulation",),
       "dm-control finger; spin a hinged body as fast as possible.")
_entry("manipulator-bring-ball", "manipulator", "bring_ball", ("manipulation",),
       "dm-control planar arm with a gripper; bring a ball to a target.")

"""One view of each backend's physics, for the sim-to-real wrappers.

Domain randomization and initial-state perturbation must reach into the simulator (a body's
mass, a joint's position), and every backend spells that differently. `physics_of(env)` returns
a `Physics` for the bare env: MuJoCo models (Gymnasium MuJoCo and our dm-control adapter),
Gymnasium's classic-control cart-pole and pendulum, and PyBullet (our tasks and the
pybullet-envs-gymnasium robots provide theirs through a `kinema_physics()` method).

Parameters are arrays of per-element values; randomization multiplies them element by element.
`snapshot` copies every array a parameter touches (mass also moves inertia, a servo's gain also
moves its bias), so `restore` puts back the exact bits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import gymnasium as gym
import numpy as np

PARAMETERS = ("mass", "friction", "damping", "gain")

Snapshot = dict[str, np.ndarray]


class Physics(Protocol):
    parameters: tuple[str, ...]
    """Which of PARAMETERS this backend exposes."""

    def values(self, name: str) -> np.ndarray:
        """Current values of parameter `name` (a copy)."""
        ...

    def snapshot(self) -> Snapshot: ...

    def restore(self, snap: Snapshot) -> None: ...

    def scale(self, snap: Snapshot, scales: dict[str, np.ndarray]) -> None:
        """Set each parameter to its value in `snap` times `scales[name]` (per element)."""
        ...

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities that may be perturbed (copies)."""
        ...

    def set_joint_state(self, q: np.ndarray, v: np.ndarray) -> None: ...

    def observe(self) -> Any:
        """The bare env's observation of the current state."""
        ...


class MujocoPhysics:
    """A MuJoCo model: body masses (with inertias), sliding friction, dof damping, actuator gain."""

    parameters: tuple[str, ...] = PARAMETERS

    def __init__(self, model: Any, data: Any, observe: Callable[[], Any]) -> None:
        import mujoco

        self.model, self.data, self._observe = model, data, observe
        self._mujoco = mujoco
        hinge_slide = (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
        # Free and ball joints hold quaternions; perturbing those would denormalize them.
        self._q_index = np.array([model.jnt_qposadr[j] for j in range(model.njnt)
                                  if model.jnt_type[j] in hinge_slide], dtype=np.int64)
        # A position servo has bias -kp: its gain is both gainprm[0] and -biasprm[1].
        self._servo = (model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE) & (
            model.actuator_biasprm[:, 1] == -model.actuator_gainprm[:, 0])

    def values(self, name: str) -> np.ndarray:
        m = self.model
        return {"mass": m.body_mass[1:], "friction": m.geom_friction[:, 0],
                "damping": m.dof_damping, "gain": m.actuator_gainprm[:, 0]}[name].copy()

    def snapshot(self) -> Snapshot:
        m = self.model
        return {"body_mass": m.body_mass.copy(), "body_inertia": m.body_inertia.copy(),
                "geom_friction": m.geom_friction.copy(), "dof_damping": m.dof_damping.copy(),
                "actuator_gainprm": m.actuator_gainprm.copy(),
                "actuator_biasprm": m.actuator_biasprm.copy()}

    def restore(self, snap: Snapshot) -> None:
        for field, value in snap.items():
            getattr(self.model, field)[:] = value

    def scale(self, snap: Snapshot, scales: dict[str, np.ndarray]) -> None:
        self.restore(snap)
        m = self.model
        if "mass" in scales:  # body 0 is the world
            m.body_mass[1:] = snap["body_mass"][1:] * scales["mass"]
            m.body_inertia[1:] = snap["body_inertia"][1:] * scales["mass"][:, None]
        if "friction" in scales:
            m.geom_friction[:, 0] = snap["geom_friction"][:, 0] * scales["friction"]
        if "damping" in scales:
            m.dof_damping[:] = snap["dof_damping"] * scales["damping"]
        if "gain" in scales:
            m.actuator_gainprm[:, 0] = snap["actuator_gainprm"][:, 0] * scales["gain"]
            servo = self._servo
            gain = scales["gain"][servo]
            m.actuator_biasprm[servo, 1] = snap["actuator_biasprm"][servo, 1] * gain

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.qpos[self._q_index].copy(), self.data.qvel.copy()

    def set_joint_state(self, q: np.ndarray, v: np.ndarray) -> None:
        self.data.qpos[self._q_index] = q
        self.data.qvel[:] = v
        self._mujoco.mj_forward(self.model, self.data)

    def observe(self) -> Any:
        return self._observe()


class CartPolePhysics:
    """Gymnasium's CartPole-v1: cart and pole masses, force magnitude as the actuator gain."""

    parameters: tuple[str, ...] = ("mass", "gain")

    def __init__(self, env: Any) -> None:
        self.env = env

    def values(self, name: str) -> np.ndarray:
        e = self.env
        return np.array([e.masscart, e.masspole] if name == "mass" else [e.force_mag], float)

    def snapshot(self) -> Snapshot:
        return {"mass": self.values("mass"), "gain": self.values("gain")}

    def restore(self, snap: Snapshot) -> None:
        self.scale(snap, {})

    def scale(self, snap: Snapshot, scales: dict[str, np.ndarray]) -> None:
        e = self.env
        mass = snap["mass"] * scales.get("mass", 1.0)
        e.masscart, e.masspole = float(mass[0]), float(mass[1])
        # Derived constants CartPoleEnv computes once in __init__.
        e.total_mass = e.masspole + e.masscart
        e.polemass_length = e.masspole * e.length
        e.force_mag = float((snap["gain"] * scales.get("gain", 1.0))[0])

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        x, x_dot, theta, theta_dot = np.asarray(self.env.state, float)
        return np.array([x, theta]), np.array([x_dot, theta_dot])

    def set_joint_state(self, q: np.ndarray, v: np.ndarray) -> None:
        self.env.state = np.array([q[0], v[0], q[1], v[1]], dtype=np.float64)

    def observe(self) -> Any:
        return np.array(self.env.state, dtype=np.float32)


class PendulumPhysics:
    """Gymnasium's Pendulum-v1: the bob's mass (its torque limit is the action bound: no gain)."""

    parameters: tuple[str, ...] = ("mass",)

    def __init__(self, env: Any) -> None:
        self.env = env

    def values(self, name: str) -> np.ndarray:
        return np.array([self.env.m], float)

    def snapshot(self) -> Snapshot:
        return {"mass": self.values("mass")}

    def restore(self, snap: Snapshot) -> None:
        self.env.m = float(snap["mass"][0])

    def scale(self, snap: Snapshot, scales: dict[str, np.ndarray]) -> None:
        self.env.m = float(snap["mass"][0] * scales.get("mass", np.ones(1))[0])

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        th, thdot = np.asarray(self.env.state, float)
        return np.array([th]), np.array([thdot])

    def set_joint_state(self, q: np.ndarray, v: np.ndarray) -> None:
        self.env.state = np.array([q[0], v[0]])

    def observe(self) -> Any:
        return self.env._get_obs()


def physics_of(env: gym.Env) -> Physics:
    """The `Physics` of a bare env (the layer `sim.make` builds first)."""
    if hasattr(env, "kinema_physics"):
        return env.kinema_physics()
    from gymnasium.envs.classic_control import CartPoleEnv, PendulumEnv
    from gymnasium.envs.mujoco import MujocoEnv

    if isinstance(env, MujocoEnv):
        # Every Gymnasium MuJoCo task defines _get_obs; MujocoEnv itself does not declare it.
        observe: Callable[[], Any] = cast(Any, env)._get_obs
        return MujocoPhysics(env.model, env.data, observe)
    if isinstance(env, CartPoleEnv):
        return CartPolePhysics(env)
    if isinstance(env, PendulumEnv):
        return PendulumPhysics(env)
    raise ValueError(f"{type(env).__name__} exposes no physics to randomize or perturb")


def sizes(physics: Physics) -> dict[str, int]:
    """Number of elements of each parameter."""
    return {name: int(physics.values(name).size) for name in physics.parameters}

"""PyBullet entries: pybullet-envs-gymnasium locomotion robots and our own tasks.

The pybullet-envs-gymnasium robots (Roboschool's, ported) get what Kinema needs through small
subclasses: their control period as `dt`, exact snapshots (`saveBullet` plus the few Python
attributes a step reads: the robot's initial height and foot contacts), and a `sim.physics`
view (link masses, friction, joint damping, and the robot's `power` as its actuator gain).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from pybullet_envs_gymnasium import gym_locomotion_envs as loco

from sim.bullet_arm import PandaPush, PandaReach
from sim.bullet_base import BulletPhysics, restore_bullet, save_bullet
from sim.bullet_cartpole import BulletCartPole
from sim.bullet_legged import A1Walk
from sim.quiet import quiet_stdout
from sim.registry import EnvSpec, register


class _Locomotion:
    """Mixin for pybullet_envs_gymnasium.WalkerBaseBulletEnv subclasses."""

    # Set by the WalkerBaseBulletEnv this mixin precedes (the first reset connects the client).
    physicsClientId: int
    robot: Any  # a robot_locomotors.WalkerBase
    _p: Any  # the pybullet_utils BulletClient

    # Connection and in-memory state ids belong to this process's client, never to a snapshot.
    _state_exclude = ("physicsClientId", "ownsPhysicsClient", "stateId")
    dt = 0.0165  # the stadium scene's timestep 0.0165/4 times frame_skip 4

    # The ignores on super() calls: at run time super() is the library env; mypy sees object.
    def __init__(self, render_mode: str | None = None, width: int = 320, height: int = 240):
        super().__init__(render_mode=render_mode)  # type: ignore[call-arg]
        self._render_width, self._render_height = width, height

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self.physicsClientId < 0:  # the first reset connects, and PyBullet prints on connect
            with quiet_stdout():
                return super().reset(seed=seed, options=options)  # type: ignore[misc]
        return super().reset(seed=seed, options=options)  # type: ignore[misc]

    def _connected(self) -> None:
        if self.physicsClientId < 0:  # the client connects on the first reset
            self.reset()

    def kinema_physics(self) -> BulletPhysics:
        self._connected()
        robot = self.robot
        bodies = robot.objects if np.ndim(robot.objects) else [robot.objects]
        links = [(b, link) for b in bodies for link in range(-1, self._p.getNumJoints(b))]
        joints = [(j.bodies[j.bodyIndex], j.jointIndex) for j in robot.ordered_joints]
        if not hasattr(self, "joint_damping"):
            self.joint_damping = np.array([self._p.getJointInfo(b, j)[6] for b, j in joints])
        return BulletPhysics(self._p, links, joints, self, self._observe)

    @property
    def actuator_gain(self) -> np.ndarray:
        return np.array([self.robot.power])

    @actuator_gain.setter
    def actuator_gain(self, value: np.ndarray) -> None:
        self.robot.power = float(np.asarray(value).ravel()[0])

    def _observe(self) -> np.ndarray:
        state = self.robot.calc_state()
        self.potential = self.robot.calc_potential()  # progress is measured from here
        return state.astype(np.float32)

    def get_wrapper_state(self) -> dict[str, Any]:
        self._connected()
        r = self.robot
        return {"bullet": save_bullet(self._p), "power": r.power,
                "initial_z": None if r.initial_z is None else float(r.initial_z),
                "feet_contact": r.feet_contact.tolist()}

    def set_wrapper_state(self, state: dict[str, Any]) -> None:
        self._connected()
        restore_bullet(self._p, state["bullet"])
        r = self.robot
        r.power, r.initial_z = state["power"], state["initial_z"]
        r.feet_contact = np.asarray(state["feet_contact"], dtype=np.float32)
        if hasattr(self, "joint_damping"):
            for (b, j), d in zip(((j.bodies[j.bodyIndex], j.jointIndex)
                                  for j in r.ordered_joints), self.joint_damping, strict=True):
                self._p.changeDynamics(b, j, jointDamping=float(d))


# The mixin's reset keeps gym.Env's keyword-only signature; the library's untyped reset also
# takes seed and options positionally, which mypy reports as an incompatible combination.
class HalfCheetahBullet(_Locomotion, loco.HalfCheetahBulletEnv):  # type: ignore[misc]
    pass


class AntBullet(_Locomotion, loco.AntBulletEnv):  # type: ignore[misc]
    pass


class HopperBullet(_Locomotion, loco.HopperBulletEnv):  # type: ignore[misc]
    pass


class Walker2DBullet(_Locomotion, loco.Walker2DBulletEnv):  # type: ignore[misc]
    pass


def _build(cls: Callable[..., gym.Env], *, render_mode: str | None = None,
           **kwargs: Any) -> gym.Env:
    return cls(render_mode=render_mode, **kwargs)


def _entry(name: str, cls: type[gym.Env], tags: tuple[str, ...], steps: int, description: str,
           randomization: dict[str, tuple[float, float]] | None = None, **kwargs: Any) -> None:
    # The arms' episodes end only at their time limit; the legged bodies and the cart-pole fall.
    register(EnvSpec(name=name, backend="pybullet", tags=(*tags, "state", "continuous"),
                     build=functools.partial(_build, cls, **kwargs), max_episode_steps=steps,
                     description=description, randomization=randomization,
                     terminates="manipulation" not in tags))


# Legged sim-to-real ranges after Tan et al. 2018 (Sim-to-Real: Learning Agile Locomotion For
# Quadruped Robots): ground friction and motor strength vary most between sim and hardware.
_LEGGED_RANGES = {"mass": (0.8, 1.2), "friction": (0.5, 1.25), "damping": (0.5, 2.0),
                  "gain": (0.8, 1.2)}
# A pushed object's friction is the least known parameter of a tabletop push.
_PUSH_RANGES = {"mass": (0.8, 1.2), "friction": (0.5, 1.5), "damping": (0.8, 1.2),
                "gain": (0.9, 1.1)}


_entry("halfcheetah-bullet", HalfCheetahBullet, ("locomotion",), 1000,
       "PyBullet half cheetah (pybullet-envs-gymnasium); run forward.")
_entry("ant-bullet", AntBullet, ("locomotion",), 1000,
       "PyBullet ant (pybullet-envs-gymnasium); walk forward without falling.")
_entry("hopper-bullet", HopperBullet, ("locomotion",), 1000,
       "PyBullet hopper (pybullet-envs-gymnasium); hop forward without falling.")
_entry("walker2d-bullet", Walker2DBullet, ("locomotion",), 1000,
       "PyBullet planar walker (pybullet-envs-gymnasium); walk forward without falling.")
_entry("a1-walk", A1Walk, ("locomotion",), 1000,
       "Unitree A1 quadruped (pybullet_data); walk forward at 0.5 m/s. Our task.",
       randomization=_LEGGED_RANGES)
_entry("bullet-cartpole", BulletCartPole, ("cart-pole",), 500,
       "PyBullet cart-pole (pybullet_data cartpole.urdf); balance with a continuous force.")
for _sparse in (False, True):
    _suffix = "-sparse" if _sparse else ""
    _kind = "sparse (1 on success)" if _sparse else "dense (bounded shaping)"
    _entry(f"panda-reach{_suffix}", PandaReach, ("manipulation",), 50,
           f"Franka Panda: move the gripper to a goal; {_kind} reward. Our task.", sparse=_sparse)
    _entry(f"panda-push{_suffix}", PandaPush, ("manipulation",), 50,
           f"Franka Panda: push a cube to a goal; {_kind} reward. Our task.",
           randomization=_PUSH_RANGES, sparse=_sparse)

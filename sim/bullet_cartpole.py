"""`bullet-cartpole`: balance the pole of pybullet_data's cartpole.urdf with a continuous force.

Rewards follow dm-control's cart-pole balance (Tassa et al. 2018): the product of bounded terms
(upright, centered, small control, small angular velocity), so a step earns at most 1. The
episode ends when the pole passes 0.8 rad or the cart leaves +-2.4 m, as in the classic task.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from sim.bullet_base import BulletTask, tolerance

MAX_FORCE = 10.0  # N on the slider at action +-1
X_LIMIT, THETA_LIMIT = 2.4, 0.8


class BulletCartPole(BulletTask):
    timestep: ClassVar[float] = 0.005
    n_substeps: ClassVar[int] = 4  # 50 Hz control
    camera: ClassVar = {"distance": 4.0, "yaw": 0.0, "pitch": -10.0, "target": (0.0, 0.0, 0.5)}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(-MAX_FORCE, MAX_FORCE, (1,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
        self.force = 0.0

    def load(self, p: BulletClient) -> None:
        self.cartpole = p.loadURDF("cartpole.urdf", useFixedBase=True)
        for j in (0, 1):  # PyBullet's default velocity motors would brake both joints
            p.setJointMotorControl2(self.cartpole, j, pybullet.VELOCITY_CONTROL, force=0.0)

    def actuated_joints(self) -> list[tuple[int, int]]:
        return [(self.cartpole, 0)]

    def state_joints(self) -> list[tuple[int, int]]:
        return [(self.cartpole, 0), (self.cartpole, 1)]

    def dynamic_links(self) -> list[tuple[int, int]]:
        return [(self.cartpole, 0), (self.cartpole, 1)]

    def initialize_episode(self, rng: np.random.Generator) -> None:
        x, theta = rng.uniform(-0.05, 0.05, 2)
        x_dot, theta_dot = rng.uniform(-0.05, 0.05, 2)
        self._p.resetJointState(self.cartpole, 0, float(x), float(x_dot))
        self._p.resetJointState(self.cartpole, 1, float(theta), float(theta_dot))
        self.force = 0.0

    def before_step(self, action: np.ndarray) -> None:
        self.force = float(np.clip(action[0], -MAX_FORCE, MAX_FORCE) * self.actuator_gain[0])
        self._p.setJointMotorControl2(self.cartpole, 0, pybullet.TORQUE_CONTROL, force=self.force)

    def _joints(self) -> tuple[float, float, float, float]:
        (x, x_dot, *_), (theta, theta_dot, *_) = self._p.getJointStates(self.cartpole, (0, 1))
        return x, theta, x_dot, theta_dot

    def observe(self) -> np.ndarray:
        x, theta, x_dot, theta_dot = self._joints()
        return np.array([x, np.cos(theta), np.sin(theta), x_dot, theta_dot], dtype=np.float32)

    def get_reward(self) -> float:
        x, theta, _, theta_dot = self._joints()
        upright = (np.cos(theta) + 1.0) / 2.0
        centered = (1.0 + tolerance(x, margin=2.0)) / 2.0
        small_control = (4.0 + tolerance(self.force / MAX_FORCE, margin=1.0, value_at_margin=0.0,
                                          sigmoid="quadratic")) / 5.0
        small_velocity = (1.0 + tolerance(theta_dot, margin=5.0)) / 2.0
        return float(upright * centered * small_control * small_velocity)

    def get_termination(self) -> bool:
        x, theta, _, _ = self._joints()
        return abs(x) > X_LIMIT or abs(theta) > THETA_LIMIT

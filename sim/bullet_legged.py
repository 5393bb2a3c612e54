"""`a1-walk`: Unitree A1 (pybullet_data's a1.urdf) walking forward at a target speed.

Our own forward-velocity task in the dm-control pattern (quadruped-walk, Tassa et al. 2018):
the reward is upright * move, both bounded in [0, 1], where `move` reaches 1 at the target
forward speed of 0.5 m/s (body frame). Actions are joint position targets around the standing
pose, tracked by PyBullet's position motors with the A1's 33.5 N m torque limit (a stand-in for
the robot's joint PD loop). The episode ends when the robot falls (trunk below 15 cm or tilted
past 60 degrees).
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from sim.bullet_base import BulletTask, tolerance

LEGS = ("FR", "FL", "RR", "RL")
STAND = np.array([0.0, 0.9, -1.8] * 4)  # hip, thigh, calf (rad), the A1's standing pose
SPAN = np.array([0.4, 0.8, 0.8] * 4)  # reach of the action around the standing pose
MAX_TORQUE = 33.5
TARGET_SPEED = 0.5  # m/s
START_HEIGHT = 0.32


class A1Walk(BulletTask):
    timestep: ClassVar[float] = 0.002
    n_substeps: ClassVar[int] = 10  # 50 Hz control, 500 Hz physics
    joint_damping_nominal: ClassVar[float] = 0.01
    camera: ClassVar = {"distance": 1.5, "yaw": 30.0, "pitch": -25.0, "target": (0.0, 0.0, 0.2)}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box((STAND - SPAN).astype(np.float32),
                                           (STAND + SPAN).astype(np.float32), dtype=np.float32)
        n = len(self.observe())
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)

    def load(self, p: BulletClient) -> None:
        p.loadURDF("plane.urdf")
        self.robot = p.loadURDF("a1/a1.urdf", [0.0, 0.0, START_HEIGHT])
        names = {p.getJointInfo(self.robot, j)[1].decode(): j
                 for j in range(p.getNumJoints(self.robot))}
        self.motors = tuple(names[f"{leg}_{part}_joint"] for leg in LEGS
                            for part in ("hip", "upper", "lower"))

    def actuated_joints(self) -> list[tuple[int, int]]:
        return [(self.robot, j) for j in self.motors]

    def dynamic_links(self) -> list[tuple[int, int]]:
        return [(self.robot, j) for j in range(-1, self._p.getNumJoints(self.robot))]

    def initialize_episode(self, rng: np.random.Generator) -> None:
        yaw = rng.uniform(-0.1, 0.1)
        quat = self._p.getQuaternionFromEuler((0.0, 0.0, yaw))
        self._p.resetBasePositionAndOrientation(self.robot, [0.0, 0.0, START_HEIGHT], quat)
        self._p.resetBaseVelocity(self.robot, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
        q = STAND + rng.uniform(-0.05, 0.05, len(self.motors))
        for j, qi in zip(self.motors, q, strict=True):
            self._p.resetJointState(self.robot, j, float(qi), 0.0)
        self._command(q)

    def _command(self, q: np.ndarray) -> None:
        self._p.setJointMotorControlArray(
            self.robot, self.motors, pybullet.POSITION_CONTROL, targetPositions=q.tolist(),
            forces=(MAX_TORQUE * self.actuator_gain).tolist(), positionGains=[0.3] * 12,
            velocityGains=[1.0] * 12)

    def before_step(self, action: np.ndarray) -> None:
        self._command(np.clip(action, STAND - SPAN, STAND + SPAN))

    def _trunk(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Height, body-to-world rotation, and body-frame linear and angular velocity."""
        pos, quat = self._p.getBasePositionAndOrientation(self.robot)
        lin, ang = self._p.getBaseVelocity(self.robot)
        rot = np.array(self._p.getMatrixFromQuaternion(quat)).reshape(3, 3)
        return np.array(pos), rot, rot.T @ np.array(lin), rot.T @ np.array(ang)

    def observe(self) -> np.ndarray:
        pos, rot, lin, ang = self._trunk()
        states = self._p.getJointStates(self.robot, self.motors)
        q = [s[0] for s in states]
        qd = [s[1] for s in states]
        # rot[2] is the world's up axis in the body frame: tilt without angle wrap-around.
        return np.concatenate([[pos[2]], rot[2], lin, ang, q, qd]).astype(np.float32)

    def get_reward(self) -> float:
        _, rot, lin, _ = self._trunk()
        upright = (1.0 + rot[2, 2]) / 2.0
        move = tolerance(lin[0], bounds=(TARGET_SPEED, float("inf")), margin=TARGET_SPEED,
                         value_at_margin=0.5, sigmoid="linear")
        return float(upright * move)

    def get_termination(self) -> bool:
        pos, rot, _, _ = self._trunk()
        return bool(pos[2] < 0.15 or rot[2, 2] < 0.5)

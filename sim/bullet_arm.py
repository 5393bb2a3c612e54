"""`panda-reach` and `panda-push` on pybullet_data's Franka Panda, dense and sparse rewards.

The setting follows panda-gym (Gallouedec et al. 2021): the action moves the end effector by at
most 5 cm per 40 ms step in Cartesian space (inverse kinematics, gripper pointing down), the
goal is drawn in a box in front of the robot, an episode lasts 50 steps. Rewards are bounded:
dense rewards are dm-control `tolerance` terms in [0, 1] (1 within 5 cm of the goal), sparse
rewards are 1 on success and 0 otherwise.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from sim.bullet_base import BulletTask, tolerance

ARM = tuple(range(7))
FINGERS = (9, 10)
EE_LINK = 11  # panda_grasptarget, between the fingertips
NEUTRAL = (0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79)
MAX_FORCE = (87.0,) * 4 + (12.0,) * 3  # N m, the URDF's effort limits
STEP = 0.05  # m of end-effector motion at action +-1
BASE = (-0.6, 0.0, 0.0)
WORKSPACE_LOW, WORKSPACE_HIGH = np.array([-0.3, -0.3, 0.0]), np.array([0.3, 0.3, 0.5])
SUCCESS = 0.05  # m
CUBE = 0.04  # m, edge of the pushed cube
DOWN = pybullet.getQuaternionFromEuler((np.pi, 0.0, 0.0))


class PandaTask(BulletTask):
    """Shared by reach and push: the arm, Cartesian control, the goal."""

    timestep: ClassVar[float] = 0.004
    n_substeps: ClassVar[int] = 10  # 25 Hz control, as panda-gym
    joint_damping_nominal: ClassVar[float] = 0.1
    camera: ClassVar = {"distance": 1.2, "yaw": 45.0, "pitch": -30.0, "target": (0.0, 0.0, 0.1)}
    goal_low, goal_high = np.array([-0.15, -0.15, 0.05]), np.array([0.15, 0.15, 0.3])

    def __init__(self, *, sparse: bool = False, **kwargs) -> None:
        self.sparse = sparse
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(-STEP, STEP, (3,), np.float32)
        n = len(self.observe())
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)
        self.goal = np.zeros(3)

    def load(self, p: BulletClient) -> None:
        p.loadURDF("plane.urdf")
        self.robot = p.loadURDF("franka_panda/panda.urdf", BASE, useFixedBase=True)
        self.goal = np.zeros(3)

    def actuated_joints(self) -> list[tuple[int, int]]:
        return [(self.robot, j) for j in ARM]

    def dynamic_links(self) -> list[tuple[int, int]]:
        return [(self.robot, j) for j in range(self._p.getNumJoints(self.robot))]

    def _reset_arm(self) -> None:
        for j, q in zip(ARM, NEUTRAL, strict=True):
            self._p.resetJointState(self.robot, j, q, 0.0)
        for j in FINGERS:  # closed fingers: a pusher, not a gripper
            self._p.resetJointState(self.robot, j, 0.0, 0.0)
        self._p.setJointMotorControlArray(self.robot, FINGERS, pybullet.POSITION_CONTROL,
                                          targetPositions=[0.0, 0.0], forces=[20.0, 20.0])

    def ee(self) -> tuple[np.ndarray, np.ndarray]:
        state = self._p.getLinkState(self.robot, EE_LINK, computeLinkVelocity=1,
                                     computeForwardKinematics=1)  # fresh, not cached
        return np.array(state[4]), np.array(state[6])

    def before_step(self, action: np.ndarray) -> None:
        pos, _ = self.ee()
        target = np.clip(pos + np.clip(action, -STEP, STEP), WORKSPACE_LOW, WORKSPACE_HIGH)
        q = self._p.calculateInverseKinematics(self.robot, EE_LINK, target.tolist(), DOWN,
                                               maxNumIterations=20)
        forces = (np.asarray(MAX_FORCE) * self.actuator_gain).tolist()
        self._p.setJointMotorControlArray(self.robot, ARM, pybullet.POSITION_CONTROL,
                                          targetPositions=list(q[:7]), forces=forces)

    def _goal_reward(self, distance: float) -> float:
        if self.sparse:
            return float(distance < SUCCESS)
        return float(tolerance(distance, bounds=(0.0, SUCCESS), margin=0.3))


class PandaReach(PandaTask):
    """Bring the end effector to a goal point in the air."""

    def initialize_episode(self, rng: np.random.Generator) -> None:
        self._reset_arm()
        self.goal = rng.uniform(self.goal_low, self.goal_high)

    def observe(self) -> np.ndarray:
        pos, vel = self.ee()
        return np.concatenate([pos, vel, self.goal]).astype(np.float32)

    def get_reward(self) -> float:
        return self._goal_reward(float(np.linalg.norm(self.ee()[0] - self.goal)))


class PandaPush(PandaTask):
    """Push a cube lying on the floor to a goal on the floor."""

    goal_low, goal_high = np.array([-0.15, -0.15, CUBE / 2]), np.array([0.15, 0.15, CUBE / 2])

    def load(self, p: BulletClient) -> None:
        super().load(p)
        half = CUBE / 2
        shape = p.createCollisionShape(pybullet.GEOM_BOX, halfExtents=[half] * 3)
        visual = p.createVisualShape(pybullet.GEOM_BOX, halfExtents=[half] * 3,
                                     rgbaColor=[0.1, 0.6, 0.9, 1.0])
        self.cube = p.createMultiBody(0.1, shape, visual, [0.0, 0.0, half])
        p.changeDynamics(self.cube, -1, lateralFriction=1.0)

    def dynamic_links(self) -> list[tuple[int, int]]:
        return [*super().dynamic_links(), (self.cube, -1)]

    def initialize_episode(self, rng: np.random.Generator) -> None:
        self._reset_arm()
        xy = rng.uniform(-0.15, 0.15, 2)
        self._p.resetBasePositionAndOrientation(self.cube, [xy[0], xy[1], CUBE / 2],
                                                [0.0, 0.0, 0.0, 1.0])
        self._p.resetBaseVelocity(self.cube, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
        self.goal = rng.uniform(self.goal_low, self.goal_high)

    def cube_state(self) -> tuple[np.ndarray, ...]:
        pos, quat = self._p.getBasePositionAndOrientation(self.cube)
        lin, ang = self._p.getBaseVelocity(self.cube)
        return (np.array(pos), np.array(self._p.getEulerFromQuaternion(quat)), np.array(lin),
                np.array(ang))

    def observe(self) -> np.ndarray:
        pos, vel = self.ee()
        return np.concatenate([pos, vel, *self.cube_state(), self.goal]).astype(np.float32)

    def get_reward(self) -> float:
        ee, cube = self.ee()[0], self.cube_state()[0]
        to_goal = self._goal_reward(float(np.linalg.norm(cube - self.goal)))
        if self.sparse:
            return to_goal
        # Shaping: reaching the cube is worth at most a fifth; moving it to the goal the rest.
        reach = float(tolerance(float(np.linalg.norm(ee - cube)), bounds=(0.0, CUBE), margin=0.3))
        return 0.2 * reach + 0.8 * to_goal

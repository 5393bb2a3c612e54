"""PyBullet plumbing shared by our tasks: the task base class, exact snapshots, physics access.

`BulletTask` follows the dm-control pattern: a subclass loads its models once (`load`), sets
up each episode (`initialize_episode`, randomness only from the seeded `np_random`), applies
actions (`before_step`), and reads `observe`, `get_reward` (bounded shaping terms, see
`tolerance`) and `get_termination`. The base owns the physics client, the fixed time step,
rendering, snapshots and the `sim.physics` view.

Exact snapshots: `saveBullet` writes the full dynamics world, contact points included, and
`restoreState(fileName=...)` reads it back so a resumed simulation continues bit for bit.
The bytes travel base64-encoded in the JSON state.
"""

from __future__ import annotations

import base64
import os
import tempfile
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet
import pybullet_data
from dm_control.utils.rewards import tolerance
from pybullet_utils.bullet_client import BulletClient

from sim.quiet import quiet_stdout

__all__ = ["BulletPhysics", "BulletTask", "restore_bullet", "save_bullet", "tolerance"]


def save_bullet(client: BulletClient) -> str:
    """The whole dynamics world as base64 text."""
    fd, path = tempfile.mkstemp(suffix=".bullet")
    os.close(fd)
    try:
        client.saveBullet(path)
        with open(path, "rb") as f:
            return base64.b64encode(f.read()).decode("ascii")
    finally:
        os.remove(path)


def restore_bullet(client: BulletClient, text: str) -> None:
    """Restore a world saved by `save_bullet` into a client holding the same bodies."""
    fd, path = tempfile.mkstemp(suffix=".bullet")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(text))
        client.restoreState(fileName=path)
    finally:
        os.remove(path)


def new_client(timestep: float, n_substeps: int) -> BulletClient:
    """A headless client; one `stepSimulation` advances n_substeps * timestep seconds, with the
    commands of the step held over all substeps (as a motor driver holds a setpoint)."""
    with quiet_stdout():  # PyBullet prints "argv[0]=" on every connection
        client = BulletClient(connection_mode=pybullet.DIRECT)
    client.setAdditionalSearchPath(pybullet_data.getDataPath())
    # Same inputs, same contacts, same bits: without it pair order follows memory addresses.
    client.setPhysicsEngineParameter(deterministicOverlappingPairs=1,
                                     fixedTimeStep=timestep * n_substeps, numSubSteps=n_substeps)
    client.setGravity(0.0, 0.0, -9.81)
    return client


class BulletPhysics:
    """`sim.physics.Physics` for PyBullet bodies: link masses (with inertias), lateral friction,
    joint damping, and an actuator gain the env multiplies its commands by."""

    parameters = ("mass", "friction", "damping", "gain")

    def __init__(self, client: BulletClient, links: list[tuple[int, int]],
                 joints: list[tuple[int, int]], owner: Any, observe: Any) -> None:
        self.p, self.links, self.joints = client, links, joints
        # The env keeps its gains and damping as arrays (PyBullet reports only the URDF damping).
        self.owner, self._observe = owner, observe

    def values(self, name: str) -> np.ndarray:
        if name == "mass":
            return np.array([self.p.getDynamicsInfo(b, link)[0] for b, link in self.links])
        if name == "friction":
            return np.array([self.p.getDynamicsInfo(b, link)[1] for b, link in self.links])
        if name == "damping":
            return np.array(self.owner.joint_damping, dtype=np.float64)
        return np.array(self.owner.actuator_gain, dtype=np.float64)

    def snapshot(self) -> dict[str, np.ndarray]:
        inertia = np.array([self.p.getDynamicsInfo(b, link)[2] for b, link in self.links])
        return {"mass": self.values("mass"), "inertia": inertia.reshape(-1, 3),
                "friction": self.values("friction"), "damping": self.values("damping"),
                "gain": self.values("gain")}

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        self.scale(snap, {})

    def scale(self, snap: dict[str, np.ndarray], scales: dict[str, np.ndarray]) -> None:
        ones = np.ones(len(self.links))
        m = scales.get("mass", ones)
        f = scales.get("friction", ones)
        for i, (b, link) in enumerate(self.links):
            if snap["mass"][i] > 0:  # a fixed base has mass 0; changing it would free it
                self.p.changeDynamics(b, link, mass=float(snap["mass"][i] * m[i]),
                                      localInertiaDiagonal=(snap["inertia"][i] * m[i]).tolist())
            self.p.changeDynamics(b, link, lateralFriction=float(snap["friction"][i] * f[i]))
        damping = snap["damping"] * scales.get("damping", 1.0)
        for (b, j), d in zip(self.joints, damping, strict=True):
            self.p.changeDynamics(b, j, jointDamping=float(d))
        self.owner.joint_damping = damping
        self.owner.actuator_gain = snap["gain"] * scales.get("gain", 1.0)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        states = [self.p.getJointState(b, j) for b, j in self.joints]
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def set_joint_state(self, q: np.ndarray, v: np.ndarray) -> None:
        for (b, j), qi, vi in zip(self.joints, q, v, strict=True):
            self.p.resetJointState(b, j, float(qi), float(vi))

    def observe(self) -> Any:
        return self._observe()


class BulletTask(gym.Env):
    """Base of our PyBullet tasks (see module doc). Subclasses set the class constants."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}
    timestep: ClassVar[float] = 1.0 / 240.0
    n_substeps: ClassVar[int] = 4
    joint_damping_nominal: ClassVar[float] = 0.0
    camera: ClassVar[dict[str, Any]] = {"distance": 2.0, "yaw": 0.0, "pitch": -30.0,
                                        "target": (0.0, 0.0, 0.0)}
    _state_exclude = ("_initial_state",)

    def __init__(self, *, render_mode: str | None = None, width: int = 240,
                 height: int = 240) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        self.render_mode, self.width, self.height = render_mode, width, height
        self.dt = self.timestep * self.n_substeps
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.dt)}
        self._p = new_client(self.timestep, self.n_substeps)
        self.load(self._p)
        for b, j in self.state_joints():  # URDFs leave it 0; real joints have viscous friction
            self._p.changeDynamics(b, j, jointDamping=self.joint_damping_nominal)
        # Every episode starts from the freshly loaded world.
        self._initial_state = self._p.saveState()
        self.actuator_gain = np.ones(len(self.actuated_joints()))
        self.joint_damping = np.full(len(self.state_joints()), self.joint_damping_nominal)

    # -- the task: subclasses implement these ----------------------------------------------------
    def load(self, p: BulletClient) -> None:
        raise NotImplementedError

    def actuated_joints(self) -> list[tuple[int, int]]:
        """(body, joint) pairs the actions drive, in action order."""
        raise NotImplementedError

    def state_joints(self) -> list[tuple[int, int]]:
        """(body, joint) pairs that initial-state perturbation and damping act on."""
        return self.actuated_joints()

    def dynamic_links(self) -> list[tuple[int, int]]:
        """(body, link) pairs whose mass and friction domain randomization may change."""
        raise NotImplementedError

    def initialize_episode(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def before_step(self, action: np.ndarray) -> None:
        raise NotImplementedError

    def observe(self) -> np.ndarray:
        raise NotImplementedError

    def get_reward(self) -> float:
        raise NotImplementedError

    def get_termination(self) -> bool:
        return False

    # -- gymnasium ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._p.restoreState(self._initial_state)
        self.initialize_episode(self.np_random)
        return self.observe(), {}

    def step(self, action: Any):
        self.before_step(np.asarray(action, dtype=np.float64))
        self._p.stepSimulation()
        obs = self.observe()
        return obs, float(self.get_reward()), bool(self.get_termination()), False, {}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        c = self.camera
        view = self._p.computeViewMatrixFromYawPitchRoll(c["target"], c["distance"], c["yaw"],
                                                         c["pitch"], 0.0, 2)
        proj = self._p.computeProjectionMatrixFOV(60.0, self.width / self.height, 0.05, 50.0)
        _, _, rgba, _, _ = self._p.getCameraImage(self.width, self.height, view, proj,
                                                  renderer=pybullet.ER_TINY_RENDERER)
        return np.asarray(rgba, dtype=np.uint8).reshape(self.height, self.width, 4)[..., :3]

    def close(self) -> None:
        if self._p is not None:
            self._p.disconnect()
            self._p = None

    # -- sim.physics and sim.state -------------------------------------------------------------
    def kinema_physics(self) -> BulletPhysics:
        return BulletPhysics(self._p, self.dynamic_links(), self.state_joints(), self,
                             self.observe)

    def get_wrapper_state(self) -> dict[str, Any]:
        return {"bullet": save_bullet(self._p)}

    def set_wrapper_state(self, state: dict[str, Any]) -> None:
        restore_bullet(self._p, state["bullet"])
        # The restored world keeps this client's joint damping; apply the saved values.
        for (b, j), d in zip(self.state_joints(), self.joint_damping, strict=True):
            self._p.changeDynamics(b, j, jointDamping=float(d))

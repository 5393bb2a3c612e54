"""Simulation: one registry, every backend behind the Gymnasium API.

    env = sim.make("cartpole", seed=0)
    sim.names(tag="continuous"); sim.spec("pendulum").info.dt
"""

import os as _os

if not _os.environ.get("DISPLAY"):  # headless: MuJoCo renders offscreen through EGL
    _os.environ.setdefault("MUJOCO_GL", "egl")

from sim.quiet import quiet_stdout as _quiet_stdout  # noqa: E402

with _quiet_stdout():  # PyBullet prints its build date on import
    from sim import bullet_envs as _bullet_envs  # noqa: F401  (registers entries)
from sim import dm_control_envs as _dm_control_envs  # noqa: E402, F401  (registers entries)
from sim import gymnasium_envs as _gymnasium_envs  # noqa: E402, F401  (registers entries)
from sim.errors import SimulationUnstable, UnknownNameError  # noqa: E402
from sim.registry import (  # noqa: E402
    BACKENDS,
    TAGS,
    EnvInfo,
    EnvSpec,
    make,
    make_vec,
    names,
    register,
    spec,
)
from sim.state import get_state, set_state  # noqa: E402

__all__ = [
    "BACKENDS", "TAGS", "EnvInfo", "EnvSpec", "SimulationUnstable", "UnknownNameError",
    "get_state", "make", "make_vec", "names", "register", "set_state", "spec",
]

"""Simulation: one registry, every backend behind the Gymnasium API.

    env = sim.make("cartpole", seed=0)
    sim.names(tag="continuous"); sim.spec("pendulum").info.dt

Importing sim loads no simulator: the registry imports a backend's module (MuJoCo through
dm-control, PyBullet) the first time one of its names is asked for (sim/registry.py).
"""

import os as _os

if not _os.environ.get("DISPLAY"):  # headless: MuJoCo renders offscreen through EGL
    _os.environ.setdefault("MUJOCO_GL", "egl")

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

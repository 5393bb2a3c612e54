"""Simulation: one registry, every backend behind the Gymnasium API.

    env = sim.make("cartpole", seed=0)
    sim.names(tag="continuous"); sim.spec("pendulum").info.dt
"""

from sim import gymnasium_envs as _gymnasium_envs  # noqa: F401  (registers entries)
from sim.errors import SimulationUnstable, UnknownNameError
from sim.registry import BACKENDS, TAGS, EnvInfo, EnvSpec, make, make_vec, names, register, spec
from sim.state import get_state, set_state

__all__ = [
    "BACKENDS", "TAGS", "EnvInfo", "EnvSpec", "SimulationUnstable", "UnknownNameError",
    "get_state", "make", "make_vec", "names", "register", "set_state", "spec",
]

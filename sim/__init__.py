"""Simulation: one registry, every backend behind the Gymnasium API.

    env = sim.make("cartpole", seed=0)
    sim.names(tag="continuous"); sim.spec("pendulum").info.dt
    sim.mdp("frozenlake").P      # a tabular entry's model: P[s, a, s'], R, p0, features

Importing sim loads no simulator: the registry imports a backend's module (MuJoCo through
dm-control, PyBullet) the first time one of its names is asked for (sim/registry.py). Whenever
mujoco is loaded, its warnings go to Python logging, never to a MUJOCO_LOG.TXT in the current
folder (`_quiet_mujoco_log`).
"""

import importlib.abc as _abc
import os as _os
import sys as _sys
from typing import Any as _Any

if not _os.environ.get("DISPLAY"):  # headless: MuJoCo renders offscreen through EGL
    _os.environ.setdefault("MUJOCO_GL", "egl")


def _mujoco_warning(message: str) -> None:
    import logging

    logging.getLogger("mujoco").warning("MuJoCo: %s", message.strip())


def _quiet_mujoco_log(mujoco: _Any) -> None:
    """MuJoCo's default log handler appends every warning to MUJOCO_LOG.TXT in the current
    folder. Turn the file off and send warnings to Python logging (logger "mujoco") unless a
    library installed its handler (dm_control logs them through absl). Instability is reported
    by StabilityGuard through MuJoCo's warning counters, which this does not touch."""
    if hasattr(mujoco, "MjLogConfig"):  # mujoco >= 3.17 (older ones always write the file)
        config = mujoco.MjLogConfig.get()
        config.logto_file = False
        config.set()
    if mujoco.get_mju_user_warning() is None:  # a handler also keeps warnings off the file
        mujoco.set_mju_user_warning(_mujoco_warning)


class _AfterMujocoImport:
    """A meta path finder that configures mujoco's log as soon as anyone imports it, so that
    `import sim` itself still loads no simulator (sim/registry.py imports backends lazily)."""

    def find_spec(self, name: str, path: _Any = None, target: _Any = None) -> _Any:
        if name != "mujoco":
            return None
        import importlib.util

        if self in _sys.meta_path:  # once, and the real finders find the module
            _sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _ConfiguringLoader(spec.loader)
        return spec


class _ConfiguringLoader(_abc.Loader):
    def __init__(self, inner: _Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> _Any:  # resource readers and the like: the real loader
        return getattr(self._inner, name)

    def create_module(self, spec: _Any) -> _Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: _Any) -> None:
        self._inner.exec_module(module)
        _quiet_mujoco_log(module)


if "mujoco" in _sys.modules:
    _quiet_mujoco_log(_sys.modules["mujoco"])
else:
    _sys.meta_path.insert(0, _AfterMujocoImport())

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
from sim.tabular import TabularMDP, mdp  # noqa: E402

__all__ = [
    "BACKENDS", "TAGS", "EnvInfo", "EnvSpec", "SimulationUnstable", "TabularMDP",
    "UnknownNameError", "get_state", "make", "make_vec", "mdp", "names", "register", "set_state",
    "spec",
]

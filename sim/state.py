"""Save and restore the full state of a built env as plain JSON data.

Used for bit-exact resume of training (the envs are part of the training state) and for
planning on the true simulator state. The state covers every wrapper layer and the base env:
plain attributes (numbers, arrays, None), the env's random generator, for MuJoCo envs (Gymnasium
MuJoCo and the dm-control adapter) the integration state read with `mujoco.mj_getState` plus the
derived quantities envs read before stepping, and whatever a layer adds through
`get_wrapper_state`/`set_wrapper_state` (wrappers and base envs alike: the dm-control task's
random state and task-written model fields, PyBullet worlds as `saveBullet` bytes). Python
floats round-trip exactly through JSON (shortest repr), so restoring gives the same bits.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeGuard, cast

import gymnasium as gym
import numpy as np

_SCALARS = (bool, int, float, str, type(None))

# After mj_step, MuJoCo's derived quantities (body positions, contact forces, ...) describe the
# state *before* the last integration, and envs read them before stepping (Ant's and
# Humanoid's forward reward). mj_forward would make them fresh, so they are carried as saved.
_MJ_DERIVED = ("xpos", "xquat", "xmat", "xipos", "ximat", "subtree_com", "cinert", "cvel",
               "cacc", "cfrc_ext", "cfrc_int", "qfrc_actuator", "actuator_force", "sensordata",
               "site_xpos", "site_xmat", "geom_xpos", "geom_xmat")


class _MujocoEnv(Protocol):
    """A base env simulated by MuJoCo: `mujoco.MjModel` and `mujoco.MjData` attributes."""

    model: Any
    data: Any


class _CustomState(Protocol):
    """A layer that carries part of its state itself."""

    def set_wrapper_state(self, state: dict[str, Any]) -> None: ...


def _encode(v: Any) -> tuple[bool, Any]:
    """(ok, encoded) for values we know how to carry; objects are skipped."""
    if isinstance(v, _SCALARS):
        return True, v
    if isinstance(v, np.generic | np.ndarray) and v.dtype.kind in "biuf":
        a = np.asarray(v)
        return True, {"__ndarray__": a.dtype.str, "shape": list(a.shape),
                      "data": a.ravel().tolist()}
    if isinstance(v, np.random.Generator):
        return True, {"__generator__": v.bit_generator.state}
    if isinstance(v, tuple | list) and all(isinstance(x, _SCALARS) for x in v):
        return True, {"__seq__": type(v).__name__, "items": list(v)}
    return False, None


def _decode(v: Any, current: Any) -> Any:
    if isinstance(v, dict) and "__ndarray__" in v:
        a = np.asarray(v["data"], dtype=np.dtype(v["__ndarray__"])).reshape(v["shape"])
        return a[()] if isinstance(current, np.generic) else a
    if isinstance(v, dict) and "__generator__" in v:
        g = current if isinstance(current, np.random.Generator) else np.random.default_rng()
        g.bit_generator.state = v["__generator__"]
        return g
    if isinstance(v, dict) and "__seq__" in v:
        return tuple(v["items"]) if v["__seq__"] == "tuple" else list(v["items"])
    return v


def _attrs(obj: Any) -> dict[str, Any]:
    # A class lists in `_state_exclude` attributes that must never be replaced on restore
    # (live views into a simulator, connection ids).
    skip = {"env", "metadata", "spec", *getattr(type(obj), "_state_exclude", ())}
    out = {}
    for k, v in vars(obj).items():
        if k in skip:
            continue
        ok, enc = _encode(v)
        if ok:
            out[k] = enc
    return out


def _layers(env: gym.Env) -> list[gym.Env]:
    out = [env]
    while isinstance(out[-1], gym.Wrapper):
        out.append(out[-1].env)
    return out


def get_state(env: gym.Env) -> dict[str, Any]:
    """Everything needed to continue `env` exactly where it is, as JSON-able data."""
    layers = []
    for e in _layers(env):
        st = {"class": type(e).__name__, "attrs": _attrs(e)}
        if hasattr(e, "get_wrapper_state"):
            st["custom"] = e.get_wrapper_state()
        if _is_mujoco(e):
            import mujoco

            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            buf = np.empty(mujoco.mj_stateSize(e.model, spec), dtype=np.float64)
            mujoco.mj_getState(e.model, e.data, buf, spec)
            st["mujoco"] = buf.tolist()
            st["mujoco_derived"] = {f: getattr(e.data, f).ravel().tolist() for f in _MJ_DERIVED}
        layers.append(st)
    return {"layers": layers}


def set_state(env: gym.Env, state: dict[str, Any]) -> None:
    """Restore a state taken by `get_state` from an env built the same way."""
    layers = _layers(env)
    saved = state["layers"]
    if [type(e).__name__ for e in layers] != [s["class"] for s in saved]:
        raise ValueError(
            f"env layers {[type(e).__name__ for e in layers]} do not match the saved state's "
            f"{[s['class'] for s in saved]}"
        )
    for e, st in zip(layers, saved, strict=True):
        for k, v in st["attrs"].items():
            object.__setattr__(e, k, _decode(v, getattr(e, k, None)))
        if "custom" in st:  # saved from this layer's get_wrapper_state
            cast(_CustomState, e).set_wrapper_state(st["custom"])
        if "mujoco" in st:  # saved from this layer, a MuJoCo env
            import mujoco

            mj = cast(_MujocoEnv, e)
            buf = np.asarray(st["mujoco"], dtype=np.float64)
            mujoco.mj_setState(mj.model, mj.data, buf, mujoco.mjtState.mjSTATE_INTEGRATION)
            mujoco.mj_forward(mj.model, mj.data)
            for f, values in st.get("mujoco_derived", {}).items():
                arr = getattr(mj.data, f)
                arr[...] = np.asarray(values, arr.dtype).reshape(arr.shape)


def _is_mujoco(e: gym.Env) -> TypeGuard[_MujocoEnv]:
    return not isinstance(e, gym.Wrapper) and hasattr(e, "model") and hasattr(e, "data") and (
        type(e.data).__module__.startswith("mujoco")
    )

"""Entries for Gymnasium's classic-control and MuJoCo (v5) environments."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator

import gymnasium as gym

from sim.registry import EnvSpec, register

_STATE_CONT = ("state", "continuous")


# Gymnasium's half_cheetah.xml sets <compiler settotalmass=...>, which MuJoCo 3.x compiles
# with this deprecation on stderr (and into ./MUJOCO_LOG.TXT) every time the env is built:
# Gymnasium's file, nothing a user can act on.
_MUJOCO_NOISE = ("compiler attribute 'settotalmass' is deprecated",)


@contextlib.contextmanager
def _quiet_mujoco_compiler() -> Iterator[None]:
    """Drop the MuJoCo warnings named in _MUJOCO_NOISE while a model compiles; any other
    warning is passed on (to the handler set before, or printed as MuJoCo prints it)."""
    import mujoco

    before = mujoco.get_mju_user_warning()

    def handler(msg: str) -> None:
        if any(noise in msg for noise in _MUJOCO_NOISE):
            return
        if before is not None:
            before(msg)
        else:
            print(f"WARNING: {msg}\n", file=sys.stderr, flush=True)

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(before)


def _gym(env_id: str, *, render_mode: str | None = None, mujoco_model: bool = False,
         **overrides) -> gym.Env:
    # The bare env: `sim.make` adds the time limit and every wrapper itself.
    quiet = _quiet_mujoco_compiler() if mujoco_model else contextlib.nullcontext()
    with quiet:
        return gym.make(env_id, render_mode=render_mode, disable_env_checker=True,
                        **overrides).unwrapped


def _entry(name, env_id, backend, tags, max_steps, description, terminates=True):
    register(
        EnvSpec(
            name=name,
            backend=backend,
            tags=tags,
            build=functools.partial(_gym, env_id, mujoco_model=backend == "mujoco"),
            max_episode_steps=max_steps,
            description=description,
            terminates=terminates,
        )
    )


_entry("cartpole", "CartPole-v1", "gymnasium", ("cart-pole", "state", "discrete"), 500,
       "Balance a pole on a cart by pushing left or right (Barto et al. 1983).")
_entry("pendulum", "Pendulum-v1", "gymnasium", ("cart-pole", "state", "continuous"), 200,
       "Swing a torque-limited pendulum up and hold it upright.", terminates=False)
# Mountain car sits with pendulum in the classic-control ("cart-pole") family of tags.
_entry("mountaincar", "MountainCar-v0", "gymnasium", ("cart-pole", "state", "discrete"), 200,
       "Drive an underpowered car up a hill by rocking; -1 per step until the goal (Moore 1990).")
_entry("mountaincar-continuous", "MountainCarContinuous-v0", "gymnasium",
       ("cart-pole", *_STATE_CONT), 999,
       "Mountain car with a continuous force; +100 at the goal minus 0.1 * force^2 per step.")
_entry("inverted-pendulum", "InvertedPendulum-v5", "mujoco", ("cart-pole", *_STATE_CONT),
       1000, "MuJoCo cart with a hinged pole; keep it upright with a continuous force.")

_LOCO = ("locomotion", *_STATE_CONT)
_entry("halfcheetah", "HalfCheetah-v5", "mujoco", _LOCO, 1000,
       "Planar cheetah; reward forward velocity minus control cost (Wawrzynski 2009).",
       terminates=False)
_entry("hopper", "Hopper-v5", "mujoco", _LOCO, 1000,
       "One-legged planar hopper; hop forward without falling (Erez et al. 2011).")
_entry("walker2d", "Walker2d-v5", "mujoco", _LOCO, 1000,
       "Planar biped; walk forward without falling.")
_entry("ant", "Ant-v5", "mujoco", _LOCO, 1000,
       "Four-legged ant in 3D; move forward (Schulman et al. 2016).")
_entry("humanoid", "Humanoid-v5", "mujoco", _LOCO, 1000,
       "3D humanoid with 17 actuated joints; run forward without falling (Tassa et al. 2012).")

_MANIP = ("manipulation", *_STATE_CONT)
_entry("reacher", "Reacher-v5", "mujoco", _MANIP, 50,
       "Two-link planar arm; bring the fingertip to a random target.", terminates=False)
_entry("pusher", "Pusher-v5", "mujoco", _MANIP, 100,
       "Seven-joint arm; push a cylinder to a goal on the table.", terminates=False)

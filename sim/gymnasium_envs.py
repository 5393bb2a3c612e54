"""Entries for Gymnasium's classic-control and MuJoCo environments."""

from __future__ import annotations

import functools

import gymnasium as gym

from sim.registry import EnvSpec, register


def _gym(env_id: str, *, render_mode: str | None = None, **overrides) -> gym.Env:
    return gym.make(env_id, render_mode=render_mode, **overrides)


def _entry(name, env_id, backend, tags, max_steps, description):
    register(
        EnvSpec(
            name=name,
            backend=backend,
            tags=tags,
            build=functools.partial(_gym, env_id),
            max_episode_steps=max_steps,
            description=description,
        )
    )


_entry("cartpole", "CartPole-v1", "gymnasium", ("cart-pole", "state", "discrete"), 500,
       "Balance a pole on a cart by pushing left or right (Barto et al. 1983).")
_entry("pendulum", "Pendulum-v1", "gymnasium", ("cart-pole", "state", "continuous"), 200,
       "Swing a torque-limited pendulum up and hold it upright.")
_entry("inverted-pendulum", "InvertedPendulum-v5", "mujoco", ("cart-pole", "state", "continuous"),
       1000, "MuJoCo cart with a hinged pole; keep it upright with a continuous force.")

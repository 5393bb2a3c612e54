"""The dm-control -> Gymnasium adapter keeps dm-control's meaning."""

import numpy as np
import pytest
from dm_control import suite

import sim


def test_observations_are_flat_float32_in_sorted_key_order():
    env = sim.make("manipulator-bring-ball", seed=0)
    obs, _ = env.reset(seed=0)
    base = env.unwrapped
    assert list(base.obs_slices) == sorted(base.obs_slices)
    reference = base._task.get_observation(base._physics)  # the dict dm-control builds
    for key, sl in base.obs_slices.items():
        assert np.array_equal(obs[sl], np.asarray(reference[key], np.float32).ravel())
    assert obs.dtype == np.float32 and sum(s.stop - s.start for s in base.obs_slices.values()) \
        == obs.size


def test_actions_in_minus_one_one_reach_the_actuator_ranges():
    env = sim.make("quadruped-walk", seed=0)  # asymmetric ranges: [-1, 1.1], [-0.8, 0.8]
    spec = suite.load("quadruped", "walk").action_spec()
    physics = env.unwrapped._physics
    env.step(np.ones(12, np.float32))
    assert np.allclose(physics.data.ctrl, spec.maximum)
    env.step(-np.ones(12, np.float32))
    assert np.allclose(physics.data.ctrl, spec.minimum)
    env.step(np.zeros(12, np.float32))
    assert np.allclose(physics.data.ctrl, (spec.maximum + spec.minimum) / 2)


def test_time_limit_is_a_truncation_not_a_termination():
    env = sim.make("cartpole-balance", seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        steps += 1
    assert truncated and not terminated and steps == sim.spec("cartpole-balance").max_episode_steps
    assert env.unwrapped.steps == 1000  # the suite's own 10 s limit agrees


def test_physics_errors_end_the_episode_and_are_reported():
    env = sim.make("cheetah-run", seed=0)
    env.unwrapped._physics.data.qvel[:] = 1e12  # a diverged simulator
    obs, reward, terminated, _, info = env.step(np.zeros(6, np.float32))
    assert terminated and info["sim_unstable"] is True and "physics_error" in info
    assert np.all(np.isfinite(obs)) and reward == 0.0


def test_seed_drives_the_tasks_random_state():
    env = sim.make("reacher-easy")
    a, _ = env.reset(seed=11)
    b, _ = env.reset(seed=11)
    c, _ = env.reset(seed=12)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError, match="render_mode"):
        sim.make("reacher-easy", render_mode="human")

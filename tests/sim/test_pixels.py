"""Pixel entries: small and fast (software EGL renders ~50 ms a frame on 2 cores)."""

import json

import numpy as np
import pytest

import sim

PIXELS = sim.names(tag="pixels")


def test_the_issue_pixel_variants_exist():
    assert {"cartpole-swingup-pixels", "cheetah-run-pixels", "walker-walk-pixels",
            "reacher-easy-pixels"} <= set(PIXELS)


@pytest.mark.parametrize("name", PIXELS)
def test_pixel_env_gives_stacked_uint8_frames_and_is_seeded(name):
    env = sim.make(name, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (84, 84, 9)
    assert env.observation_space.contains(obs)
    assert np.array_equal(obs[..., :3], obs[..., 6:])  # after reset: the first frame, repeated
    assert obs.std() > 0  # an image, not a blank
    action = np.full(env.action_space.shape, 0.5, np.float32)
    nxt, reward, *_ = env.step(action)
    assert np.array_equal(nxt[..., :6], obs[..., 3:])  # the stack shifts by one frame
    assert np.isfinite(reward)
    again = sim.make(name, seed=0)
    again.reset(seed=0)
    assert np.array_equal(again.step(action)[0], nxt)


def test_pixel_size_and_frame_stack_are_options():
    env = sim.make("reacher-easy-pixels", seed=0, pixel_size=48, frame_stack=1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (48, 48, 3)
    assert sim.spec("reacher-easy-pixels").info.obs_shape == (84, 84, 9)
    with pytest.raises(ValueError, match="render_mode"):
        sim.make("reacher-easy-pixels", render_mode="human")


def test_pixel_env_state_round_trips_exactly():
    env = sim.make("cheetah-run-pixels", seed=1)
    env.step(env.action_space.sample())
    state = json.loads(json.dumps(sim.get_state(env)))
    actions = [env.action_space.sample() for _ in range(2)]
    expected = [env.step(a)[:2] for a in actions]
    other = sim.make("cheetah-run-pixels", seed=7)
    sim.set_state(other, state)
    for a, (o1, r1) in zip(actions, expected, strict=True):
        o2, r2 = other.step(a)[:2]
        assert np.array_equal(o1, o2) and r1 == r2

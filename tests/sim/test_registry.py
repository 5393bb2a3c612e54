import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim

NAMES = sim.names()
STATE = sim.names(tag="state")  # pixel entries have their own small tests (test_pixels.py)

ISSUE_NAMES = {
    "cartpole": "gymnasium", "cartpole-balance": "dm_control", "cartpole-swingup": "dm_control",
    "bullet-cartpole": "pybullet", "inverted-pendulum": "mujoco", "pendulum": "gymnasium",
    "halfcheetah": "mujoco", "hopper": "mujoco", "walker2d": "mujoco", "ant": "mujoco",
    "humanoid": "mujoco", "cheetah-run": "dm_control", "walker-walk": "dm_control",
    "hopper-hop": "dm_control", "quadruped-walk": "dm_control", "halfcheetah-bullet": "pybullet",
    "ant-bullet": "pybullet", "hopper-bullet": "pybullet", "walker2d-bullet": "pybullet",
    "a1-walk": "pybullet", "reacher": "mujoco", "pusher": "mujoco", "reacher-easy": "dm_control",
    "finger-spin": "dm_control", "manipulator-bring-ball": "dm_control",
    "panda-reach": "pybullet", "panda-reach-sparse": "pybullet", "panda-push": "pybullet",
    "panda-push-sparse": "pybullet",
}


def test_registry_has_every_env_of_the_issue_on_its_backend():
    assert len(STATE) >= 24
    assert {n: sim.spec(n).backend for n in ISSUE_NAMES} == ISSUE_NAMES
    assert {"cartpole-swingup-pixels", "cheetah-run-pixels", "walker-walk-pixels",
            "reacher-easy-pixels"} <= set(sim.names(tag="pixels"))
    assert sim.names(tag="discrete") == sorted(
        ["cartpole", "mountaincar", *sim.names(tag="tabular")])
    assert {"gridworld-4x4", "gridworld-slippery", "frozenlake", "frozenlake-8x8",
            "cliffwalking", "taxi"} <= set(sim.names(tag="tabular"))
    assert "pendulum" in sim.names(tag="continuous")


@pytest.mark.parametrize("name", NAMES)
def test_tags_say_observation_and_action_kind(name):
    tags = set(sim.spec(name).tags)
    assert len(tags & {"state", "pixels"}) == 1 and len(tags & {"discrete", "continuous"}) == 1
    assert tags & {"locomotion", "manipulation", "cart-pole", "tabular"}
    info = sim.spec(name).info
    assert ("pixels" in tags) == (info.obs_dtype == "uint8")
    assert ("discrete" in tags) == info.discrete


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.filterwarnings("ignore:.*infinity.*", "ignore:.*different from the unwrapped.*")
def test_env_passes_gymnasium_checker(name):
    check_env(sim.make(name), skip_render_check=True)


@pytest.mark.parametrize("name", STATE)
def test_conformance_spaces_finite_and_episode_ends(name):
    env = sim.make(name, seed=0)
    info = sim.spec(name).info
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == info.obs_shape
    if not info.discrete:
        assert env.action_space.low.min() == -1.0 and env.action_space.high.max() == 1.0
    steps = 0
    while steps <= sim.spec(name).max_episode_steps:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
        assert env.observation_space.contains(obs)
        if terminated or truncated:
            break
    assert terminated or truncated, f"{name} ran {steps} steps without ending"


@pytest.mark.parametrize("name", STATE)
def test_deterministic_under_a_seed(name):
    def rollout(seed):
        env = sim.make(name, seed=seed)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(30):
            out.append(env.step(env.action_space.sample())[0])
        return np.stack(out)

    assert np.array_equal(rollout(4), rollout(4))
    assert not np.array_equal(rollout(4), rollout(5))


@pytest.mark.parametrize("name", STATE)
def test_state_round_trips_through_json_exactly(name):
    env = sim.make(name, seed=1)
    for _ in range(5):
        env.step(env.action_space.sample())
    state = json.loads(json.dumps(sim.get_state(env)))
    actions = [env.action_space.sample() for _ in range(40)]
    expected = [env.step(a)[:2] for a in actions]
    other = sim.make(name, seed=99)
    sim.set_state(other, state)
    got = [other.step(a)[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(expected, got, strict=True):
        assert np.array_equal(o1, o2) and r1 == r2


def test_spec_reports_control_rate_and_robot_units():
    info = sim.spec("pendulum").info
    assert info.dt == pytest.approx(0.05)
    assert info.action_low == (-2.0,) and info.action_high == (2.0,)
    assert sim.spec("cartpole").info.n_actions == 2


def test_unknown_env_suggests_close_names():
    with pytest.raises(sim.UnknownNameError, match="did you mean cartpole"):
        sim.make("cartpol")
    with pytest.raises(sim.UnknownNameError, match="unknown tag"):
        sim.names(tag="flying")


def test_actions_are_scaled_clipped_and_guarded():
    env = sim.make("pendulum", seed=0)
    seen = []
    inner = env.env  # the wrapper below NormalizedActions receives robot units
    orig = inner.step
    inner.step = lambda a: (seen.append(np.array(a)), orig(a))[1]
    env.step(np.array([0.5], dtype=np.float32))
    env.step(np.array([3.0], dtype=np.float32))  # clipped like a saturating actuator
    assert seen[0][0] == pytest.approx(1.0) and seen[1][0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="not finite"):
        env.step(np.array([np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(2, dtype=np.float32))


def test_instability_ends_the_episode_and_is_flagged():
    env = sim.make("inverted-pendulum", seed=0)
    env.reset(seed=0)
    data = env.unwrapped.data
    data.qvel[:] = np.nan  # a diverged simulator
    obs, reward, terminated, _, info = env.step(np.zeros(1, dtype=np.float32))
    assert terminated and info.get("sim_unstable") is True
    assert np.all(np.isfinite(obs)) and reward == 0.0


def test_make_vec_seeds_sub_envs_and_autoresets_same_step():
    envs = sim.make_vec("cartpole", 3, seed=7)
    obs, _ = envs.reset(seed=7)
    single = sim.make("cartpole")
    assert np.array_equal(obs[1], single.reset(seed=8)[0])
    ended_seen = False
    for _ in range(200):
        obs, _, term, trunc, info = envs.step(np.zeros(3, dtype=np.int64))
        if (term | trunc).any():
            ended_seen = True
            assert "final_obs" in info
            break
    assert ended_seen
    assert isinstance(envs, gym.vector.SyncVectorEnv)


@pytest.mark.parametrize("name", ["halfcheetah", "cheetah-run", "panda-reach", "hopper-bullet"])
def test_bad_actions_are_refused_on_every_backend(name):
    env = sim.make(name, seed=0)
    n = env.action_space.shape[0]
    with pytest.raises(ValueError, match="not finite"):
        env.step(np.full(n, np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(n + 1, dtype=np.float32))
    env.step(np.full(n, 7.0, dtype=np.float32))  # out of range: clipped like a saturating motor


def test_unknown_options_are_one_clear_error():
    with pytest.raises(ValueError, match="option.*bogus"):
        sim.make("cheetah-run", bogus=1)
    with pytest.raises(ValueError, match="pixel_size applies to pixel entries"):
        sim.make("cheetah-run", pixel_size=64)


def test_make_vec_asynchronous_steps_every_backend():
    for name in ("cheetah-run", "bullet-cartpole", "halfcheetah"):
        envs = sim.make_vec(name, 2, seed=3, asynchronous=True)
        try:
            obs, _ = envs.reset(seed=3)
            assert isinstance(envs, gym.vector.AsyncVectorEnv)
            assert obs.shape == (2, *sim.spec(name).info.obs_shape)
            assert not np.array_equal(obs[0], obs[1])  # per-sub-env seeds
            single = sim.make(name)
            assert np.array_equal(obs[1], single.reset(seed=4)[0])
            for _ in range(3):
                obs, reward, _, _, _ = envs.step(envs.action_space.sample())
            assert np.all(np.isfinite(obs)) and reward.shape == (2,)
        finally:
            envs.close()


def test_make_vec_autoresets_a_truncated_dm_control_episode():
    envs = sim.make_vec("reacher-easy", 2, seed=0, max_episode_steps=5)
    envs.reset(seed=0)
    for _ in range(5):
        obs, _, term, trunc, info = envs.step(envs.action_space.sample())
    assert trunc.all() and not term.any()
    assert "final_obs" in info and not np.array_equal(info["final_obs"][0], obs[0])


def test_step_before_reset_is_a_clear_error():
    env = sim.make("halfcheetah")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(6, np.float32))

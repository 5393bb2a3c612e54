"""Our PyBullet tasks: bounded rewards, success, and what a zero action does."""

import numpy as np
import pytest

import sim


@pytest.mark.parametrize("name", ["panda-reach", "panda-push", "a1-walk", "bullet-cartpole"])
def test_rewards_are_bounded_shaping_terms(name):
    env = sim.make(name, seed=0)
    rewards = []
    for _ in range(20):
        _, r, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.append(r)
        if terminated or truncated:
            env.reset()
    assert all(0.0 <= r <= 1.0 for r in rewards) and max(rewards) > 0


def test_panda_reach_sparse_pays_one_at_the_goal_and_dense_decays_with_distance():
    for sparse in (True, False):
        env = sim.make("panda-reach-sparse" if sparse else "panda-reach", seed=0)
        base = env.unwrapped
        base.goal = base.ee()[0].copy()  # a goal where the gripper already is
        _, at_goal, *_ = env.step(np.zeros(3, np.float32))
        base.goal = base.ee()[0] + np.array([0.0, 0.0, 0.25])
        _, far, *_ = env.step(np.zeros(3, np.float32))
        assert at_goal == pytest.approx(1.0) and far < (0.0 + 1e-9 if sparse else 0.5)


def test_panda_moves_its_gripper_where_the_action_points():
    env = sim.make("panda-reach", seed=0)
    start = env.unwrapped.ee()[0]
    for _ in range(5):
        env.step(np.array([0.0, 0.0, 1.0], np.float32))  # up, 5 cm a step
    assert env.unwrapped.ee()[0][2] - start[2] > 0.1


def test_a1_stands_on_a_zero_action_and_falls_when_pushed_over():
    env = sim.make("a1-walk", seed=0)
    for _ in range(50):
        obs, reward, terminated, *_ = env.step(np.zeros(12, np.float32))
        assert not terminated
    assert obs[0] > 0.2 and 0.0 <= reward <= 0.6  # upright but not moving: move term ~0.5
    u = env.unwrapped
    u._p.resetBasePositionAndOrientation(u.robot, [0, 0, 0.3],
                                         u._p.getQuaternionFromEuler((np.pi / 2, 0, 0)))
    assert env.step(np.zeros(12, np.float32))[2]  # on its side: terminated


def test_bullet_cartpole_pole_falls_without_control():
    env = sim.make("bullet-cartpole", seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        *_, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        steps += 1
    assert terminated and steps < sim.spec("bullet-cartpole").max_episode_steps

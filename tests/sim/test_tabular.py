"""Tabular MDPs: the model is a proper MDP, the env samples exactly that model, and the models
read from Gymnasium's toy-text envs agree with the envs themselves."""

import gymnasium as gym
import numpy as np
import pytest

import sim
from sim import tabular

NAMES = tabular.names()
GYM = {"frozenlake": ("FrozenLake-v1", {"map_name": "4x4", "is_slippery": True}),
       "cliffwalking": ("CliffWalking-v1", {}), "taxi": ("Taxi-v4", {})}


def test_every_tabular_model_is_registered_with_its_tags():
    assert set(sim.names(tag="tabular")) == set(NAMES) >= {
        "gridworld-4x4", "gridworld-slippery", "frozenlake", "frozenlake-8x8", "cliffwalking",
        "taxi"}
    for name in NAMES:
        assert {"tabular", "state", "discrete"} <= set(sim.spec(name).tags)
        m, info = tabular.mdp(name), sim.spec(name).info
        assert info.obs_shape == (m.n_states,) and info.n_actions == m.n_actions


@pytest.mark.parametrize("name", NAMES)
def test_the_model_is_an_mdp(name):
    m = tabular.mdp(name)
    S, A = m.n_states, m.n_actions
    assert m.P.shape == m.R.shape == (S, A, S) and m.P.dtype == np.float64
    assert np.all(m.P >= 0) and np.allclose(m.P.sum(-1), 1.0, atol=1e-12)
    assert np.isclose(m.p0.sum(), 1.0) and not np.any(m.p0[m.terminal] > 0)
    assert m.features.shape[0] == S and len(m.feature_names) == m.features.shape[1]
    for t in np.flatnonzero(m.terminal):  # absorbing, reward 0
        assert np.all(m.P[t, :, t] == 1.0) and np.all(m.R[t] == 0.0)
    assert np.allclose(m.expected_reward, (m.P * m.R).sum(-1))
    with pytest.raises(ValueError):
        m.P[0, 0, 0] = 0.5  # read-only: a cached model cannot be changed by a caller


def test_sampled_transitions_follow_p_and_r():
    m = tabular.mdp("gridworld-slippery")
    env = sim.make("gridworld-slippery", seed=0)
    env.reset(seed=0)
    base = env.unwrapped
    s, a, n = 53, 2, 4000  # row 6, col 5, moving right: a wall above, free cells beside
    counts = np.zeros(m.n_states)
    for _ in range(n):
        base.s = s
        obs, reward, terminated, _, info = env.step(a)
        s2 = info["state"]
        assert obs.argmax() == s2 and obs.sum() == 1.0
        assert reward == m.R[s, a, s2] and terminated == m.terminal[s2]
        counts[s2] += 1
    assert set(np.flatnonzero(counts)) == set(np.flatnonzero(m.P[s, a]))
    np.testing.assert_allclose(counts / n, m.P[s, a], atol=0.03)
    assert m.P[s, a].max() == pytest.approx(0.8)  # slip 0.2: 0.1 to each perpendicular side


def test_grid_world_moves_walls_and_terminals():
    m = tabular.grid_world("t", ["S#G", "..H"])
    left, down, right, up = range(4)
    assert m.P[0, right, 0] == 1.0  # a wall: stay
    assert m.P[0, down, 3] == 1.0 and m.P[0, up, 0] == 1.0  # off the grid: stay
    assert m.P[4, right, 5] == 1.0 and m.R[4, right, 5] == -1.0 and m.terminal[5]
    assert m.P[5, left, 5] == 1.0 and m.P[2, left, 2] == 1.0  # terminal states absorb
    assert m.p0[0] == 1.0 and m.grid == ("S#G", "..H")
    np.testing.assert_array_equal(m.features[:, :3].argmax(1)[[2, 5, 1]], [0, 1, 2])


@pytest.mark.parametrize("bad, match", [
    ({"layout": ["S.G"], "slip": 1.5}, r"slip must be a probability in \[0, 1\], got 1.5"),
    ({"layout": ["S.G", "."]}, "equal lengths"),
    ({"layout": ["S.X"]}, "characters"),
    ({"layout": ["S.."]}, "goal"),
])
def test_bad_grid_layouts_are_one_line(bad, match):
    with pytest.raises(ValueError, match=match) as e:
        tabular.grid_world("bad", **bad)
    assert "\n" not in str(e.value)


def test_a_non_tabular_name_is_refused_naming_the_tabular_envs():
    with pytest.raises(ValueError, match="'cartpole' is not a tabular environment; tabular "
                                         "environments: gridworld-4x4"):
        tabular.mdp("cartpole")


@pytest.mark.parametrize("name", sorted(GYM))
def test_models_read_from_gymnasium_agree_with_its_table_and_its_steps(name):
    env_id, kwargs = GYM[name]
    ref = gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped
    m = tabular.mdp(name)
    np.testing.assert_array_equal(m.p0, ref.initial_state_distrib)
    live = tabular.reachable(m.P, m.p0, m.terminal) & ~m.terminal
    for s in np.flatnonzero(live):  # the table, entry by entry
        for a in range(m.n_actions):
            want = np.zeros(m.n_states)
            for p, s2, r, done in ref.P[s][a]:
                want[s2] += p
                assert m.R[s, a, s2] == r and m.terminal[s2] == done
            np.testing.assert_allclose(m.P[s, a], want, atol=1e-12)
    rng = np.random.default_rng(0)
    ref.reset(seed=0)
    for s in rng.choice(np.flatnonzero(live), 200):  # Gymnasium's own steps
        a = int(rng.integers(m.n_actions))
        ref.s = int(s)
        s2, r, done, _, _ = ref.step(a)
        assert m.P[s, a, s2] > 0 and m.R[s, a, s2] == r and m.terminal[s2] == done


def test_renders_mark_the_agent():
    env = sim.make("gridworld-4x4", render_mode="ansi")
    env.reset(seed=0)
    assert env.render() == "A..#\n.#..\n..#.\nH..G\n"
    frame = sim.make("gridworld-4x4", render_mode="rgb_array", seed=0)
    frame.reset(seed=0)
    image = frame.render()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert tuple(image[8, 8]) == (40, 90, 220) and tuple(image[56, 56]) == (60, 180, 75)
    with pytest.raises(ValueError, match="taxi renders as ansi"):
        sim.make("taxi", render_mode="rgb_array")
    with pytest.raises(ValueError, match="action 7 is not one of the 4 actions"):
        env.step(7)

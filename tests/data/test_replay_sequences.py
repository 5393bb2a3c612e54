"""Sequence sampling from the replay buffer (TD-MPC's sub-trajectories): shapes, contents, and
never across an episode end (termination or truncation) or the ring's write position."""

import numpy as np
import pytest
import torch

from data.replay import ReplayBuffer


def _fill(buf, steps, episode_len, *, truncate=False):
    """Env e at step k of its episode ep stores obs = 10000 e + 100 ep + k, action = reward =
    obs; every `episode_len` steps an episode ends (terminated, or truncated with a real final
    observation)."""
    N = buf.num_envs
    for t in range(steps):
        ep, k = divmod(t, episode_len)
        obs = np.array([10000 * e + 100 * ep + k for e in range(N)], np.float32)
        end = np.full(N, k == episode_len - 1)
        nxt = obs + 1  # the real next (or final) observation
        buf.add(obs[:, None], obs[:, None], obs, nxt[:, None],
                end & (not truncate), end & truncate)


@pytest.mark.parametrize("truncate", [False, True])
def test_sequences_never_cross_an_episode_end(truncate):
    torch.manual_seed(0)
    buf = ReplayBuffer(400, 2, (1,), (1,), discrete=False)
    _fill(buf, 60, episode_len=5, truncate=truncate)
    H = 3
    s = buf.sample_sequences(2000, H)
    assert s["obs"].shape == (H + 1, 2000, 1) and s["actions"].shape == (H, 2000, 1)
    assert s["rewards"].shape == s["terminated"].shape == (H, 2000)
    obs = s["obs"][..., 0]
    # consecutive observations of one episode: each step adds exactly 1
    assert torch.equal(obs[1:] - obs[:-1], torch.ones(H, 2000))
    assert torch.equal(s["actions"][..., 0], obs[:-1]) and torch.equal(s["rewards"], obs[:-1])
    steps_in_episode = obs[:-1] % 100
    assert steps_in_episode[0].max() <= 5 - H  # a window starts early enough to fit
    # only the last step can end the episode; the final observation is the real one
    assert not s["terminated"][:-1].any()
    ends = steps_in_episode[-1] == 4
    assert ends.any() and (~ends).any()
    assert torch.equal(s["terminated"][-1], ends & (not truncate))
    # every valid start is drawn (uniform over the 3 starts of each of 12 episodes x 2 envs)
    assert len(set(obs[0].tolist())) == 2 * 12 * (5 - H + 1)


def test_sequences_do_not_wrap_across_the_write_position():
    torch.manual_seed(0)
    buf = ReplayBuffer(10, 1, (1,), (1,), discrete=False)
    _fill(buf, 23, episode_len=100)  # one long episode; the ring of 10 rows has wrapped
    s = buf.sample_sequences(500, 4)
    first = s["obs"][0, :, 0]
    # the stored steps are 13..22: starts 13..19 fit, 20..22 would run into the oldest row
    assert set(first.tolist()) == set(range(13, 20))
    assert torch.equal(s["obs"][-1, :, 0], first + 4)
    starts = buf.sequence_starts(4)
    assert starts.sum() == 7


def test_a_window_ending_where_the_episode_ends_uses_the_stored_final_observation():
    buf = ReplayBuffer(8, 1, (1,), (1,), discrete=False)
    for t, final in enumerate([1.0, 2.0, 99.0]):
        buf.add([[float(t)]], [[0.0]], [0.0], [[final]], [t == 2], [False])
    s = buf.sample_sequences(4, 3)
    assert s["obs"][:, 0, 0].tolist() == [0.0, 1.0, 2.0, 99.0]
    assert s["terminated"][:, 0].tolist() == [False, False, True]


def test_sampling_sequences_leaves_transition_sampling_as_it_was():
    torch.manual_seed(0)
    buf = ReplayBuffer(100, 2, (1,), (1,), discrete=False)
    _fill(buf, 20, episode_len=5)
    torch.manual_seed(1)
    before = buf.sample(32)
    buf.sample_sequences(8, 2)
    torch.manual_seed(1)
    after = buf.sample(32)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_too_little_data_or_a_bad_horizon_is_refused():
    buf = ReplayBuffer(100, 1, (1,), (1,), discrete=False)
    with pytest.raises(ValueError, match="no 3-step sequence within one episode"):
        buf.sample_sequences(4, 3)
    _fill(buf, 4, episode_len=2)  # episodes of 2 steps hold no 3-step window
    with pytest.raises(ValueError, match="no 3-step sequence within one episode"):
        buf.sample_sequences(4, 3)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1, got 0"):
        buf.sample_sequences(4, 0)

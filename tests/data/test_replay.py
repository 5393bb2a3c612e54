"""Replay buffer: ring wrap-around, n-step returns against hand-computed values, truncation,
several envs, state round trip."""

import pytest
import torch

from data.replay import PrioritizedReplayBuffer, ReplayBuffer


def _buffer(capacity=8, num_envs=1, n_step=1, gamma=0.5) -> ReplayBuffer:
    return ReplayBuffer(capacity, num_envs, (1,), (), discrete=True, n_step=n_step, gamma=gamma)


def _add(buf: ReplayBuffer, t: float, *, reward=1.0, terminated=False, truncated=False,
         final: float | None = None) -> None:
    """Step t of every env: obs t (+ 100 e for env e), next obs t + 1 (or `final`)."""
    N = buf.num_envs
    envs = torch.arange(N, dtype=torch.float32)
    obs = (t + 100 * envs)[:, None]
    nxt = ((t + 1 if final is None else final) + 100 * envs)[:, None]
    buf.add(obs, torch.zeros(N, dtype=torch.long), torch.full((N,), reward), nxt,
            torch.full((N,), terminated), torch.full((N,), truncated))


def _all(buf: ReplayBuffer, n=4000) -> dict[int, dict[str, float]]:
    """Sample enough to see every start once; key: the start's obs."""
    torch.manual_seed(0)
    b = buf.sample(n)
    out = {}
    for i in range(n):
        out[int(b["obs"][i, 0])] = {k: float(v[i].reshape(-1)[0]) for k, v in b.items()}
    return out


def test_ring_wraps_around_and_overwrites_the_oldest_rows():
    buf = _buffer(capacity=4)
    for t in range(6):
        _add(buf, t)
    assert (buf.pos, buf.size, len(buf)) == (2, 4, 4)
    assert buf.obs[:, 0, 0].tolist() == [4.0, 5.0, 2.0, 3.0]
    assert set(_all(buf)) == {2, 3, 4, 5}  # 0 and 1 were overwritten


def test_one_step_batches_are_transitions_with_discount_gamma():
    buf = _buffer(gamma=0.9)
    for t in range(3):
        _add(buf, t, reward=t + 1.0)
    got = _all(buf)
    assert set(got) == {0, 1, 2}
    for t, row in got.items():
        assert row["next_obs"] == t + 1 and row["rewards"] == t + 1.0
        assert row["discount"] == pytest.approx(0.9)


def test_n_step_returns_hand_computed_and_cut_at_termination():
    # rewards 1, 2, 4, 8 at t = 0..3; t = 2 terminates; gamma = 0.5, n = 3
    buf = _buffer(capacity=16, n_step=3, gamma=0.5)
    for t, r in enumerate([1.0, 2.0, 4.0, 8.0, 16.0, 32.0]):
        _add(buf, t, reward=r, terminated=t == 2)
    got = _all(buf)
    assert set(got) == {0, 1, 2, 3}  # starts 4, 5 lack three written steps
    # t=0: 1 + 0.5*2 + 0.25*4 = 3, ends at the termination of t=2: no bootstrap
    assert got[0]["rewards"] == 3.0 and got[0]["terminated"] == 1.0
    assert got[0]["next_obs"] == 3.0 and got[0]["discount"] == 0.125
    # t=1: 2 + 0.5*4 = 4, two steps taken, terminated
    assert got[1]["rewards"] == 4.0 and got[1]["discount"] == 0.25 and got[1]["terminated"] == 1.0
    # t=2: the terminal step alone
    assert got[2]["rewards"] == 4.0 and got[2]["discount"] == 0.5 and got[2]["next_obs"] == 3.0
    # t=3: a fresh episode, 8 + 0.5*16 + 0.25*32 = 24, bootstraps from obs 6 with gamma^3
    assert got[3]["rewards"] == 24.0 and got[3]["terminated"] == 0.0
    assert got[3]["next_obs"] == 6.0 and got[3]["discount"] == 0.125


def test_n_step_stops_at_truncation_and_bootstraps_from_the_final_observation():
    buf = _buffer(capacity=16, n_step=3, gamma=0.5)
    _add(buf, 0, reward=1.0)
    _add(buf, 1, reward=2.0, truncated=True, final=42.0)  # time limit: final obs 42
    _add(buf, 7, reward=100.0)  # the next episode starts at obs 7
    _add(buf, 8, reward=100.0)
    got = _all(buf)
    assert got[0]["rewards"] == 2.0 and got[0]["next_obs"] == 42.0
    assert got[0]["terminated"] == 0.0 and got[0]["discount"] == 0.25


def test_several_envs_keep_their_own_successors():
    buf = _buffer(capacity=32, num_envs=2, n_step=2, gamma=1.0)
    for t in range(4):
        _add(buf, t, reward=1.0)
    got = _all(buf)
    assert set(got) == {0, 1, 2, 100, 101, 102}
    for start, row in got.items():
        assert row["next_obs"] == start + 2 and row["rewards"] == 2.0


def test_sampling_before_enough_steps_is_a_clear_error():
    buf = _buffer(n_step=3)
    _add(buf, 0)
    with pytest.raises(ValueError, match="n_step=3"):
        buf.sample(4)


def test_terminated_and_truncated_are_kept_apart():
    buf = _buffer()
    _add(buf, 0, terminated=True)
    _add(buf, 1, truncated=True)
    assert buf.terminated[:2, 0].tolist() == [True, False]
    assert buf.truncated[:2, 0].tolist() == [False, True]


def test_state_round_trip_gives_the_same_batches():
    a = _buffer(capacity=4)
    for t in range(6):
        _add(a, t, reward=float(t))
    b = _buffer(capacity=4)
    b.load_state_dict(a.state_dict())
    torch.manual_seed(3)
    x = a.sample(16)
    torch.manual_seed(3)
    y = b.sample(16)
    assert all(torch.equal(x[k], y[k]) for k in x)
    with pytest.raises(ValueError, match="rows"):
        _buffer(capacity=8).load_state_dict(a.state_dict())


# -- prioritized replay (Schaul et al. 2016) ---------------------------------------------------
def _prioritized(capacity=8, num_envs=1, n_step=1, gamma=0.5, alpha=0.5, eps=1e-6):
    return PrioritizedReplayBuffer(capacity, num_envs, (1,), (), discrete=True, n_step=n_step,
                                   gamma=gamma, alpha=alpha, eps=eps)


def test_prioritized_new_transitions_get_the_largest_priority_so_far():
    buf = _prioritized(alpha=0.5)
    for t in range(2):
        _add(buf, t)
    assert buf.tree.priorities()[:2].tolist() == [1.0, 1.0]  # (max 1)^alpha before any update
    buf.update_priorities(torch.tensor([0, 1]), torch.tensor([-4.0, 0.0]))  # |delta| = 4, 0
    assert buf.tree.priorities()[:2].tolist() == pytest.approx([(4 + 1e-6) ** 0.5, 1e-3])
    _add(buf, 2)
    assert buf.tree.priorities()[2].item() == pytest.approx((4 + 1e-6) ** 0.5)
    assert buf.tree.total().item() == pytest.approx(2 * 4.0 ** 0.5 + 1e-3)


def test_prioritized_importance_weights_against_hand_values():
    buf = _prioritized(alpha=1.0, eps=1e-6)
    for t in range(4):
        _add(buf, t)
    buf.update_priorities(torch.arange(4), torch.tensor([1.0, 2.0, 3.0, 4.0]) - 1e-6)
    torch.manual_seed(0)
    b = buf.sample(400, beta=0.5)
    # P = p / 10; w = (N P)^-beta / max w, max w at the smallest P = 0.1 sampled
    P = torch.tensor([0.1, 0.2, 0.3, 0.4])
    w = (4 * P) ** -0.5 / (4 * 0.1) ** -0.5
    start = b["obs"][:, 0].long()
    assert torch.equal(b["indices"], start)
    assert torch.allclose(b["weights"], w[start].float(), atol=1e-6)
    assert torch.bincount(start, minlength=4).tolist() == [40, 80, 120, 160]  # stratified
    b1 = buf.sample(400, beta=1.0)  # full correction: w = (N P)^-1 / max
    assert torch.allclose(b1["weights"], (0.1 / P)[b1["indices"]].float(), atol=1e-6)


def test_prioritized_n_step_windows_are_drawn_only_once_fully_written():
    buf = _prioritized(capacity=16, n_step=3, gamma=0.5)
    uniform = _buffer(capacity=16, n_step=3, gamma=0.5)
    for t, r in enumerate([1.0, 2.0, 4.0, 8.0, 16.0, 32.0]):
        for b in (buf, uniform):
            _add(b, t, reward=r, terminated=t == 2)
    assert (buf.tree.priorities()[:6] > 0).tolist() == [True] * 4 + [False] * 2
    got, want = _all(buf), _all(uniform)
    assert set(got) == set(want) == {0, 1, 2, 3}
    for t in want:  # the same n-step transitions as uniform sampling, plus the weights
        assert {k: v for k, v in got[t].items() if k not in ("weights", "indices")} == want[t]


def test_prioritized_ring_overwrite_zeroes_the_rows_not_yet_complete():
    buf = _prioritized(capacity=4, num_envs=2, n_step=2)  # 2 rows of 2 envs
    for t in range(3):
        _add(buf, t)
    # rows: 0 holds t=2 (its window incomplete: priority 0), 1 holds t=1 (complete)
    assert buf.tree.priorities().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert set(_all(buf)) == {1, 101}


def test_prioritized_state_round_trip_gives_the_same_tree_and_batches():
    a = _prioritized(capacity=6)
    for t in range(9):
        _add(a, t)
        a.update_priorities(torch.tensor([t % 6]), torch.tensor([float(t)]))
    b = _prioritized(capacity=6)
    b.load_state_dict(a.state_dict())
    assert all(map(torch.equal, a.tree.levels, b.tree.levels))
    assert torch.equal(a.max_priority, b.max_priority)
    assert a.max_priority.item() == 8.0 + 1e-6  # the largest |delta| (8) + eps
    torch.manual_seed(3)
    x = a.sample(16, beta=0.4)
    torch.manual_seed(3)
    y = b.sample(16, beta=0.4)
    assert all(torch.equal(x[k], y[k]) for k in x)


def test_prioritized_refuses_bad_alpha_and_eps():
    with pytest.raises(ValueError, match="alpha >= 0 and eps > 0, got alpha=-1"):
        _prioritized(alpha=-1.0)
    with pytest.raises(ValueError, match="eps=0"):
        _prioritized(eps=0.0)

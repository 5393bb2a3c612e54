import torch

from data.returns import gae


def gae_reference(rewards, values, next_values, terminated, ended, gamma, lam):
    """Textbook double loop: A_t = sum_k (gamma lam)^k delta_{t+k} within the episode."""
    T, N = rewards.shape
    adv = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):
            total, discount = 0.0, 1.0
            for k in range(t, T):
                delta = (rewards[k, n] + gamma * (1 - float(terminated[k, n])) * next_values[k, n]
                         - values[k, n])
                total += discount * delta
                if ended[k, n]:
                    break
                discount *= gamma * lam
            adv[t, n] = total
    return adv


def test_gae_hand_computed_two_steps():
    # one env, r = [1, 2], V = [0.5, 1.0], V(s_2) = 3, no episode end, gamma 0.9, lam 0.8
    r = torch.tensor([[1.0], [2.0]])
    v = torch.tensor([[0.5], [1.0]])
    nv = torch.tensor([[1.0], [3.0]])
    z = torch.zeros(2, 1, dtype=torch.bool)
    adv, ret = gae(r, v, nv, z, z, gamma=0.9, lam=0.8)
    d1 = 2.0 + 0.9 * 3.0 - 1.0  # 3.7
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    assert torch.allclose(adv[:, 0], torch.tensor([d0 + 0.72 * d1, d1]))
    assert torch.allclose(ret, adv + v)


def test_gae_matches_reference_with_terminations_and_truncations():
    g = torch.Generator().manual_seed(0)
    T, N = 17, 5
    r = torch.randn(T, N, generator=g, dtype=torch.float64)
    v = torch.randn(T, N, generator=g, dtype=torch.float64)
    nv = torch.randn(T, N, generator=g, dtype=torch.float64)
    term = torch.rand(T, N, generator=g) < 0.1
    trunc = (torch.rand(T, N, generator=g) < 0.1) & ~term
    ended = term | trunc
    adv, _ = gae(r, v, nv, term, ended, gamma=0.99, lam=0.95)
    ref = gae_reference(r, v, nv, term, ended, 0.99, 0.95)
    assert torch.allclose(adv, ref, atol=1e-10)


def test_truncation_bootstraps_but_termination_does_not():
    r = torch.ones(1, 2)
    v = torch.zeros(1, 2)
    nv = torch.full((1, 2), 10.0)
    term = torch.tensor([[True, False]])
    ended = torch.tensor([[True, True]])
    adv, _ = gae(r, v, nv, term, ended, gamma=0.5, lam=1.0)
    assert adv.tolist() == [[1.0, 6.0]]

"""The adversarial-imitation networks: GAIL's D(s, a) and AIRL's g(s), h(s)."""

import torch

from models.discriminator import AIRLReward, Discriminator, encode_action


def test_discrete_actions_enter_one_hot_and_continuous_ones_clipped():
    assert torch.equal(encode_action(torch.tensor([1, 0]), 3, True),
                       torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    assert torch.equal(encode_action(torch.tensor([[2.5], [-0.5]]), 1, False),
                       torch.tensor([[1.0], [-0.5]]))


def test_discriminator_normalizes_with_the_fitted_expert_statistics():
    torch.manual_seed(0)
    d = Discriminator(3, 1, discrete=False, hidden=(8,))
    expert = torch.randn(500, 3) * torch.tensor([1.0, 5.0, 0.1]) + 7.0
    d.obs_norm.fit(expert)
    x = d.inputs(expert, torch.zeros(500, 1))
    assert x.shape == (500, 5)  # [s, a, 0]: the last input marks the absorbing state
    assert torch.equal(x[:, 4], torch.zeros(500))
    assert torch.allclose(x[:, :3].mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x[:, :3].std(0, unbiased=False), torch.ones(3), atol=1e-4)
    assert d(expert[:7], torch.zeros(7, 1)).shape == (7,)
    # a policy sample beyond the action box is seen as the env executes it, clipped
    assert torch.equal(d(expert[:2], torch.full((2, 1), 3.0)), d(expert[:2], torch.ones(2, 1)))


def test_airl_reward_is_state_only_with_a_separate_potential():
    torch.manual_seed(0)
    r = AIRLReward(4, hidden=(8,))
    obs = torch.randn(5, 4)
    assert r.g(obs).shape == r.h(obs).shape == (5,)
    assert torch.equal(r(obs), r.g(obs))
    g0, h0 = r.g(obs), r.h(obs)
    with torch.no_grad():
        r.h_net[-1].bias.add_(1.0)  # h moves, g does not
    assert torch.equal(r.g(obs), g0) and torch.allclose(r.h(obs), h0 + 1.0)
    assert set(n.split(".")[0] for n, _ in r.named_parameters()) == {"g_net", "h_net"}

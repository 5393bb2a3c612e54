"""SAC: losses against hand-computed values, the tanh log-prob correction, gradient isolation,
Polyak targets."""

import math

import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

import sim
from agents.model_free.sac import (
    SAC,
    SACConfig,
    actor_loss,
    critic_loss,
    preset,
    soft_td_target,
    temperature_loss,
)
from models.actors import tanh_gaussian_log_prob
from tests.agents.model_free.batches import random_batch


def test_soft_td_target_hand_computed():
    rewards, terminated = torch.tensor([1.0, -2.0]), torch.tensor([False, True])
    next_q = torch.tensor([[3.0, 5.0], [4.0, 1.0]])  # [E=2, B=2]: min 3 and 1
    next_logp = torch.tensor([-1.0, 0.5])
    y = soft_td_target(rewards, terminated, torch.tensor([0.9, 0.9]), next_q, next_logp, 0.2)
    # y_0 = 1 + 0.9 * (3 - 0.2 * -1) = 3.88; y_1 terminated: -2
    assert y.tolist() == pytest.approx([3.88, -2.0])


def test_critic_actor_and_temperature_losses_hand_computed():
    q = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    y = torch.tensor([2.0, 2.0])
    # 1/2 * (mean(1, 0) + mean(1, 4)) = 1/2 * (0.5 + 2.5)
    assert critic_loss(q, y).item() == pytest.approx(1.5)
    logp = torch.tensor([-1.0, 1.0])
    # mean(0.5 * -1 - min(1, 3), 0.5 * 1 - min(2, 0)) = mean(-1.5, 0.5)
    assert actor_loss(logp, q, 0.5).item() == pytest.approx(-0.5)
    log_alpha = torch.tensor(math.log(2.0), requires_grad=True)
    loss = temperature_loss(log_alpha, logp, target_entropy=-1.0)
    # -(log 2 * mean(-2, 0)) = log 2
    assert loss.item() == pytest.approx(math.log(2.0))
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(1.0)  # -mean(logp + H) = 1: alpha must rise


def test_tanh_log_prob_matches_torch_transformed_distribution():
    # float64: torch inverts tanh with atanh, which loses float32 precision near +-1
    g = torch.Generator().manual_seed(0)
    f64 = dict(generator=g, dtype=torch.float64)
    mean, log_std = torch.randn(64, 3, **f64), torch.randn(64, 3, **f64) * 0.5
    u = mean + log_std.exp() * torch.randn(64, 3, **f64)
    ours = tanh_gaussian_log_prob(u, mean, log_std)
    ref = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    expected = ref.log_prob(torch.tanh(u)).sum(-1)
    assert torch.allclose(ours, expected, atol=1e-6)
    # and it differs from the Gaussian's own log-prob by exactly the Jacobian term
    gauss = Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    assert torch.allclose(gauss - ours, torch.log(1 - torch.tanh(u) ** 2).sum(-1), atol=1e-6)


def test_tanh_log_prob_stays_finite_where_tanh_saturates():
    u = torch.tensor([[12.0], [-15.0]])
    lp = tanh_gaussian_log_prob(u, torch.zeros(2, 1), torch.zeros(2, 1))
    assert torch.isfinite(lp).all()
    # log(1 - tanh(12)^2) = log(sech^2 12) ~= 2 log 2 - 24; naive float32 gives log(0) = -inf
    assert lp[0].item() == pytest.approx(-0.5 * 144 - 0.5 * math.log(2 * math.pi)
                                         - (2 * math.log(2) - 24), rel=1e-4)


def test_each_loss_reaches_only_its_own_parameters():
    info = sim.spec("pendulum").info
    agent = SAC(SACConfig(hidden=(32, 32)), info, torch.device("cpu"))
    actor, critic = list(agent.actor.parameters()), list(agent.critic.parameters())

    def grads_after(name):
        for p in [*actor, *critic, agent.log_alpha]:
            p.grad = None
        agent.losses(random_batch(info))[name].backward()
        return ([p.grad is not None and p.grad.abs().sum() > 0 for p in actor],
                [p.grad is not None for p in critic], agent.log_alpha.grad is not None)

    a, c, alpha = grads_after("actor_loss")
    assert all(a) and not any(c) and not alpha  # the actor step moves no critic weight
    a, c, alpha = grads_after("critic_loss")
    assert not any(a) and all(c) and not alpha
    a, c, alpha = grads_after("alpha_loss")
    assert not any(a) and not any(c) and alpha  # the temperature step touches only log alpha


def test_update_moves_targets_by_polyak_averaging():
    info = sim.spec("pendulum").info
    agent = SAC(SACConfig(hidden=(32, 32), tau=0.1), info, torch.device("cpu"))
    before = [p.clone() for p in agent.critic_target.parameters()]
    terms = agent.update(random_batch(info))
    assert {"critic_loss", "actor_loss", "alpha_loss", "alpha"} <= set(terms)
    assert all(t.requires_grad is False for t in terms.values())
    for old, tgt, new in zip(before, agent.critic_target.parameters(), agent.critic.parameters(),
                             strict=True):
        assert torch.allclose(tgt, 0.9 * old + 0.1 * new, atol=1e-6)
    assert agent.log_alpha.item() != 0.0  # the temperature moved


def test_twin_critics_are_one_batched_ensemble_and_deterministic_action_is_tanh_mean():
    info = sim.spec("pendulum").info
    agent = SAC(preset("pendulum"), info, torch.device("cpu"))
    q = agent.critic(torch.zeros(5, 3), torch.zeros(5, 1))
    assert q.shape == (2, 5)
    obs = torch.randn(7, 3)
    mean, _ = agent.actor.mean_log_std(obs)
    assert torch.equal(agent.act(obs, deterministic=True), torch.tanh(mean))
    a = agent.act(obs)
    assert a.shape == (7, 1) and a.abs().max() <= 1.0


def test_fixed_temperature_leaves_alpha_alone():
    info = sim.spec("pendulum").info
    agent = SAC(SACConfig(hidden=(16,), autotune=False, init_alpha=0.2), info, torch.device("cpu"))
    terms = agent.update(random_batch(info))
    assert "alpha_loss" not in terms and agent.log_alpha.exp().item() == pytest.approx(0.2)

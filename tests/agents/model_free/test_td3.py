"""TD3 and DDPG: target smoothing and clipped double-Q targets by hand, delayed actor and target
updates, gradient isolation, DDPG as a preset."""

import pytest
import torch

import sim
from agents.model_free.td3 import (
    TD3,
    TD3Config,
    actor_loss,
    critic_loss,
    ddpg_preset,
    preset,
    target_policy_smoothing,
    td_target,
)
from tests.agents.model_free.batches import random_batch


def test_target_policy_smoothing_clips_the_noise_then_the_action():
    mu = torch.tensor([[0.0], [0.9], [-0.5]])
    eps = torch.tensor([[1.0], [1.0], [-10.0]])
    a = target_policy_smoothing(mu, eps, sigma=0.2, clip=0.5)
    # 0 + 0.2 = 0.2; 0.9 + 0.2 = 1.1 -> 1.0; noise -2.0 clipped to -0.5: -0.5 - 0.5 = -1.0
    assert a.squeeze(1).tolist() == pytest.approx([0.2, 1.0, -1.0])


def test_td_target_takes_the_minimum_of_the_critics_and_stops_at_termination():
    next_q = torch.tensor([[2.0, 7.0, 1.0], [3.0, 5.0, 9.0]])
    y = td_target(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([False, False, True]),
                  torch.tensor([0.5, 0.5, 0.5]), next_q)
    assert y.tolist() == pytest.approx([1.0 + 0.5 * 2.0, 1.0 + 0.5 * 5.0, 1.0])


def test_critic_and_actor_losses_hand_computed():
    q = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    assert critic_loss(q, torch.tensor([2.0, 2.0])).item() == pytest.approx(1.0 + 0.0)
    assert actor_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_actor_and_targets_move_only_every_policy_delay_steps():
    info = sim.spec("pendulum").info
    agent = TD3(TD3Config(hidden=(32, 32), policy_delay=2), info, torch.device("cpu"))
    actor0 = [p.clone() for p in agent.actor.parameters()]
    target0 = [p.clone() for p in agent.critic_target.parameters()]
    critic0 = [p.clone() for p in agent.critic.parameters()]
    agent.update(random_batch(info, seed=1))
    assert all(torch.equal(a, b) for a, b in zip(actor0, agent.actor.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in
               zip(target0, agent.critic_target.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in
                   zip(critic0, agent.critic.parameters(), strict=True))
    agent.update(random_batch(info, seed=2))
    assert not all(torch.equal(a, b) for a, b in
                   zip(actor0, agent.actor.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in
                   zip(target0, agent.critic_target.parameters(), strict=True))


def test_actor_loss_moves_no_critic_weight():
    info = sim.spec("pendulum").info
    agent = TD3(TD3Config(hidden=(32, 32)), info, torch.device("cpu"))
    agent.losses(random_batch(info))["actor_loss"].backward()
    assert all(p.grad is None for p in agent.critic.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.actor.parameters())
    agent.actor.zero_grad(set_to_none=True)
    agent.losses(random_batch(info), with_actor=False)["critic_loss"].backward()
    assert all(p.grad is None for p in agent.actor.parameters())


def test_ddpg_is_td3_with_one_critic_no_delay_no_smoothing():
    cfg = ddpg_preset("pendulum")
    assert (cfg.n_critics, cfg.policy_delay, cfg.target_policy_noise) == (1, 1, 0.0)
    assert cfg.lr == preset("pendulum").lr
    info = sim.spec("pendulum").info
    agent = TD3(cfg, info, torch.device("cpu"))
    actor0 = [p.clone() for p in agent.actor.parameters()]
    agent.update(random_batch(info))
    assert agent.critic(torch.zeros(2, 3), torch.zeros(2, 1)).shape == (1, 2)
    assert not all(torch.equal(a, b) for a, b in zip(actor0, agent.actor.parameters(), strict=True))


def test_exploration_noise_stays_in_bounds():
    info = sim.spec("pendulum").info
    agent = TD3(TD3Config(hidden=(16,), exploration_noise=5.0), info, torch.device("cpu"))
    obs = torch.randn(64, 3)
    a = agent.act(obs)
    assert a.abs().max() <= 1.0 and not torch.equal(a, agent.act(obs, deterministic=True))

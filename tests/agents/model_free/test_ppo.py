import math

import pytest
import torch

import sim
from agents.model_free.ppo import (
    PPO,
    PPOConfig,
    approx_kl,
    clipped_surrogate_loss,
    preset,
    value_loss,
)


def test_clipped_surrogate_hand_computed():
    # ratios e^0.5 = 1.6487 (clipped to 1.2 for A > 0), e^-0.5 = 0.6065 (clip 0.8 for A < 0)
    logp = torch.tensor([0.5, -0.5, 0.1])
    old = torch.zeros(3)
    adv = torch.tensor([1.0, -2.0, 3.0])
    loss = clipped_surrogate_loss(logp, old, adv, clip_coef=0.2)
    r = [math.exp(0.5), math.exp(-0.5), math.exp(0.1)]
    # the third ratio is inside the clip range
    terms = [min(r[0] * 1.0, 1.2 * 1.0), min(r[1] * -2.0, 0.8 * -2.0), r[2] * 3.0]
    assert loss.item() == pytest.approx(-sum(terms) / 3, rel=1e-6)


def test_value_loss_hand_computed_with_and_without_clip():
    v, v_old, ret = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]), torch.tensor([3.0, 1.0])
    assert value_loss(v, v_old, ret, None).item() == pytest.approx(0.5 * (1.0 + 1.0) / 2)
    # clipped: v_old + clamp(1, -0.5, 0.5) = 1.5 -> (1.5 - 3)^2 = 2.25 > 1 -> pessimistic max
    assert value_loss(v, v_old, ret, 0.5).item() == pytest.approx(0.5 * (2.25 + 1.0) / 2)


def test_approx_kl_is_zero_at_equal_policies_and_positive_otherwise():
    x = torch.randn(100)
    assert approx_kl(x, x).item() == 0.0
    assert approx_kl(x + 0.1 * torch.randn(100), x).item() > 0.0


@pytest.mark.parametrize("env", ["cartpole", "pendulum"])
def test_policy_loss_moves_no_critic_weight_and_value_loss_no_actor_weight(env):
    agent = PPO(PPOConfig(), sim.spec(env).info, torch.device("cpu"))
    obs = torch.randn(16, sim.spec(env).info.obs_shape[0])
    d = agent.net.dist(obs)
    a = d.sample()
    clipped_surrogate_loss(d.log_prob(a), d.log_prob(a).detach() + 0.1, torch.randn(16), 0.2
                           ).backward()
    assert all(p.grad is None for p in agent.net.critic.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.net.actor.parameters())
    agent.net.zero_grad(set_to_none=True)
    value_loss(agent.net.value(obs), torch.zeros(16), torch.ones(16), None).backward()
    assert all(p.grad is None for p in agent.net.actor.parameters())


def test_config_refuses_batch_not_divisible_by_minibatches():
    with pytest.raises(ValueError, match="divisible"):
        PPOConfig(num_envs=3, num_steps=5, num_minibatches=4)


def test_deterministic_actions_are_in_env_units_and_export_scales_to_robot_units():
    info = sim.spec("pendulum").info
    agent = PPO(preset("pendulum"), info, torch.device("cpu"))
    with torch.no_grad():
        agent.net.actor[-1].bias.fill_(5.0)  # mean far past the bound
    obs = torch.randn(4, 3)
    assert torch.all(agent.act(obs, deterministic=True) == 1.0)
    assert torch.allclose(agent.inference_module()(obs), torch.full((4, 1), 2.0))

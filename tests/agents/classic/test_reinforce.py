"""REINFORCE: the estimator against hand-computed gradients on a one-step bandit, reward-to-go
with cut tails, baselines, the CLI, resume, and a learning test.

Learning test: cart-pole from the preset (kinema train reinforce --env cartpole), evaluated every
4,000 env steps (10 deterministic episodes), to the first evaluation >= 475. Steps to the
target on seeds 0..4: 16,000 12,000 12,000 12,000 16,000 (median 12,000); the budget is
28,000 (2.3x).
"""

from __future__ import annotations

import json

import pytest
import torch
from torch.distributions import Categorical

import sim
from agents.classic.reinforce import (
    REINFORCE,
    REINFORCEConfig,
    policy_gradient_loss,
    reward_to_go,
)
from agents.runs.train import TrainConfig, train
from kinema.cli import main
from tests.agents.loops.crash import assert_resumes_bit_exactly

CARTPOLE = sim.spec("cartpole").info
CARTPOLE_STEPS = 28_000


def bandit_agent(baseline: str, rewards: list[float], actions: list[int]) -> REINFORCE:
    """A one-step bandit in cart-pole's action space: every step is one whole episode from the
    same state, so the reward-to-go is the reward."""
    n = len(rewards)
    torch.manual_seed(0)
    agent = REINFORCE(REINFORCEConfig(num_envs=n, num_steps=1, baseline=baseline,
                                      norm_obs=False, hidden=(8,)), CARTPOLE, torch.device("cpu"))
    b = agent.buffer
    b.obs.zero_()
    b.actions[0] = torch.tensor(actions)
    b.rewards[0] = torch.tensor(rewards)
    b.terminated.fill_(True)
    b.ended.fill_(True)
    b.values[0] = agent.value(b.obs[0])
    return agent


@pytest.mark.parametrize("baseline", ["none", "average"])
def test_the_policy_gradient_is_the_hand_computed_one_on_a_bandit(baseline, monkeypatch):
    rewards, actions = [1.0, 0.0, 2.0, 3.0, -1.0, 0.5], [0, 1, 1, 0, 1, 1]
    agent = bandit_agent(baseline, rewards, actions)
    monkeypatch.setattr(agent.opt, "step", lambda *a, **k: None)  # keep the gradient to read it
    agent.learn()
    # logits = W h(s) + b at the one state: dL/db = -(1/N) sum_i (onehot(a_i) - pi) (r_i - b)
    with torch.no_grad():
        pi = torch.softmax(agent.net.actor(torch.zeros(1, 4))[0], -1)
    r = torch.tensor(rewards)
    b = r.mean() if baseline == "average" else 0.0
    onehot = torch.nn.functional.one_hot(torch.tensor(actions), 2).float()
    want = -((onehot - pi) * (r - b)[:, None]).mean(0)
    torch.testing.assert_close(agent.net.actor[-1].bias.grad, want, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in agent.net.critic.parameters())


def test_the_learned_baseline_is_subtracted_from_the_reward_to_go():
    rewards = [1.0, 0.0, 2.0, 3.0]
    agent = bandit_agent("learned", rewards, [0, 1, 0, 1])
    with torch.no_grad():
        v0 = agent.net.value(torch.zeros(1, 4))[0]
    adv, returns = agent.advantages()
    torch.testing.assert_close(returns[0], torch.tensor(rewards))
    torch.testing.assert_close(adv[0], torch.tensor(rewards) - v0)


def test_the_estimator_is_unbiased_and_the_average_baseline_lowers_its_variance():
    # grad_theta E[r] = pi_k (r_k - sum_j pi_j r_j) for softmax logits theta
    theta = torch.tensor([0.3, -0.2, 0.5], requires_grad=True)
    r_arm = torch.tensor([11.0, 12.0, 9.0])
    torch.manual_seed(0)
    n = 50_000
    a = Categorical(logits=theta.detach()).sample((n,))
    logp = Categorical(logits=theta).log_prob(a)
    (grad,) = torch.autograd.grad(policy_gradient_loss(logp, r_arm[a]), theta)
    pi = torch.softmax(theta.detach(), -1)
    exact = pi * (r_arm - (pi * r_arm).sum())
    torch.testing.assert_close(-grad, exact, atol=0.15, rtol=0.0)
    # per-sample estimates: grad log pi(a) * (r - b)
    score = torch.nn.functional.one_hot(a, 3).float() - pi
    no_baseline = score * r_arm[a][:, None]
    average = score * (r_arm[a] - r_arm[a].mean())[:, None]
    torch.testing.assert_close(average.mean(0), exact, atol=0.02, rtol=0.0)
    assert (average.var(0) < 0.05 * no_baseline.var(0)).all()


def test_reward_to_go_cuts_at_episode_ends_and_bootstraps_a_cut_tail():
    agent = REINFORCE(REINFORCEConfig(num_envs=1, num_steps=4), CARTPOLE, torch.device("cpu"))
    b = agent.buffer
    b.rewards[:, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    b.values.fill_(1.0)
    b.next_values[:, 0] = torch.tensor([1.0, 6.0, 1.0, 8.0])  # V(s_4) = 8 after the rollout
    b.terminated[1, 0] = b.ended[1, 0] = True
    adv, ret = reward_to_go(b, gamma=0.5)
    # t=3: 4 + .5*8; t=2: 3 + .5*8; t=1: terminated, 2; t=0: 1 + .5*2
    torch.testing.assert_close(ret[:, 0], torch.tensor([2.0, 2.0, 7.0, 8.0]))
    torch.testing.assert_close(adv, ret - 1.0)
    b.terminated[1, 0] = False  # truncated by a time limit: bootstrapped from V(final obs) = 6
    _, ret = reward_to_go(b, gamma=0.5)
    torch.testing.assert_close(ret[:, 0], torch.tensor([3.5, 5.0, 7.0, 8.0]))


def test_no_baseline_values_nothing_and_never_moves_the_value_net():
    agent = REINFORCE(REINFORCEConfig(baseline="none"), CARTPOLE, torch.device("cpu"))
    obs = torch.randn(16, 4)
    assert torch.equal(agent.value(obs), torch.zeros(16))
    critic = [p.clone() for p in agent.net.critic.parameters()]
    actor = [p.clone() for p in agent.net.actor.parameters()]
    agent.update({"obs": obs, "actions": agent.act(obs), "advantages": torch.randn(16),
                  "returns": torch.randn(16)})
    same = [torch.equal(a, b) for a, b in zip(critic + actor, [*agent.net.critic.parameters(),
                                                                *agent.net.actor.parameters()],
                                               strict=True)]
    assert all(same[:len(critic)]) and not all(same[len(critic):])


def test_the_learned_baseline_fits_the_returns():
    torch.manual_seed(0)
    agent = REINFORCE(REINFORCEConfig(baseline="learned", vf_iters=30, vf_lr=1e-2), CARTPOLE,
                      torch.device("cpu"))
    obs = torch.randn(64, 4)
    returns = 5.0 + obs[:, 0]
    first = ((agent.net.value(obs) - returns).square().mean()).item()
    terms = agent.update({"obs": obs, "actions": agent.act(obs), "advantages": torch.randn(64),
                          "returns": returns})
    assert terms["value_loss"].item() < 0.5 * first


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("baseline", "mean", "baseline must be one of none, average, learned, got 'mean'"),
    ("vf_iters", 0, "vf_iters must be an integer >= 1, got 0"),
    ("gamma", 1.5, "gamma must be a number in [0, 1], got 1.5"),
])
def test_bad_config_is_one_line_naming_the_value(field, value, needle):
    with pytest.raises(ValueError) as e:
        REINFORCEConfig(**{field: value})
    assert str(e.value) == needle


def test_the_cli_trains_with_a_baseline_and_refuses_an_unknown_one(tmp_path, capsys):
    args = ["train", "reinforce", "--env", "cartpole", "--runs-dir", str(tmp_path),
            "--no-progress", "--steps", "2000", "--eval-episodes", "1", "--num-steps", "250"]
    assert main([*args, "--baseline", "bogus"]) == 2
    assert "baseline must be one of none, average, learned" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    assert main([*args, "--baseline", "average", "--json"]) == 0
    (run,) = tmp_path.iterdir()
    saved = json.loads((run / "config.json").read_text())["config"]["algo_config"]
    assert saved["baseline"] == "average"


def test_resume_is_bit_exact(tmp_path):
    n = 2000  # one rollout of the preset
    base = dict(algo="reinforce", env="cartpole", steps=2 * n, eval_every=n, checkpoint_every=n,
                eval_episodes=1, seed=3)
    assert_resumes_bit_exactly(tmp_path, base, crash_at=n)


@pytest.mark.parametrize("seed", [0, 1])
def test_reinforce_solves_cartpole_within_budget(tmp_path, seed):
    cfg = TrainConfig(algo="reinforce", env="cartpole", seed=seed, steps=CARTPOLE_STEPS,
                      eval_every=4000, target_return=475, runs_dir=str(tmp_path))
    result = train(cfg)
    assert result.loop.solved_at is not None, (
        f"REINFORCE did not reach 475 within {CARTPOLE_STEPS} steps (seed {seed}); last "
        f"evaluation {result.loop.last_eval}")

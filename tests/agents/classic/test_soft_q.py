"""Soft Q-learning: the soft Bellman target against hand values and its alpha -> 0 limit (DQN's
max target), the Boltzmann policy, bad input, and learning cart-pole within a step budget."""

import json
import math

import pytest
import torch

import sim
from agents.classic.soft_q import (
    SoftQ,
    SoftQConfig,
    boltzmann_policy,
    policy_entropy,
    soft_q_target,
    soft_value,
)
from agents.model_free.dqn import q_target
from agents.runs.train import TrainConfig, train
from kinema.cli import main


def test_soft_bellman_target_against_hand_values():
    next_q = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    r, term, disc = torch.tensor([1.0, 0.5]), torch.tensor([False, False]), torch.tensor([0.9, 0.9])
    # alpha 1: V = log(e^0 + e^0) = log 2; alpha 0.5: V = 0.5 log(e^2 + e^4)
    assert soft_value(next_q[:1], 1.0).item() == pytest.approx(math.log(2.0))
    assert soft_value(next_q[1:], 0.5).item() == pytest.approx(0.5 * math.log(math.e ** 2
                                                                              + math.e ** 4))
    y = soft_q_target(r, term, disc, next_q, 1.0)
    assert y.tolist() == pytest.approx([1.0 + 0.9 * math.log(2.0),
                                        0.5 + 0.9 * math.log(math.e + math.e ** 2)])
    # termination cuts the bootstrap; an n-step discount gamma^k scales it
    y = soft_q_target(r, torch.tensor([True, False]), torch.tensor([0.9, 0.25]), next_q, 1.0)
    assert y.tolist() == pytest.approx([1.0, 0.5 + 0.25 * math.log(math.e + math.e ** 2)])
    # the soft value is above the max by at most alpha log |A| (the entropy of the policy)
    q = torch.randn(64, 3) * 10
    v, q_max = soft_value(q, 0.3), q.max(-1).values
    assert bool((v >= q_max - 1e-5).all() and (v <= q_max + 0.3 * math.log(3) + 1e-5).all())


def test_as_alpha_goes_to_zero_the_soft_target_is_dqns_max_target():
    torch.manual_seed(0)
    next_q = torch.randn(32, 4) * 50  # large Q values: the logsumexp must stay stable
    r, term = torch.randn(32), torch.rand(32) < 0.2
    disc = torch.full((32,), 0.99)
    dqn = q_target(r, term, disc, next_q, None)
    for alpha in (1e-2, 1e-4):
        soft = soft_q_target(r, term, disc, next_q, alpha)
        assert torch.isfinite(soft).all()
        assert torch.allclose(soft, dqn, atol=0.99 * alpha * math.log(4) + 1e-4)
    assert not torch.allclose(soft_q_target(r, term, disc, next_q, 10.0), dqn, atol=1.0)


def test_boltzmann_policy_is_the_softmax_at_temperature_alpha_and_act_samples_it():
    q = torch.tensor([[1.0, 2.0, 3.0]])
    pi = boltzmann_policy(q, 0.5)
    e = torch.tensor([math.e ** 2, math.e ** 4, math.e ** 6])
    assert pi[0].tolist() == pytest.approx((e / e.sum()).tolist())
    assert policy_entropy(q, 0.5).item() == pytest.approx(float(-(pi * pi.log()).sum()))
    info = sim.spec("cartpole").info
    torch.manual_seed(0)
    agent = SoftQ(SoftQConfig(hidden=(8,), alpha=0.5), info, torch.device("cpu"))
    obs = torch.randn(1, 4).expand(20_000, 4)
    pi = boltzmann_policy(agent.q_net(obs[:1]), 0.5)[0].detach()
    counts = torch.bincount(agent.explore(obs, step=0), minlength=2).float()
    assert torch.allclose(counts / counts.sum(), pi, atol=0.015)
    greedy = agent.act(obs[:1], deterministic=True)
    assert greedy.item() == int(pi.argmax())


def test_soft_q_refuses_bad_temperatures_and_continuous_actions():
    for alpha in (0.0, -1.0):
        with pytest.raises(ValueError, match="alpha"):
            SoftQConfig(alpha=alpha)
    with pytest.raises(ValueError, match="discrete actions"):
        SoftQ(SoftQConfig(), sim.spec("pendulum").info, torch.device("cpu"))


def test_soft_q_learns_cartpole_within_budget(tmp_path):
    """The cart-pole preset (3-step returns, alpha 0.05); env steps to 475 (10 deterministic
    episodes every 1,024 steps), seeds 0, 1, 2: 5,120, 24,576, 15,360 (median 15,360); budget
    30,000 (DQN's). One seed: the test budget is small."""
    cfg = TrainConfig(algo="soft-q", env="cartpole", seed=0, steps=30_000, eval_every=1024,
                      target_return=475.0, runs_dir=str(tmp_path))
    result = train(cfg)
    assert result.loop.solved_at is not None, (
        f"soft-q did not reach 475 on cartpole in 30,000 steps; last {result.loop.last_eval}")
    # it explored with the Boltzmann policy, whose entropy it logs: between 0 and log 2
    logged = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    entropy = [r["entropy"] for r in logged if r["kind"] == "train" and "entropy" in r]
    assert entropy and all(0.0 <= h <= math.log(2.0) for h in entropy) and max(entropy) > 0.01


def test_kinema_train_soft_q_with_options_and_a_bad_temperature(tmp_path, capsys):
    rc = main(["train", "soft-q", "--env", "cartpole", "--steps", "512", "--eval-every", "512",
               "--eval-episodes", "1", "--runs-dir", str(tmp_path / "ok"), "--no-progress",
               "--json", "--alpha", "0.1", "--hidden", "32", "--prioritized"])
    assert rc == 0 and json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 512
    (run,) = (tmp_path / "ok").iterdir()
    config = json.loads((run / "config.json").read_text())["config"]["algo_config"]
    assert config["alpha"] == 0.1 and config["prioritized"] is True and config["n_step"] == 3
    rc = main(["train", "soft-q", "--env", "cartpole", "--alpha", "0",
               "--runs-dir", str(tmp_path / "bad")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and "alpha" in err[0] and "> 0" in err[0], err
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())

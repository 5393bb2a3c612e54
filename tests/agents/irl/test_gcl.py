"""Guided cost learning: the importance-sampled MaxEnt IRL estimator against hand values, the
update's weight isolation, the saved reward (--learned-reward), resume, and a learning test."""

import dataclasses
import json
import math

import pytest
import torch

import sim
from agents.experts.base import make_expert
from agents.irl.gcl import (
    GCL,
    GCLConfig,
    effective_sample_size,
    log_mixture,
    log_partition,
    maxent_irl_loss,
)
from agents.irl.reward import load_reward
from agents.runs.train import TrainConfig, load_agent, train
from data.record import record
from tests.agents.loops.crash import assert_resumes_bit_exactly

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cartpole_data(tmp_path_factory):
    """Ten scripted cart-pole episodes (5,000 transitions)."""
    ds = tmp_path_factory.mktemp("gcl") / "cartpole"
    record("cartpole", make_expert("scripted", "cartpole"), 10, ds)
    return ds


# -- the estimator by hand ------------------------------------------------------------------------
def test_the_partition_function_is_the_fixed_point_of_the_mixture_estimate():
    # r_j - log q_j = c for every sample: w_j = 1 / (e^-c / 2 + 1 / (2 Z)), so Z = e^c
    r = torch.tensor([0.3, -1.0, 2.0, 0.5])
    log_q = r - 1.5
    assert log_partition(r, log_q, 60).item() == pytest.approx(1.5, abs=1e-6)
    # in general log Z = log mean_j exp(r_j) / z_j(Z), each w_j below 2 Z
    gen = torch.Generator().manual_seed(0)
    r, log_q = torch.randn(64, generator=gen) * 2, torch.randn(64, generator=gen) * 2
    log_Z = log_partition(r, log_q, 200)
    log_w = r - log_mixture(r, log_q, log_Z)
    assert torch.logsumexp(log_w, 0) - math.log(64) == pytest.approx(log_Z.item(), abs=1e-5)
    assert bool((log_w < math.log(2) + log_Z).all())
    # the mixture density by hand: z = q / 2 + exp(r) / (2 Z)
    z = log_mixture(torch.tensor([0.0]), torch.tensor([math.log(0.2)]), torch.tensor(0.0))
    assert z.exp().item() == pytest.approx(0.5 * 0.2 + 0.5 * 1.0)


def test_the_loss_gradient_is_the_importance_weighted_maxent_gradient():
    r_demo = torch.tensor([1.0, 2.0], requires_grad=True)
    r_bg = torch.tensor([0.5, -0.5, 1.0], requires_grad=True)
    log_z = torch.tensor([-1.0, 0.0, 0.3])
    maxent_irl_loss(r_demo, r_bg, log_z).backward()
    w = (r_bg.detach() - log_z).exp()  # w_j = exp(r_j) / z_j
    assert torch.allclose(r_demo.grad, torch.full((2,), -0.5))  # -E_demo[grad r]
    assert torch.allclose(r_bg.grad, w / w.sum())  # + sum_j w_j grad r_j / sum_j w_j
    assert effective_sample_size(torch.zeros(5)).item() == pytest.approx(5.0)
    assert effective_sample_size(torch.tensor([0.0, -50.0])).item() == pytest.approx(1.0)


def test_an_update_moves_the_reward_only_and_raises_it_on_demonstrations():
    info = sim.spec("pendulum").info
    agent = GCL(GCLConfig(hidden=(8,), disc_hidden=(16,), num_envs=2, num_steps=8,
                          num_minibatches=2, disc_lr=1e-2, grad_penalty=1.0), info, CPU)
    gen = torch.Generator().manual_seed(0)
    demo = torch.randn(64, 3, generator=gen) + 2.0  # demonstrations and samples apart
    samp = torch.randn(64, 3, generator=gen) - 2.0
    acts = torch.rand(64, 1, generator=gen) * 2 - 1
    agent.set_expert_statistics(demo)
    batch = {"obs": samp, "actions": acts, "next_obs": samp, "terminated": torch.zeros(64).bool(),
             "logp": agent.log_pi(samp, acts), "expert_obs": demo, "expert_actions": acts,
             "expert_next_obs": demo, "expert_terminated": torch.zeros(64).bool()}
    gen0 = {k: v.clone() for k, v in agent.generator.net.state_dict().items()}
    first = agent.update(batch)
    for _ in range(30):
        terms = agent.update(batch)
    assert all(torch.equal(v, agent.generator.net.state_dict()[k]) for k, v in gen0.items())
    gap0 = first["reward_demo"] - first["reward_sample"]
    gap = terms["reward_demo"] - terms["reward_sample"]
    assert gap > gap0 + 1.0, (gap0, gap)
    assert {"irl_loss", "log_partition", "ess", "demo_weight", "grad_penalty"} <= set(terms)
    assert 1.0 <= terms["ess"] <= 128.0
    with pytest.raises(ValueError, match="reward_l2"):
        GCLConfig(reward_l2=-1.0)
    with pytest.raises(ValueError, match="partition_iters"):
        GCLConfig(partition_iters=0)


# -- runs: resume, the saved reward, learning -----------------------------------------------------
def _small(data):
    return GCLConfig(dataset=str(data), num_envs=4, num_steps=64, num_minibatches=2,
                     update_epochs=2, disc_updates=2, disc_batch_size=64, hidden=(16,),
                     disc_hidden=(16,), grad_penalty=1.0)


def test_resume_is_bit_exact_and_the_reward_trains_a_fresh_policy(tmp_path, cartpole_data):
    base = dict(algo="gcl", env="cartpole", steps=1024, eval_every=512, checkpoint_every=512,
                eval_episodes=1, seed=3)
    _, resumed = assert_resumes_bit_exactly(tmp_path, base, 512, _small(cartpole_data))
    run = resumed.run
    agent, _ = load_agent(run)
    reward = load_reward(run)  # RUN/reward/: r_psi(s, a) itself, rebuilt without pickle
    obs, acts = torch.randn(8, 4), torch.randint(2, (8,))
    assert torch.equal(reward(obs, acts), agent.disc(obs, acts).detach())
    assert json.loads((run / "reward" / "reward.json").read_text())["form"] == "gcl"
    fresh = train(TrainConfig(algo="ppo", env="cartpole", steps=256, eval_every=256,
                              eval_episodes=1, learned_reward=str(run),
                              runs_dir=str(tmp_path / "ppo")))
    recs = [json.loads(x) for x in (fresh.run / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("episode_return") is not None and not float(r["episode_return"]).is_integer()
               for r in recs if r["kind"] == "train")  # trained on r_psi, not on 1 per step


STEPS = 30_720
"""Cart-pole from 10 scripted episodes with the preset (PPO's cart-pole sampler, 4 reward steps
of 256 demonstrations + 256 samples per 256-step rollout), evaluated every 2,560 steps: the
return first reached 450 at 17,920, 17,920 and 15,360 env steps on seeds 0-2 (normalized 0.99,
0.92, 1.00)."""


def test_learning_from_ten_scripted_episodes_on_cartpole(tmp_path, cartpole_data, seed=0):
    from agents.registry import algorithm

    cfg = dataclasses.replace(algorithm("gcl").preset("cartpole"), dataset=str(cartpole_data))
    result = train(TrainConfig(algo="gcl", env="cartpole", seed=seed, steps=STEPS,
                               eval_every=2560, target_return=450.0,
                               runs_dir=str(tmp_path / "runs")), cfg)
    recs = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in recs if r["kind"] == "eval"][-1]
    assert result.stopped == "target_return" and last["normalized_score"] >= 0.9, last

"""BC: losses against hand-computed values, early stopping, the exported policy, learning."""

import json
import math

import numpy as np
import pytest
import torch

import sim
from agents.experts.base import make_expert
from agents.imitation.bc import BC, BCConfig, cross_entropy_loss, gaussian_nll_loss, mse_loss
from agents.imitation.scores import expert_normalized_score
from agents.loops.offline import split
from agents.runs.train import TrainConfig, load_agent, train
from data.record import record


def test_mse_loss_by_hand():
    mean = torch.tensor([[[0.0, 1.0], [2.0, 0.0]]])  # [E=1, B=2, A=2]
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert mse_loss(mean, target).item() == pytest.approx((1.0 + 4.0) / 2)


def test_gaussian_nll_matches_the_normal_density():
    mean, log_std = torch.randn(3, 5, 2), torch.randn(3, 5, 2) * 0.3
    target = torch.randn(5, 2)
    ref = -torch.distributions.Normal(mean, log_std.exp()).log_prob(target).sum(-1).mean()
    assert gaussian_nll_loss(mean, log_std, target).item() == pytest.approx(ref.item(), rel=1e-6)
    # at the target with unit std: 0.5 log(2 pi) per dimension
    z = torch.zeros(1, 1, 2)
    assert gaussian_nll_loss(z, z, torch.zeros(1, 2)).item() == pytest.approx(math.log(2 * math.pi))


def test_cross_entropy_averages_over_members():
    logits = torch.tensor([[[0.0, math.log(3.0)]], [[math.log(3.0), 0.0]]])  # [E=2, B=1, n=2]
    target = torch.tensor([1])
    # member 0 gives p(1) = 3/4, member 1 gives p(1) = 1/4
    want = -(math.log(0.75) + math.log(0.25)) / 2
    assert cross_entropy_loss(logits, target).item() == pytest.approx(want)


def test_normalized_score():
    assert expert_normalized_score(-200.0, -1200.0, -150.0) == pytest.approx(1000 / 1050)
    assert expert_normalized_score(-150.0, -1200.0, -150.0) == 1.0


def test_early_stopping_keeps_the_best_weights():
    agent = BC(BCConfig(patience=2), sim.spec("pendulum").info, torch.device("cpu"))
    stops = []
    for i, val in enumerate([1.0, 0.5, 0.6, 0.7]):
        with torch.no_grad():
            agent.net[0].bias.fill_(float(i))
        stops.append(agent.check_validation(val))
    assert stops == [False, False, False, True]
    agent.restore_best()
    assert torch.all(agent.net[0].bias == 1.0) and agent.stopping.best_val == 0.5


def test_ensemble_nll_policy_exports_the_dataset_statistics():
    info = sim.spec("pendulum").info
    agent = BC(BCConfig(head="nll", ensemble=3, hidden=(16,)), info, torch.device("cpu"))
    rng = np.random.default_rng(0)
    obs = rng.normal(5.0, 2.0, (500, 3)).astype(np.float32)
    data = split(obs, rng.uniform(-1, 1, (500, 1)), 0.1, 0, torch.device("cpu"))
    agent.set_statistics(data.obs)
    terms = agent.update({"obs": data.obs[:64], "actions": data.actions[:64]})
    assert terms["bc_loss"].isfinite()
    policy = agent.inference_module()
    assert torch.allclose(policy.obs_norm.mean, data.obs.double().mean(0))
    out = policy(torch.as_tensor(obs[:7]))
    assert out.shape == (7, 1) and out.abs().max() <= 2.0  # robot units: torque in [-2, 2]
    sample = agent.act(obs[:7])  # a sampled member with Gaussian noise, clipped to [-1, 1]
    assert sample.shape == (7, 1) and sample.abs().max() <= 1.0


BC_UPDATES = 1000
"""BC's update budget on pendulum. Evaluated every 250 updates, the score first reached >= 0.9
at 500 updates on seeds 0, 1 and 2 (0.99, 0.98, 0.98 there) and stayed >= 0.98 to 1,500."""


@pytest.mark.parametrize("seed", [0, 1])
def test_bc_from_ten_scripted_episodes_on_pendulum(tmp_path, seed):
    """The issue's bar: normalized score >= 0.9 from 10 scripted-expert episodes."""
    ds = tmp_path / "ds"
    record("pendulum", make_expert("scripted", "pendulum"), 10, ds)
    cfg = TrainConfig(algo="bc", env="pendulum", seed=seed, steps=BC_UPDATES,
                      eval_every=BC_UPDATES, runs_dir=str(tmp_path / "runs"))
    result = train(cfg, BCConfig(dataset=str(ds)))
    evals = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    last = [e for e in evals if e["kind"] == "eval"][-1]
    assert last["labels"] == 2000
    assert last["normalized_score"] >= 0.9, last
    agent, run = load_agent(result.run)  # the checkpoint holds the policy that was evaluated
    _, tree = run.load()
    assert tree["imitation"]["reference"]["expert"] == pytest.approx(last["expert_return"])


def test_bc_resume_is_bit_exact(tmp_path):
    from agents.runs.train import resume

    ds = tmp_path / "ds"
    record("pendulum", make_expert("scripted", "pendulum"), 2, ds)
    algo = BCConfig(dataset=str(ds), hidden=(16,), val_every=20, patience=100)

    def run(steps, runs):
        return train(TrainConfig(algo="bc", env="pendulum", steps=steps, eval_every=100,
                                 eval_episodes=1, runs_dir=str(tmp_path / runs)), algo).run

    straight = run(200, "a")
    half = run(100, "b")
    resume(half, train_overrides={"steps": 200})
    a, _ = load_agent(straight)
    b, _ = load_agent(half)
    for (k, x), y in zip(a.net.state_dict().items(), b.net.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    assert a.stopping == b.stopping

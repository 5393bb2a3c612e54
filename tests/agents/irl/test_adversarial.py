"""GAIL and AIRL: losses and rewards against hand values, gradient isolation, the saved reward,
bad inputs, resume, and a small learning test."""

import dataclasses
import json
import math

import pytest
import torch
from safetensors.torch import load_file

import sim
from agents.experts.base import make_expert
from agents.irl.adversarial import accuracy, discriminator_loss, gradient_penalty
from agents.irl.airl import AIRL, AIRLConfig, airl_f, airl_logits, airl_reward
from agents.irl.gail import GAIL, GAILConfig, gail_reward
from agents.irl.reward import load_reward
from agents.runs.train import TrainConfig, load_agent, resume, train
from data.record import record

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cartpole_data(tmp_path_factory):
    """Ten scripted cart-pole episodes (5,000 transitions)."""
    ds = tmp_path_factory.mktemp("irl") / "cartpole"
    record("cartpole", make_expert("scripted", "cartpole"), 10, ds)
    return ds


# -- losses and rewards by hand -------------------------------------------------------------------
def test_discriminator_loss_by_hand():
    zero = torch.zeros(1)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    # D = sigmoid(log 3) = 3/4: expert term -log 3/4, policy term -log(1 - 3/4) = log 4
    l3 = torch.tensor([math.log(3.0)])
    assert discriminator_loss(l3, l3).item() == pytest.approx(-math.log(0.75) + math.log(4.0))
    # means over each batch, summed: expert [log 3, 0] -> (-log .75 + log 2) / 2
    le, lp = torch.tensor([math.log(3.0), 0.0]), torch.tensor([-math.log(3.0)])
    want = (-math.log(0.75) + math.log(2.0)) / 2 - math.log(0.75)
    assert discriminator_loss(le, lp).item() == pytest.approx(want)
    acc_e, acc_p = accuracy(torch.tensor([1.0, -1.0, 2.0, 3.0]), torch.tensor([-1.0, 1.0]))
    assert (acc_e.item(), acc_p.item()) == (0.75, 0.5)


def test_gradient_penalty_of_a_linear_discriminator_by_hand():
    w = torch.tensor([3.0, 4.0])

    def linear(x):  # logit = w.x + 1: its gradient is w everywhere, ||w|| = 5
        return x @ w + 1.0

    xe, xp = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(linear, xe, xp, torch.rand(6, 1)).item() == pytest.approx(16.0)

    def quadratic(x):  # logit = ||x||^2 / 2: gradient x^, ||x^|| = 2 at the midpoint of these
        return 0.5 * x.square().sum(-1)

    xe, xp = torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    got = gradient_penalty(quadratic, xe, xp, torch.tensor([[0.5]]))
    assert got.item() == pytest.approx((2.0 - 1.0) ** 2)


def test_gail_rewards_by_hand():
    logits = torch.tensor([0.0, math.log(3.0)])
    # -log(1 - D): D = 1/2 -> log 2; D = 3/4 -> log 4
    assert torch.allclose(gail_reward(logits, "gail"), torch.tensor([math.log(2), math.log(4)]))
    assert torch.equal(gail_reward(logits, "logit"), logits)  # log D - log(1 - D)


def test_airl_f_logits_and_reward_by_hand():
    g, h, h_next = torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]), torch.tensor([3.0, 3.0])
    done = torch.tensor([False, True])
    f = airl_f(g, h, h_next, done, 0.9)
    assert torch.allclose(f, torch.tensor([1.0 + 0.9 * 3.0 - 2.0, 1.0 - 2.0]))
    pi = torch.tensor([0.25, 0.5])  # a known pi(a|s)
    logits = airl_logits(f, pi.log())
    # D = exp(f) / (exp(f) + pi), the paper's form, is sigmoid of the logit
    assert torch.allclose(torch.sigmoid(logits), f.exp() / (f.exp() + pi))
    d = torch.sigmoid(logits)
    assert torch.allclose(airl_reward(f, pi.log()), d.log() - (1 - d).log(), atol=1e-5)
    want = torch.tensor([1.7 + math.log(4), -1 + math.log(2)])
    assert torch.allclose(airl_reward(f, pi.log()), want)
    # a smaller entropy weight alpha: f - alpha log pi
    assert torch.allclose(airl_reward(f, pi.log(), 0.5), f - 0.5 * pi.log())
    assert torch.equal(airl_reward(f, pi.log(), 0.0), f)


def _batch(agent, n=16):
    info, gen = agent.info, torch.Generator().manual_seed(0)
    obs = torch.randn(2 * n, info.obs_dim, generator=gen)
    acts = torch.randint(info.act_dim, (2 * n,), generator=gen) if info.discrete else (
        torch.rand(2 * n, info.act_dim, generator=gen) * 2 - 1)
    nxt, term = obs + 0.1, torch.zeros(2 * n, dtype=torch.bool)
    b = {"obs": obs[:n], "actions": acts[:n], "next_obs": nxt[:n], "terminated": term[:n],
         "logp": torch.full((n,), -0.5)}
    return b | {"expert_" + k: v[n:] for k, v in
                {"obs": obs, "actions": acts, "next_obs": nxt, "terminated": term}.items()}


def test_airl_discriminator_uses_the_generators_log_probability():
    agent = AIRL(AIRLConfig(hidden=(8,), disc_hidden=(8,)), sim.spec("cartpole").info, CPU)
    b = _batch(agent)
    agent.normalize(b["obs"], update=True)
    with torch.no_grad():
        d = agent.disc
        f = d.g(b["obs"]) + agent.cfg.gamma * d.h(b["next_obs"]) - d.h(b["obs"])
        logp = agent.generator.net.dist(agent.normalize(b["obs"])).log_prob(b["actions"])
        assert torch.allclose(agent.logits(b, ""), f - logp)
        assert torch.allclose(agent.reward(b), f - b["logp"])  # the rollout's log pi


@pytest.mark.parametrize("cls,cfg,env", [(GAIL, GAILConfig, "pendulum"),
                                         (AIRL, AIRLConfig, "cartpole")])
def test_discriminator_and_generator_updates_touch_only_their_own_weights(cls, cfg, env):
    agent = cls(cfg(hidden=(8,), disc_hidden=(8,), num_envs=2, num_steps=8, num_minibatches=2,
                    grad_penalty=10.0), sim.spec(env).info, CPU)
    b = _batch(agent)
    agent.set_expert_statistics(b["expert_obs"])
    agent.normalize(b["obs"], update=True)
    gen0 = {k: v.clone() for k, v in agent.generator.net.state_dict().items()}
    disc0 = {k: v.clone() for k, v in agent.disc.state_dict().items()}
    terms = agent.update(b)
    assert {"disc_loss", "grad_penalty", "disc_expert_acc", "disc_policy_acc"} <= set(terms)
    assert all(torch.equal(v, agent.generator.net.state_dict()[k]) for k, v in gen0.items())
    assert any(not torch.equal(v, agent.disc.state_dict()[k]) for k, v in disc0.items())
    disc1 = {k: v.clone() for k, v in agent.disc.state_dict().items()}
    buf = agent.buffer
    buf.obs.normal_()
    buf.actions.copy_(agent.act(buf.obs.reshape(16, -1)).reshape(buf.actions.shape))
    buf.rewards.normal_()
    agent.learn()
    assert any(not torch.equal(v, agent.generator.net.state_dict()[k]) for k, v in gen0.items())
    assert all(torch.equal(v, agent.disc.state_dict()[k]) for k, v in disc1.items())


# -- bad inputs -----------------------------------------------------------------------------------
def test_bad_datasets_are_refused_in_one_line_before_the_run_folder(tmp_path, cartpole_data):
    runs = tmp_path / "runs"
    cases = [("", "--dataset DIR is required"), (str(tmp_path / "nowhere"), "nowhere")]
    for algo, cfg in (("gail", GAILConfig), ("airl", AIRLConfig)):
        for ds, match in cases:
            with pytest.raises(ValueError, match=match) as e:
                train(TrainConfig(algo=algo, env="cartpole", steps=64, runs_dir=str(runs)),
                      cfg(dataset=ds))
            assert "\n" not in str(e.value)
        with pytest.raises(ValueError, match="holds 'cartpole' episodes, not 'pendulum'"):
            train(TrainConfig(algo=algo, env="pendulum", steps=64, runs_dir=str(runs)),
                  cfg(dataset=str(cartpole_data)))
    with pytest.raises(ValueError, match="reward_form 'x' is not one of gail, logit"):
        GAILConfig(reward_form="x")
    with pytest.raises(ValueError, match="disc_lr"):
        AIRLConfig(disc_lr=0.0)
    assert not runs.exists() or not any(runs.iterdir())
    with pytest.raises(ValueError, match="holds no learned reward"):
        load_reward(tmp_path)


# -- resume and the saved reward ------------------------------------------------------------------
class Crash(Exception):
    pass


def _crash_after(step):
    def hook(p):
        if p.step >= step:
            raise Crash
    return hook


def _latest(run):
    latest = (run / "LATEST").read_text().strip()
    folder = run / latest if (run / latest).is_dir() else run / "checkpoints" / latest
    return (load_file(str(folder / "model.safetensors")),
            load_file(str(folder / "optim.safetensors")))


@pytest.mark.parametrize("algo", ["gail", "airl"])
def test_resume_is_bit_exact_and_the_reward_is_saved(tmp_path, cartpole_data, algo):
    n = 512
    cfg = (GAILConfig if algo == "gail" else AIRLConfig)(
        dataset=str(cartpole_data), num_envs=4, num_steps=64, num_minibatches=2,
        update_epochs=2, disc_updates=2, disc_batch_size=64, hidden=(16,), disc_hidden=(16,),
        grad_penalty=1.0)
    base = dict(algo=algo, env="cartpole", steps=2 * n, eval_every=n, checkpoint_every=n,
                eval_episodes=1, seed=3)
    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")), cfg)
    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path / "b")), cfg,
              on_progress=_crash_after(n))
    (crashed,) = (tmp_path / "b").iterdir()
    resumed = resume(crashed)
    assert resumed.loop.step == straight.loop.step == 2 * n
    for a, b in zip(_latest(straight.run), _latest(resumed.run), strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k

    def evals(run):
        recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [(r["step"], r["return_mean"], r["normalized_score"], r["disc_expert_acc"])
                for r in recs if r["kind"] == "eval"]

    assert evals(straight.run) == evals(resumed.run)
    # RUN/reward/ is the discriminator of the last checkpoint, rebuilt without pickle
    agent, _ = load_agent(resumed.run)
    reward = load_reward(resumed.run)
    b = _batch(agent)
    if algo == "gail":
        want = torch.nn.functional.softplus(agent.disc(b["obs"], b["actions"]))
    else:
        want = agent.disc.g(b["obs"])
    assert torch.equal(reward(b["obs"], b["actions"]), want.detach())
    meta = json.loads((resumed.run / "reward" / "reward.json").read_text())
    assert meta["form"] == ("gail" if algo == "gail" else "airl") and meta["env"] == "cartpole"


# -- learning -------------------------------------------------------------------------------------
STEPS = 30_720
"""The env-step budget on cart-pole from 10 scripted episodes (the presets: PPO's cart-pole
generator, 4 discriminator steps of 256 + 256 transitions per 256-step rollout). Evaluated every
2,560 steps, the expert-normalized score first reached >= 0.8 at
    GAIL: 25,600, 7,680, 2,560, 12,800 and 25,600 steps on seeds 0-4 (median 12,800)
    AIRL: 25,600, 12,800 and 2,560 steps on seeds 0-2 (median 12,800)
(about 4,000 GAIL and 2,000 AIRL env steps/s on one quiet core)."""


@pytest.mark.parametrize("algo,seed", [("gail", 0), ("gail", 1), ("airl", 0), ("airl", 1)])
def test_learning_from_ten_scripted_episodes_on_cartpole(tmp_path, cartpole_data, algo, seed):
    """The issue's bar on the env where a unit-test budget suffices: 0.8 normalized."""
    from agents.registry import algorithm

    cfg = dataclasses.replace(algorithm(algo).preset("cartpole"), dataset=str(cartpole_data))
    result = train(TrainConfig(algo=algo, env="cartpole", seed=seed, steps=STEPS,
                               eval_every=2560, target_return=450.0,
                               runs_dir=str(tmp_path / "runs")), cfg)
    recs = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in recs if r["kind"] == "eval"][-1]
    assert result.stopped == "target_return" and last["normalized_score"] >= 0.8, last
    assert last["labels"] == 5000 and last["expert_return"] == 500.0
    assert 0.0 <= last["disc_expert_acc"] <= 1.0 and 0.0 <= last["disc_policy_acc"] <= 1.0


def test_gail_on_pendulum_from_ten_scripted_episodes_reaches_0_8(tmp_path):
    """The issue's own bar: GAIL's preset (PPO's pendulum generator) from 10 scripted swing-ups
    reaches 0.8 expert-normalized within 57,344 env steps (evaluated every 8,192 with 5
    episodes; the run stops there). `kinema bench irl --tasks pendulum` measured the first
    evaluation >= 0.8 at 32,768, 32,768 and 49,152 steps (seeds 0-2, 10 episodes)."""
    from agents.registry import algorithm

    data = tmp_path / "pendulum"
    record("pendulum", make_expert("scripted", "pendulum"), 10, data)
    cfg = dataclasses.replace(algorithm("gail").preset("pendulum"), dataset=str(data))
    result = train(TrainConfig(algo="gail", env="pendulum", seed=0, steps=57_344,
                               eval_every=8192, eval_episodes=5, target_return=-300.0,
                               runs_dir=str(tmp_path / "runs")), cfg)
    recs = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in recs if r["kind"] == "eval"][-1]
    assert result.stopped == "target_return" and last["normalized_score"] >= 0.8, last

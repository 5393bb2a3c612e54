"""`kinema train airl --generator sac`: AIRL's discriminator against replayed transitions, SAC
on f(s, a, s'); the logit by hand, bad inputs, bit-exact resume, and a learned reward that
tells the expert's states from a random policy's."""

import json

import numpy as np
import pytest
import torch

import sim
from agents.experts.base import make_expert
from agents.irl.airl import AIRLConfig, airl_f
from agents.irl.airl_sac import AIRLSAC
from agents.irl.reward import load_reward
from agents.runs.train import TrainConfig, train
from data.dataset import Dataset
from data.record import record
from tests.agents.loops.crash import assert_resumes_bit_exactly

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pendulum_data(tmp_path_factory):
    """Five scripted pendulum swing-ups (1,000 transitions)."""
    ds = tmp_path_factory.mktemp("airl-sac") / "pendulum"
    record("pendulum", make_expert("scripted", "pendulum"), 5, ds)
    return ds


def _cfg(data, **kw):
    return AIRLConfig(dataset=str(data), generator="sac", num_envs=1, gamma=0.99,
                      disc_hidden=(32,), **kw)


def test_the_discriminator_reads_the_sac_actors_density_and_sac_learns_on_f(pendulum_data):
    agent = AIRLSAC(_cfg(pendulum_data), sim.spec("pendulum").info, CPU)
    gen = torch.Generator().manual_seed(0)
    obs, nxt = torch.randn(8, 3, generator=gen), torch.randn(8, 3, generator=gen)
    acts = torch.rand(8, 1, generator=gen) * 2 - 1
    batch = {"obs": obs, "actions": acts, "next_obs": nxt, "rewards": torch.zeros(8),
             "terminated": torch.zeros(8, dtype=torch.bool), "discount": torch.full((8,), 0.99)}
    # log pi(a|s) of a = tanh(u), u ~ N(mu, sigma^2): the Gaussian's density over |da/du|
    mean, log_std = agent.generator.actor.mean_log_std(obs)
    u = torch.atanh(acts)
    want = (torch.distributions.Normal(mean, log_std.exp()).log_prob(u)
            - torch.log(1 - acts.square())).sum(-1)
    assert torch.allclose(agent.log_pi(obs, acts), want.detach(), atol=1e-4)
    assert torch.isfinite(agent.log_pi(obs, torch.ones(8, 1))).all()  # an action on the bound
    d = agent.disc
    f = airl_f(d.g(obs), d.h(obs), d.h(nxt), torch.zeros(8), 0.99)
    assert torch.allclose(agent.f(batch), f)
    actor0 = {k: v.clone() for k, v in agent.generator.actor.state_dict().items()}
    disc0 = {k: v.clone() for k, v in d.state_dict().items()}
    terms = agent.update(batch)
    assert {"disc_loss", "disc_expert_acc", "critic_loss", "actor_loss"} <= set(terms)
    assert any(not torch.equal(v, d.state_dict()[k]) for k, v in disc0.items())
    assert any(not torch.equal(v, agent.generator.actor.state_dict()[k])
               for k, v in actor0.items())


def test_bad_generators_are_refused_in_one_line(tmp_path, pendulum_data):
    with pytest.raises(ValueError, match="generator must be one of ppo, sac, got 'td3'"):
        AIRLConfig(generator="td3")
    runs = tmp_path / "runs"
    record("cartpole", make_expert("scripted", "cartpole"), 1, tmp_path / "cp")
    with pytest.raises(ValueError, match="--generator sac needs continuous actions") as e:
        train(TrainConfig(algo="airl", env="cartpole", steps=64, runs_dir=str(runs)),
              AIRLConfig(dataset=str(tmp_path / "cp"), generator="sac"))
    assert "\n" not in str(e.value)
    assert not runs.exists() or not any(runs.iterdir())


def test_resume_is_bit_exact_and_the_reward_prefers_the_experts_states(tmp_path,
                                                                      pendulum_data):
    base = dict(algo="airl", env="pendulum", steps=300, eval_every=150, checkpoint_every=150,
                eval_episodes=1, seed=0)
    _, resumed = assert_resumes_bit_exactly(tmp_path, base, 150, _cfg(pendulum_data))
    meta = json.loads((resumed.run / "reward" / "reward.json").read_text())
    assert meta["form"] == "airl" and meta["env"] == "pendulum"
    reward = load_reward(resumed.run)  # g(s), learned in 400 discriminator steps
    ds = Dataset.open(pendulum_data)
    expert = torch.as_tensor(np.concatenate([e.observations for e in ds.episodes()]))
    env, rng, rand = sim.make("pendulum", seed=5), np.random.default_rng(5), []
    obs, _ = env.reset(seed=5)
    for _ in range(400):
        rand.append(obs)
        obs, *_ = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
    random_obs = torch.as_tensor(np.stack(rand))
    g_expert = reward(expert, torch.zeros(len(expert), 1)).mean()
    g_random = reward(random_obs, torch.zeros(len(random_obs), 1)).mean()
    assert g_expert > g_random + 0.5, (g_expert, g_random)


def test_evaluations_are_scored_against_references_on_the_runs_physics(tmp_path,
                                                                      pendulum_data):
    """Each evaluation logs the expert-normalized score and the discriminator's accuracy, as the
    PPO path does; with --dynamics the references are replayed on the changed physics (the
    scripted expert on a pendulum 1.3x as heavy), not taken from the nominal one."""
    from agents.imitation.scores import expert_normalized_score, expert_return, random_return
    from agents.runs.config import env_options

    result = train(TrainConfig(algo="airl", env="pendulum", steps=300, eval_every=300,
                               eval_episodes=2, dynamics="mass=1.3", runs_dir=str(tmp_path)),
                   _cfg(pendulum_data))
    rows = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    (ev,) = [r for r in rows if r["kind"] == "eval"]
    heavy = env_options("mass=1.3")
    expert = make_expert("scripted", "pendulum")
    assert ev["expert_return"] == pytest.approx(expert_return(expert, "pendulum", 2, **heavy))
    assert ev["random_return"] == pytest.approx(random_return("pendulum", 2, **heavy))
    assert ev["expert_return"] != pytest.approx(expert_return(expert, "pendulum", 2))
    assert ev["normalized_score"] == pytest.approx(expert_normalized_score(
        ev["return_mean"], ev["random_return"], ev["expert_return"]))
    assert ev["labels"] == 1000 and 0.0 <= ev["disc_expert_acc"] <= 1.0

"""Prioritized replay in DQN, SAC and TD3: importance-weighted losses against hand values, the
TD errors returned for new priorities, bit-exact resume with the sum tree, beta's schedule, and
PER-DQN learning cart-pole within DQN's budget."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

import sim
from agents.loops.off_policy import TD_ERROR, per_beta
from agents.model_free import dqn, sac, td3
from agents.registry import algorithm
from agents.runs.run import Run
from agents.runs.train import TrainConfig, resume, train
from data.replay import PrioritizedReplayBuffer, ReplayBuffer
from kinema.cli import main
from tests.agents.loops.crash import Crash, crash_after


def test_weighted_losses_against_hand_values():
    q, y, w = torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.5])
    # Huber: 0.5 * 0.25 = 0.125 and 3 - 0.5 = 2.5, weighted 1 and 0.5
    assert dqn.td_loss(q, y, w).item() == pytest.approx((0.125 + 0.5 * 2.5) / 2)
    assert dqn.td_loss(q, y, torch.ones(2)).item() == pytest.approx(dqn.td_loss(q, y).item())
    qe = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # [E=2, B=2]
    # squared errors [[1, 4], [9, 0]], weighted by w per sample: [[1, 2], [9, 0]]
    assert td3.critic_loss(qe, y, w).item() == pytest.approx((1 + 2) / 2 + (9 + 0) / 2)
    assert sac.critic_loss(qe, y, w).item() == pytest.approx(0.5 * ((1 + 2) / 2 + 9 / 2))
    assert sac.critic_loss(qe, y).item() == pytest.approx(0.5 * ((1 + 4) / 2 + 9 / 2))


def test_beta_rises_linearly_from_beta0_to_one_over_the_budget():
    assert per_beta(0.4, 0, 1000) == 0.4
    assert per_beta(0.4, 500, 1000) == pytest.approx(0.7)
    assert per_beta(0.4, 2000, 1000) == 1.0


@pytest.mark.parametrize("algo", ["dqn", "sac", "td3", "soft-q"])
def test_a_prioritized_update_returns_its_td_errors_and_a_uniform_one_does_not(algo):
    a = algorithm(algo)
    env = "cartpole" if "discrete" in a.actions else "pendulum"
    info = sim.spec(env).info
    cfg = dataclasses.replace(a.preset(env), hidden=(16,) if algo in ("dqn", "soft-q")
                              else (16, 16), prioritized=True, batch_size=8)
    torch.manual_seed(0)
    agent = a.make_agent(cfg, info, torch.device("cpu"))
    assert isinstance(agent.replay, PrioritizedReplayBuffer)
    n = agent.replay.n_step + 20
    for _ in range(n):
        obs = torch.randn(1, info.obs_dim)
        agent.replay.add(obs, agent.act(obs), torch.randn(1), torch.randn(1, info.obs_dim),
                         torch.tensor([False]), torch.tensor([False]))
    batch = agent.replay.sample(8, beta=0.4)
    terms = agent.update(batch)
    td = terms[TD_ERROR]
    assert td.shape == (8,) and bool((td >= 0).all()) and not td.requires_grad
    agent.replay.update_priorities(batch["indices"], td)
    got = agent.replay.tree.priorities()[batch["indices"]]
    assert torch.allclose(got, (td.double() + cfg.per_eps) ** cfg.per_alpha)
    uniform = {k: v for k, v in batch.items() if k not in ("weights", "indices")}
    assert TD_ERROR not in agent.update(uniform)
    plain = a.make_agent(dataclasses.replace(cfg, prioritized=False), info, torch.device("cpu"))
    assert type(plain.replay) is ReplayBuffer


def test_prioritized_dqn_resumes_bit_exactly_with_its_sum_tree(tmp_path):
    cfg = dataclasses.replace(algorithm("dqn").preset("cartpole"), hidden=(32,),
                              learning_starts=64, train_freq=4, gradient_steps=2, n_step=3,
                              target_update_interval=25, num_envs=2, prioritized=True)
    n = 304
    base = dict(algo="dqn", env="cartpole", steps=2 * n, eval_every=n, checkpoint_every=n,
                seed=5, eval_episodes=2)
    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")), cfg)
    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path / "b")), cfg, on_progress=crash_after(n))
    (crashed,) = (tmp_path / "b").iterdir()
    resumed = resume(crashed)
    assert resumed.loop.step == straight.loop.step == 2 * n

    def latest(run):
        return run / (run / "LATEST").read_text().strip()

    for name in ("model.safetensors", "optim.safetensors"):
        a, b = (load_file(str(latest(r.run) / name)) for r in (straight, resumed))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    model = load_file(str(latest(straight.run) / "model.safetensors"))
    (key,) = [k for k in model if k.startswith("replay/") and "priorities" in k]
    p = model[key]
    # 608 steps of 2 envs; the loop has replaced many of the initial priorities 1 by TD errors
    assert p.shape == (304, 2) and (p != 1.0).sum() > 100 and bool((p[:-2] > 0).all())
    assert bool((p[-2:] == 0).all())  # the newest 2 rows: their 3-step windows are not complete


def test_prioritized_dqn_learns_cartpole_within_dqns_budget(tmp_path):
    """DQN's cart-pole preset with --prioritized; env steps to 475 (10 deterministic episodes
    every 1,024 steps), seeds 0, 1, 2: 14,336, 7,168, 9,216 (median 9,216; uniform DQN: 12,288,
    7,168, 12,288, tests/agents/model_free/test_off_policy_learning.py); budget 30,000, as
    DQN's test. beta anneals over the budget, so the steps depend on it (at the default 50,000,
    `kinema bench rl --tasks dqn-per-cartpole`: 10,240, 7,168, 20,480). One seed (1): the test
    budget is small."""
    cfg = dataclasses.replace(algorithm("dqn").preset("cartpole"), prioritized=True)
    result = train(TrainConfig(algo="dqn", env="cartpole", seed=1, steps=30_000, eval_every=1024,
                               target_return=475.0, runs_dir=str(tmp_path)), cfg)
    assert result.loop.solved_at is not None, (
        f"PER-DQN did not reach 475 on cartpole in 30,000 steps; last {result.loop.last_eval}")


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_kinema_train_prioritized_actor_critic_updates_its_priorities(tmp_path, capsys, algo):
    rc = main(["train", algo, "--env", "pendulum", "--steps", "300", "--eval-every", "300",
               "--eval-episodes", "1", "--runs-dir", str(tmp_path), "--no-progress", "--json",
               "--hidden", "32", "32", "--learning-starts", "100", "--prioritized",
               "--per-alpha", "0.7", "--per-beta0", "0.5"])
    assert rc == 0 and json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 300
    (run,) = tmp_path.iterdir()
    config = json.loads((run / "config.json").read_text())["config"]["algo_config"]
    assert config["prioritized"] is True and config["per_alpha"] == 0.7
    _, tree = Run.open(run).load()
    p = tree["replay"]["priorities"][:, 0]
    assert p.shape == (300,) and bool((p > 0).all())
    assert (p != 1.0).sum() > 100  # 200 updates of 256 samples gave them TD-error priorities


@pytest.mark.parametrize("option,value", [("--per-beta0", "1.5"), ("--per-alpha", "-1"),
                                          ("--per-eps", "0")])
def test_bad_per_settings_are_one_line(tmp_path, capsys, option, value):
    capsys.readouterr()
    rc = main(["train", "dqn", "--env", "cartpole", "--runs-dir", str(tmp_path), option, value])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1, err
    assert option.lstrip("-").replace("-", "_") in err[0] and value in err[0]
    assert not any(tmp_path.iterdir())  # refused before a run folder exists

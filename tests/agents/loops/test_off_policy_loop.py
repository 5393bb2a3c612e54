"""The off-policy loop: bit-exact resume with the replay buffer, truncation and termination as
stored, divergence keeps the last good checkpoint."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import sim
from agents.loops.core import Diverged, Schedule
from agents.loops.off_policy import train_off_policy
from agents.registry import algorithm
from agents.runs.run import Run
from agents.runs.train import TrainConfig, resume, train
from tests.agents.loops.crash import Crash, crash_after


def _latest(run):
    return run / (run / "LATEST").read_text().strip()


def _evals(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["return_mean"]) for r in map(json.loads, lines) if r["kind"] == "eval"]


@pytest.mark.parametrize("algo,env,over", [
    ("sac", "pendulum", dict(hidden=(32, 32), learning_starts=100)),
    ("td3", "inverted-pendulum", dict(hidden=(32, 32), learning_starts=100, num_envs=2)),
    ("dqn", "cartpole", dict(hidden=(32,), learning_starts=64, train_freq=4, gradient_steps=2,
                             n_step=3, target_update_interval=25, num_envs=2)),
])
def test_resume_is_bit_exact_including_the_replay_buffer(tmp_path, algo, env, over):
    cfg = dataclasses.replace(algorithm(algo).preset(env), **over)
    n = 304  # a multiple of every loop's iteration size here (1, 2, 8 env steps)
    base = dict(algo=algo, env=env, steps=2 * n, eval_every=n, checkpoint_every=n, seed=5,
                eval_episodes=2)
    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")), cfg)
    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path / "b")), cfg, on_progress=crash_after(n))
    (crashed,) = (tmp_path / "b").iterdir()
    assert (crashed / "LATEST").read_text().strip() == f"checkpoints/{n}"
    resumed = resume(crashed)
    assert resumed.loop.step == straight.loop.step == 2 * n
    for name in ("model.safetensors", "optim.safetensors"):
        a = load_file(str(_latest(straight.run) / name))
        b = load_file(str(_latest(resumed.run) / name))
        assert a.keys() == b.keys()
        if name == "model.safetensors":
            assert any(k.startswith("replay/") for k in a)  # the buffer is in the checkpoint
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert _evals(straight.run) == _evals(resumed.run)


def _replay(run):
    _, tree = Run.open(run).load()
    return {k: v for k, v in tree["replay"].items() if isinstance(v, torch.Tensor)}


def test_truncation_stores_the_real_final_observation(tmp_path):
    cfg = dataclasses.replace(algorithm("sac").preset("pendulum"), learning_starts=10_000)
    r = train(TrainConfig(algo="sac", env="pendulum", steps=250, eval_every=250, eval_episodes=1,
                          seed=2, runs_dir=str(tmp_path)), cfg)
    rb = _replay(r.run)
    obs, nxt = rb["obs"][:, 0], rb["next_obs"][:, 0]
    assert rb["truncated"][:, 0].nonzero().flatten().tolist() == [199]  # the 200-step time limit
    assert not rb["terminated"].any()
    others = [t for t in range(249) if t != 199]
    assert torch.equal(nxt[others], obs[[t + 1 for t in others]])
    assert not torch.equal(nxt[199], obs[200])  # not the first observation of the next episode
    # the stored next_obs is where the episode really ended: replay the same actions
    envs = sim.make_vec("pendulum", 1, seed=2)
    first, _ = envs.reset()  # as the loop does
    assert np.array_equal(first[0], obs[0].numpy())
    for t in range(200):
        _, _, _, truncated, info = envs.step(rb["actions"][t].numpy())
    assert truncated[0] and np.array_equal(info["final_obs"][0], nxt[199].numpy())


def test_termination_is_stored_apart_from_truncation(tmp_path):
    cfg = dataclasses.replace(algorithm("dqn").preset("cartpole"), learning_starts=10_000)
    r = train(TrainConfig(algo="dqn", env="cartpole", steps=512, eval_every=512, eval_episodes=1,
                          runs_dir=str(tmp_path)), cfg)
    rb = _replay(r.run)
    term = rb["terminated"][:, 0]
    assert term.sum() >= 5 and not rb["truncated"].any()  # random actions fall within 500 steps
    final = rb["next_obs"][term, 0]
    # a terminal next_obs is past CartPole's limits (|x| > 2.4 or |theta| > 12 degrees)
    assert ((final[:, 0].abs() > 2.4) | (final[:, 2].abs() > 0.2094)).all()


def test_divergence_names_the_term_and_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    algo = algorithm("sac")
    cfg = dataclasses.replace(algo.preset("pendulum"), hidden=(16, 16), learning_starts=50)
    agent = algo.make_agent(cfg, sim.spec("pendulum").info, torch.device("cpu"))
    envs = sim.make_vec("pendulum", 1, seed=0)
    poisoned = []

    def poison(p):
        if p.step >= 100 and not poisoned:  # after the checkpoint at 100
            with torch.no_grad():
                agent.critic.net[0].weight.fill_(float("nan"))
            poisoned.append(p.step)

    with Run.create(tmp_path, "pendulum", "sac", {}) as run:
        with pytest.raises(Diverged, match="'critic_loss' became nan"):
            train_off_policy(agent, envs, run, Schedule(steps=400, eval_every=100,
                                                        eval_episodes=1), on_progress=poison)
    (path,) = tmp_path.iterdir()
    assert (path / "LATEST").read_text().strip() == "checkpoints/100"
    weights = load_file(str(path / "checkpoints" / "100" / "model.safetensors"))
    assert all(torch.isfinite(v.float()).all() for k, v in weights.items() if "critic" in k)

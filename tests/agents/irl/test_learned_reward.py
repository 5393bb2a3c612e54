"""A GAIL/AIRL run's learned reward trains a fresh policy: `--learned-reward RUN` replaces the
training envs' reward, evaluation keeps the true return, resume stays bit-exact."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import sim
from agents.experts.base import make_expert
from agents.imitation.bc import BCConfig
from agents.irl.gail import GAILConfig
from agents.irl.reward import LearnedRewardEnv, load_reward
from agents.runs.train import TrainConfig, resume, train
from data.record import record


@pytest.fixture(scope="module")
def gail_run(tmp_path_factory):
    """A short GAIL run on cart-pole: its RUN/reward/ is what the tests read."""
    root = tmp_path_factory.mktemp("gail-run")
    record("cartpole", make_expert("scripted", "cartpole"), 2, root / "ds")
    cfg = GAILConfig(dataset=str(root / "ds"), num_envs=2, num_steps=64, num_minibatches=2,
                     hidden=(16,), disc_hidden=(16,))
    return train(TrainConfig(algo="gail", env="cartpole", steps=256, eval_every=256,
                             eval_episodes=1, runs_dir=str(root / "runs")), cfg).run


def test_the_wrapped_env_pays_the_learned_reward_of_the_transition(gail_run):
    reward = load_reward(gail_run)
    env = LearnedRewardEnv(sim.make("cartpole"), reward)
    obs, _ = env.reset(seed=0)
    for action in (0, 1, 1):
        want = reward(torch.as_tensor(obs)[None], torch.tensor([action]))
        obs, r, _, _, info = env.step(action)
        assert r == pytest.approx(float(want[0])) and info["env_reward"] == 1.0
        assert r > 0  # -log(1 - D) > 0: GAIL's form
    assert np.array_equal(sim.get_state(env)["layers"][0]["attrs"]["last_obs"]["data"],
                          obs.tolist())  # carried by the env state: resume stays exact


def _latest_model(run):
    latest = (run / "LATEST").read_text().strip()
    folder = run / latest if (run / latest).is_dir() else run / "checkpoints" / latest
    return load_file(str(folder / "model.safetensors"))


def test_ppo_on_a_learned_reward_evaluates_the_true_return_and_resumes_exactly(tmp_path,
                                                                             gail_run):
    base = dict(algo="ppo", env="cartpole", steps=512, eval_every=256, checkpoint_every=256,
                eval_episodes=1, seed=1, learned_reward=str(gail_run))
    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")))
    half = train(TrainConfig(**(base | {"steps": 256}), runs_dir=str(tmp_path / "b")))
    resumed = resume(half.run, train_overrides={"steps": 512})
    a, b = _latest_model(straight.run), _latest_model(resumed.run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    recs = [json.loads(x) for x in (straight.run / "metrics.jsonl").read_text().splitlines()]
    train_ret = [r["episode_return"] for r in recs if r["kind"] == "train"]
    evals = [r["return_mean"] for r in recs if r["kind"] == "eval"]
    # cart-pole pays 1 per step: a true return is a whole number, the learned one is not
    assert all(float(e).is_integer() for e in evals)
    assert any(r is not None and not float(r).is_integer() for r in train_ret)
    # the same run without the learned reward trains on another reward: other weights
    plain = train(TrainConfig(**(base | {"learned_reward": ""}), runs_dir=str(tmp_path / "c")))
    c = _latest_model(plain.run)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_a_bad_learned_reward_is_refused_before_the_run_folder(tmp_path, gail_run):
    runs = tmp_path / "runs"
    cases = [("ppo", "cartpole", str(tmp_path), "holds no learned reward"),
             ("sac", "pendulum", str(gail_run), r"reads observations of 4 and 2 discrete.*"
                                                r"'pendulum' has 3 and 1 continuous"),
             ("bc", "cartpole", str(gail_run), "needs an algorithm that steps training envs")]
    for algo, env, run, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            train(TrainConfig(algo=algo, env=env, steps=64, learned_reward=run,
                              runs_dir=str(runs)),
                  BCConfig(dataset=str(gail_run.parent.parent / "ds")) if algo == "bc"
                  else None)
        assert "\n" not in str(e.value)
    assert not runs.exists() or not any(runs.iterdir())

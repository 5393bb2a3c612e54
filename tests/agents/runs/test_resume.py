"""Resume is bit-exact on CPU: N steps, crash, resume to 2N == 2N straight."""

import json

import pytest
import torch
from safetensors.torch import load_file

from agents.runs.train import TrainConfig, load_agent, resume, train


class Crash(Exception):
    pass


def _crash_after(step: int):
    def hook(p):
        if p.step >= step:
            raise Crash

    return hook


def _final_weights(run):
    latest = (run / "LATEST").read_text().strip()
    folder = run / latest if (run / latest).is_dir() else run / "checkpoints" / latest
    return (load_file(str(folder / "model.safetensors")),
            load_file(str(folder / "optim.safetensors")))


@pytest.mark.parametrize("env,n", [("cartpole", 1024), ("inverted-pendulum", 2048)])
def test_resume_is_bit_exact(tmp_path, env, n):
    base = dict(algo="ppo", env=env, steps=2 * n, eval_every=n, checkpoint_every=n, seed=3)
    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")))
    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path / "b")), on_progress=_crash_after(n))
    (crashed,) = (tmp_path / "b").iterdir()
    resumed = resume(crashed)
    assert resumed.loop.step == straight.loop.step == 2 * n
    model_a, optim_a = _final_weights(straight.run)
    model_b, optim_b = _final_weights(resumed.run)
    assert model_a.keys() == model_b.keys() and optim_a.keys() == optim_b.keys()
    for k in model_a:
        assert torch.equal(model_a[k], model_b[k]), k
    for k in optim_a:
        assert torch.equal(optim_a[k], optim_b[k]), k
    # the resumed run's metrics continue without duplicates and match the straight run's evals
    def evals(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        records = map(json.loads, lines)
        return [(r["step"], r["return_mean"]) for r in records if r["kind"] == "eval"]
    assert evals(straight.run) == evals(resumed.run)


def test_resume_refuses_a_changed_hyperparameter_and_shows_the_difference(tmp_path):
    r = train(TrainConfig(algo="ppo", env="cartpole", steps=256, runs_dir=str(tmp_path)))
    with pytest.raises(ValueError, match=r"lr: 0.002 -> 0.5"):
        resume(r.run, algo_overrides={"lr": 0.5})
    with pytest.raises(ValueError, match=r"seed: 0 -> 7"):
        resume(r.run, train_overrides={"seed": 7})


def test_resume_may_extend_the_budget(tmp_path):
    r = train(TrainConfig(algo="ppo", env="cartpole", steps=256, runs_dir=str(tmp_path)))
    more = resume(r.run, train_overrides={"steps": 512})
    assert more.loop.step == 512
    agent, _ = load_agent(r.run)
    assert agent.act(torch.zeros(1, 4), deterministic=True).shape == (1,)

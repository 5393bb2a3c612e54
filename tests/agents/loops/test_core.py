"""The loop core's schedule: a bounded default evaluation interval, a wall-time checkpoint bound
that keeps a long run resumable (bit-exactly), and how many checkpoints are kept."""

import json
import types

import pytest
import torch
from safetensors.torch import load_file

import agents.loops.core as core
from agents.runs.config import default_eval_every
from agents.runs.train import TrainConfig, resume, train
from tests.agents.loops.crash import Crash, crash_after


def test_the_default_evaluation_interval_is_steps_over_20_but_at_most_100k():
    assert default_eval_every(10) == 1 and default_eval_every(20_000) == 1_000
    assert default_eval_every(2_000_000) == 100_000
    assert default_eval_every(10**12) == 100_000  # --steps 1e12: a checkpoint every 100k steps


def _slow_clock(monkeypatch, seconds_per_call: float) -> None:
    """Each reading of the loop core's clock is `seconds_per_call` later than the one before."""
    now = [0.0]

    def perf_counter() -> float:
        now[0] += seconds_per_call
        return now[0]

    monkeypatch.setattr(core, "time", types.SimpleNamespace(perf_counter=perf_counter))


def _steps(run):
    return sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())


def _records(run, kind):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_a_long_stretch_without_evaluation_still_checkpoints_and_resumes_bit_exactly(
        tmp_path, monkeypatch):
    # 256 env steps per PPO iteration on cartpole; one evaluation, at the end. With 250 s per
    # clock reading, 600 s pass every third iteration: checkpoints at 768 and 1536 steps.
    _slow_clock(monkeypatch, 250.0)
    base = dict(algo="ppo", env="cartpole", steps=2048, eval_every=2048, eval_episodes=1,
                seed=1, keep_checkpoints=0)
    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")))
    assert _steps(straight.run) == [768, 1536, 2048]
    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path / "b")), on_progress=crash_after(1700))
    (crashed,) = (tmp_path / "b").iterdir()
    assert (crashed / "LATEST").read_text().strip() == "checkpoints/1536"
    resumed = resume(crashed)
    assert resumed.loop.step == 2048 and resumed.stopped == "budget"
    for name in ("model.safetensors", "optim.safetensors"):
        a = load_file(str(straight.run / "checkpoints/2048" / name))
        b = load_file(str(resumed.run / "checkpoints/2048" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert [r["return_mean"] for r in _records(straight.run, "eval")] == [
        r["return_mean"] for r in _records(resumed.run, "eval")]
    # the loss terms since the last log point are checkpointed too: the window means match
    terms = ("policy_loss", "value_loss", "entropy", "approx_kl")
    (a_rec,), (b_rec,) = _records(straight.run, "train"), _records(resumed.run, "train")
    assert {k: a_rec[k] for k in terms} == {k: b_rec[k] for k in terms}


def test_no_wall_time_checkpoint_when_the_clock_is_fast(tmp_path, monkeypatch):
    _slow_clock(monkeypatch, 1e-3)
    r = train(TrainConfig(algo="ppo", env="cartpole", steps=2048, eval_every=2048,
                          eval_episodes=1, runs_dir=str(tmp_path)))
    assert _steps(r.run) == [2048]


@pytest.mark.parametrize("keep,kept", [(1, [1024]), (2, [768, 1024]), (0, [256, 512, 768, 1024])])
def test_keep_checkpoints_reaches_the_save(tmp_path, keep, kept):
    r = train(TrainConfig(algo="ppo", env="cartpole", steps=1024, eval_every=256,
                          eval_episodes=1, keep_checkpoints=keep, runs_dir=str(tmp_path)))
    assert _steps(r.run) == kept


def test_a_resume_with_another_eval_interval_evaluates_at_the_new_interval(tmp_path):
    """The checkpoint at 256 had the next evaluation at 1024 (--eval-every 1024); resumed with
    --eval-every 256 the run evaluates at 512, 768 and 1024, not first at 1024 alone."""
    base = dict(algo="ppo", env="cartpole", steps=1024, eval_every=1024, eval_episodes=1,
                checkpoint_every=256, seed=2)
    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path)), on_progress=crash_after(256))
    (crashed,) = tmp_path.iterdir()
    assert (crashed / "LATEST").read_text().strip() == "checkpoints/256"
    resumed = resume(crashed, train_overrides={"eval_every": 256})
    assert resumed.loop.step == 1024
    assert [r["step"] for r in _records(crashed, "eval")] == [512, 768, 1024]
    assert _steps(crashed) == [512, 768, 1024]

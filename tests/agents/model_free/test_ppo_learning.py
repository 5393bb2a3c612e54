"""PPO learns: step budgets on CPU, from the CLI defaults (presets)."""

import json

import pytest

from agents.runs.train import TrainConfig, train


def test_ppo_solves_cartpole_within_budget(tmp_path):
    cfg = TrainConfig(algo="ppo", env="cartpole", steps=40_000, eval_every=2048,
                      target_return=475, runs_dir=str(tmp_path))
    result = train(cfg)
    assert result.loop.solved_at is not None, "PPO did not reach 475 within 40k steps"
    evals = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"]
    assert evals[-1]["return_mean"] >= 475


@pytest.mark.slow
def test_ppo_learns_pendulum_swing_up(tmp_path):
    cfg = TrainConfig(algo="ppo", env="pendulum", steps=61_440, eval_every=20_480,
                      target_return=-250, runs_dir=str(tmp_path))
    result = train(cfg)
    assert result.loop.last_eval is not None and result.loop.last_eval >= -250, result.loop

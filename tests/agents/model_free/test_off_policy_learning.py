"""SAC, TD3, DDPG and DQN learn from their presets within step budgets on CPU.

Each run stops at the first evaluation (10 deterministic episodes, seeds 10000..) that reaches
the target; the budgets are about twice the steps the presets needed over seeds 0..2 (see
BENCHMARKS.md), so a regression in any algorithm shows up here.
"""

import pytest

from agents.runs.train import TrainConfig, train


@pytest.mark.parametrize("algo,env,steps,target", [
    ("sac", "pendulum", 6_000, -250.0),
    ("td3", "pendulum", 10_000, -250.0),
    ("ddpg", "pendulum", 8_000, -250.0),
    ("dqn", "cartpole", 30_000, 475.0),
])
def test_learns_within_budget(tmp_path, algo, env, steps, target):
    cfg = TrainConfig(algo=algo, env=env, steps=steps, eval_every=1000 if algo != "dqn" else 1024,
                      target_return=target, runs_dir=str(tmp_path))
    result = train(cfg)
    assert result.loop.solved_at is not None, (
        f"{algo} did not reach {target} on {env} within {steps} steps; last evaluation "
        f"{result.loop.last_eval}")
    assert result.loop.last_eval >= target

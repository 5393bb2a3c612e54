"""SAC, TD3, DDPG and DQN learn from their presets within step budgets on CPU.

Each run stops at the first evaluation (10 deterministic episodes, seeds 10000..) that reaches
the target. Env steps to the target with these settings, seeds 0, 1, 2 (median):

    sac  pendulum  3,000  3,000  2,000   (3,000)    budget  6,000
    td3  pendulum  5,000  6,000  6,000   (6,000)    budget 10,000
    ddpg pendulum  4,000  3,000  6,000   (4,000)    budget  8,000
    dqn  cartpole 12,288  7,168 12,288  (12,288)    budget 30,000

so every budget is at most about 2.5x the median: a regression in any algorithm shows up here.
The suite runs seed 0 (seeds 1 and 2 passed at these budgets too; the table above), to keep the
default suite within its time budget; `kinema bench rl` runs the medians over seeds.
"""

import pytest

from agents.runs.train import TrainConfig, train


@pytest.mark.parametrize("seed", [0])
@pytest.mark.parametrize("algo,env,steps,target", [
    ("sac", "pendulum", 6_000, -250.0),
    ("td3", "pendulum", 10_000, -250.0),
    ("ddpg", "pendulum", 8_000, -250.0),
    ("dqn", "cartpole", 30_000, 475.0),
])
def test_learns_within_budget(tmp_path, algo, env, steps, target, seed):
    cfg = TrainConfig(algo=algo, env=env, seed=seed, steps=steps,
                      eval_every=1000 if algo != "dqn" else 1024, target_return=target,
                      runs_dir=str(tmp_path))
    result = train(cfg)
    assert result.loop.solved_at is not None, (
        f"{algo} did not reach {target} on {env} within {steps} steps (seed {seed}); last "
        f"evaluation {result.loop.last_eval}")
    assert result.loop.last_eval >= target

"""Learning on a MuJoCo robot, one test per family of model-free agent (issue 17): hopper, whose
random policy scores 20 on average (82 at best over 20 episodes, measured), from the presets.

    PPO, the preset (RL-Zoo's Hopper-v4 entry over 8 envs): 15,360 env steps -> 1,002 (seed 0),
        272 (seed 1); evaluated at 10,240: 150 / 234. (The Zoo's one env: 997 and 992 at 10,240.)
    SAC, the preset with 1,000 random steps instead of 10,000 and 64x64 networks at lr 1e-3 (so
        the test fits the suite): 5,000 env steps -> 207 (seed 0); 4,000 -> 112 / 222 (seeds 0, 1).
"""

import dataclasses

from agents.registry import algorithm
from agents.runs.train import TrainConfig, train

RANDOM_BEST = 82.0
"""The best of 20 uniformly random episodes on hopper."""


def _final_return(tmp_path, algo, steps, eval_every, **overrides):
    cfg = dataclasses.replace(algorithm(algo).preset("hopper"), **overrides)
    result = train(TrainConfig(algo=algo, env="hopper", seed=0, steps=steps,
                               eval_every=eval_every, runs_dir=str(tmp_path)), cfg)
    assert result.loop.last_eval is not None
    return result.loop.last_eval


def test_ppo_hops_from_its_preset(tmp_path):
    ret = _final_return(tmp_path, "ppo", 15_360, 5_120)
    assert ret >= 200, f"PPO hopper reached {ret} in 15,360 steps (random: {RANDOM_BEST} at best)"


def test_sac_hops_from_a_small_version_of_its_preset(tmp_path):
    ret = _final_return(tmp_path, "sac", 5_000, 2_500, learning_starts=1_000, hidden=(64, 64),
                        lr=1e-3)
    assert ret >= 150, f"SAC hopper reached {ret} in 5,000 steps (random: {RANDOM_BEST} at best)"

"""Experts: scripted controllers reach expert returns, MPC plans on the true state, teleop."""

import numpy as np
import pytest

import sim
from agents.experts.base import make_expert
from agents.experts.sim_mpc import MPCConfig, mpc_config
from agents.experts.teleop import Poll, ScriptedInput, Teleop
from agents.runs.evaluation import EVAL_SEED
from data.dataset import Dataset
from data.record import record, run_episode


def _returns(expert, env, episodes, **overrides):
    e = sim.make(env, **overrides)
    discrete = sim.spec(env).info.discrete
    out = [run_episode(e, expert, EVAL_SEED + i, discrete=discrete)[0].total_return
           for i in range(episodes)]
    e.close()
    return np.array(out)


@pytest.mark.parametrize("env,episodes,bar", [
    ("pendulum", 5, -200.0),          # mean; random: about -1200
    ("cartpole", 2, 500.0),           # the maximum
    ("inverted-pendulum", 2, 1000.0),  # the maximum
    ("cartpole-swingup", 1, 650.0),   # random: about 0
    ("reacher", 5, -8.0),             # random: about -43
    ("reacher-easy", 2, 700.0),       # random: about 95
    ("panda-reach", 2, 49.0),         # the maximum is 50 (random: about 32)
])
def test_scripted_experts_reach_expert_returns(env, episodes, bar):
    assert _returns(make_expert("scripted", env), env, episodes).mean() >= bar


def test_unknown_expert_names_the_choices():
    with pytest.raises(ValueError, match="scripted experts exist for .*pendulum"):
        make_expert("scripted", "humanoid")
    with pytest.raises(ValueError, match="neither one of scripted, mpc, teleop nor a run"):
        make_expert("no-such-expert", "pendulum")
    with pytest.raises(ValueError, match="unknown MPC option 'depth'"):
        mpc_config("pendulum", "depth=3")


def test_mpc_on_the_true_state_balances_cartpole():
    expert = make_expert("mpc", "cartpole")
    assert expert.cfg == MPCConfig(horizon=25, samples=32, iterations=1)
    env = sim.make("cartpole", max_episode_steps=100)
    ep, _ = run_episode(env, expert, 0, discrete=True)
    assert ep.total_return == 100.0  # random actions last about 20 steps
    # planning must leave the real env where it was: the recorded trajectory is a real one
    replay = sim.make("cartpole", max_episode_steps=100)
    obs, _ = replay.reset(seed=0)
    for a in ep.actions[:30]:
        obs, *_ = replay.step(a)
    assert np.array_equal(obs, ep.observations[30])


def test_mpc_swings_the_pendulum_up():
    expert = make_expert("mpc:horizon=15,samples=32", "pendulum")
    env = sim.make("pendulum", max_episode_steps=80)
    ep, _ = run_episode(env, expert, 1, discrete=False)
    cos_theta = ep.observations[-10:, 0]
    assert (cos_theta > 0.9).all(), cos_theta


def test_teleop_with_a_scripted_input_source(tmp_path):
    polls = (["start"] + ["right"] * 30 + ["stop"]            # kept, truncated after 30 steps
             + ["start"] + [["left"]] * 5 + ["backspace"]     # discarded
             + ["start"] + ["left"] * 10 + [Poll(command="stop")]  # kept
             + ["escape"])                                    # quit while waiting to start
    source = ScriptedInput(polls)
    result = record("pendulum", Teleop("pendulum", source), 10, tmp_path / "tele")
    assert (result.episodes, result.discarded, result.quit) == (2, 1, True)
    ds = Dataset.open(tmp_path / "tele")
    first, second = ds.episodes()
    assert first.steps == 30 and np.all(first.actions == 1.0) and first.truncations[-1]
    assert second.steps == 10 and np.all(second.actions == -1.0)
    assert ds.metadata["expert"] == {"kind": "teleop", "env": "pendulum",
                                     "source": "ScriptedInput"}
    assert source.frames_shown > 40  # the person is shown every step


def test_teleop_discrete_keys():
    t = Teleop("cartpole", ScriptedInput([["right"], [], ["0"]]))
    env = sim.make("cartpole")
    obs, _ = env.reset(seed=0)
    acts = []
    for _ in range(3):
        assert t.signal() is None
        acts.append(int(t.act(obs, env)))
    assert acts == [1, 1, 0]  # right picks the last action, nothing held repeats it

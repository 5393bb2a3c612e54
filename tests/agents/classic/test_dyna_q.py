"""Tabular Dyna-Q: the model stores what was seen and samples it, planning updates by hand on
small MDPs, fewer real steps to the optimal policy than Q-learning, the run's values.json and
bit-exact resume, bad configs."""

import json
import statistics

import pytest
import torch

from agents.classic.dyna_q import DynaQ, DynaQConfig, TabularModel
from agents.runs.train import TrainConfig, load_agent, train
from benchmarks.dyna_q import TASKS, greedy_value, optimum, steps_to_optimal
from kinema.algo_options import parse_algo_options
from sim.registry import EnvInfo
from tests.agents.loops.crash import assert_resumes_bit_exactly

CPU = torch.device("cpu")
F64 = torch.float64


def chain_info(n_states: int, n_actions: int = 1) -> EnvInfo:
    return EnvInfo(obs_shape=(n_states,), obs_dtype="float32", discrete=True, action_shape=(),
                   n_actions=n_actions, action_low=None, action_high=None, dt=1.0)


def step(s: int, a: int, r: float, s2: int, done: bool, n_states: int) -> dict:
    eye = torch.eye(n_states)
    return {"obs": eye[[s]], "actions": torch.tensor([a]), "rewards": torch.tensor([r], dtype=F64),
            "next_obs": eye[[s2]], "terminated": torch.tensor([done])}


def test_the_model_stores_what_was_seen_and_samples_only_that():
    m = TabularModel(3, 2, CPU)
    s, a = torch.tensor([0, 0, 0, 0, 1]), torch.tensor([1, 1, 1, 1, 0])
    s2 = torch.tensor([1, 1, 1, 2, 2])
    m.record(s, a, torch.tensor([1.0, 3.0, 2.0, -1.0, 5.0], dtype=F64), s2,
             torch.tensor([False, False, False, True, True]))
    assert m.N[0, 1].tolist() == [0, 3, 1] and m.N[1, 0].tolist() == [0, 0, 1]
    assert m.seen.tolist() == [[False, True], [True, False], [False, False]]
    assert m.R[0, 1, 1] == 6.0 and m.D[0, 1, 2] and not m.D[0, 1, 1]
    torch.manual_seed(0)
    ss, aa, rr, ss2, dd = m.sample(4000)
    # states seen uniformly, then an action taken there; s' in proportion to its count
    assert set(zip(ss.tolist(), aa.tolist(), strict=True)) == {(0, 1), (1, 0)}
    assert (ss == 0).double().mean() == pytest.approx(0.5, abs=0.03)
    from0 = ss2[ss == 0]
    assert (from0 == 1).double().mean() == pytest.approx(0.75, abs=0.03)
    # each outcome's mean reward and its termination
    assert rr[(ss == 0) & (ss2 == 1)].unique().tolist() == [2.0]
    assert rr[(ss == 0) & (ss2 == 2)].unique().tolist() == [-1.0]
    assert dd[ss2 == 2].all() and not dd[(ss == 0) & (ss2 == 1)].any()


def test_planning_repeats_the_q_update_on_a_two_state_mdp():
    # one pair seen, (0, 0) -> r = 1 -> terminal 1: the real update takes Q(0, 0) from 0 to
    # 0.5 (alpha 0.5); each planning update then to Q + 0.5 (1 - Q): 0.75, then 0.875
    info = chain_info(2)
    for n, want in ((0, 0.5), (1, 0.75), (2, 0.875)):
        agent = DynaQ(DynaQConfig(alpha=0.5, gamma=0.9, planning_steps=n), info, CPU)
        terms = agent.update(step(0, 0, 1.0, 1, True, 2))
        assert agent.Q[0, 0].item() == pytest.approx(want) and agent.Q[1, 0] == 0.0
        assert agent.planning_updates == n and ("planning_td_error" in terms) == (n > 0)


def test_planning_carries_the_reward_back_along_a_chain():
    # 0 -> 1 -> 2 (terminal), reward 1 on the last step, alpha 1, gamma 0.9. Q-learning on the
    # two real steps leaves Q(0) = 0 (Q(1) was 0 when the first step was learned); planning
    # replays the first step with Q(1) = 1 and sets Q(0) = 0.9, as the book's maze example.
    info = chain_info(3)
    torch.manual_seed(0)
    plain = DynaQ(DynaQConfig(alpha=1.0, gamma=0.9, planning_steps=0), info, CPU)
    dyna = DynaQ(DynaQConfig(alpha=1.0, gamma=0.9, planning_steps=20), info, CPU)
    for agent in (plain, dyna):
        agent.update(step(0, 0, 0.0, 1, False, 3))
        agent.update(step(1, 0, 1.0, 2, True, 3))
    assert plain.Q[:2, 0].tolist() == [0.0, 1.0]
    assert dyna.Q[:2, 0].tolist() == pytest.approx([0.9, 1.0])


def test_dyna_q_reaches_the_optimal_policy_in_fewer_real_steps_than_q_learning():
    """gridworld-4x4, seeds 0-4, the greedy policy checked every 25 real steps.

    Measured (real steps to V* exactly): Q-learning 350, 275, 425, 150, 175 (median 275);
    Dyna-Q n = 10: 25, 150, 175, 50, 200 (median 150)."""
    task = TASKS["gridworld-4x4"]
    runs = {n: [steps_to_optimal(task, n, seed)["steps"] for seed in range(5)] for n in (0, 10)}
    assert all(s is not None for r in runs.values() for s in r), runs
    assert statistics.median(runs[10]) < statistics.median(runs[0]), runs


def test_a_dyna_q_run_writes_values_json_and_resumes_bit_exactly(tmp_path):
    base = dict(algo="dyna-q", env="gridworld-slippery", seed=3, steps=600, eval_every=200,
                eval_episodes=1, checkpoint_every=200)
    straight, _ = assert_resumes_bit_exactly(tmp_path, base, crash_at=300)
    agent, _ = load_agent(straight.run)
    assert isinstance(agent, DynaQ) and agent.planning_updates == 10 * 600
    assert int(agent.model.N.sum()) == 600  # every real step is in the model
    values = json.loads((straight.run / "values.json").read_text())
    assert values["rule"] == "dyna-q" and values["planning_steps"] == 10
    assert values["policy"] == agent.Q.argmax(-1).tolist()
    assert values["model_pairs"] == int(agent.model.seen.sum()) > 0
    assert greedy_value(agent, "gridworld-slippery") <= optimum("gridworld-slippery",
                                                                agent.cfg.gamma) + 1e-12


def test_bad_dyna_q_configs_are_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"planning_steps must be an integer >= 0, got -1"):
        DynaQConfig(planning_steps=-1)
    with pytest.raises(ValueError, match=r"planning_steps must be an integer >= 0, got -2"):
        parse_algo_options(DynaQConfig, DynaQConfig(), ["--planning-steps", "-2"], "kinema")
    cfg = parse_algo_options(DynaQConfig, DynaQConfig(), ["--planning-steps", "5"], "kinema")
    assert cfg.planning_steps == 5
    with pytest.raises(ValueError, match="dyna-q runs on tabular environments only; 'cartpole'"):
        train(TrainConfig(algo="dyna-q", env="cartpole", steps=10, runs_dir=str(tmp_path)))

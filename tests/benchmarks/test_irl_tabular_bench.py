"""`kinema bench irl --tasks maxent-...`: the fixed-horizon arrays handed to imitation's MCE-IRL,
the judge both libraries are scored by, a real Kinema run through the bench, and the report
(the peer's venv is not built here)."""

import json

import numpy as np
import pytest
import torch

import sim
from agents.classic.dynamic_programming import value_iteration
from agents.classic.tabular import Model, greedy
from benchmarks import irl, irl_tabular
from sim import tabular


def test_terminal_states_lead_to_one_absorbing_state_with_zero_features():
    env = "gridworld-slippery"
    m, T = tabular.mdp(env), sim.spec(env).max_episode_steps
    visits = np.full(m.n_states, 0.5)
    a = irl_tabular.fixed_horizon(env, visits)
    S = m.n_states
    P = a["P"]
    assert P.shape == (S + 1, m.n_actions, S + 1)
    np.testing.assert_allclose(P.sum(-1), 1.0)
    live = ~m.terminal
    np.testing.assert_array_equal(P[:S][live][:, :, :S], m.P[live])  # live rows unchanged
    assert np.all(P[:S][m.terminal][:, :, S] == 1.0) and np.all(P[S, :, S] == 1.0)
    assert a["features"].shape == (S + 1, m.features.shape[1])
    assert not a["features"][S].any() and a["p0"][S] == 0.0 and int(a["horizon"]) == T
    assert a["demo_om"].sum() == pytest.approx(T + 1) and a["demo_om"][S] == T + 1 - 0.5 * S


def test_the_judge_scores_the_expert_one_and_the_true_reward_perfectly_correlated():
    env, gamma = "gridworld-slippery", 0.99
    m = tabular.mdp(env)
    _, Q, _ = value_iteration(Model.of(m, torch.device("cpu")), gamma, 1e-10)
    true_in = np.array([1.0 if c == "G" else -1.0 if c == "H" else 0.0
                        for c in "".join(m.grid)])
    expert = irl_tabular.judge(env, true_in, greedy(Q).numpy(), gamma)
    assert expert["value_ratio"] == pytest.approx(1.0) and expert["reward_corr"] == pytest.approx(
        1.0)
    assert expert["expert_value"] == pytest.approx(0.6675, abs=1e-4)
    left = irl_tabular.judge(env, -true_in, np.zeros(m.n_states, int), gamma)
    assert left["value_ratio"] < 0.5 and left["reward_corr"] == pytest.approx(-1.0)


def test_a_kinema_run_through_the_bench_is_stored_and_reported(tmp_path):
    """gridworld-4x4, seed 0, Kinema only: 50 demonstrations of value iteration, maxent-irl for
    100 steps at most, stored per task, library and seed, and the row in the report."""
    out = tmp_path / "irl.json"
    store = irl.run(["maxent-gridworld-4x4"], [0], ["kinema"], results=out, log=lambda m: None)
    run = store["maxent-gridworld-4x4"]["kinema-maxent"]["0"]
    assert json.loads(out.read_text()) == store
    assert run["value_ratio"] >= 0.95 and run["reward_corr"] > 0.5 and run["iterations"] <= 100
    assert len(run["reward"]) == len(run["policy"]) == tabular.mdp("gridworld-4x4").n_states
    text = irl.report(store)
    assert "| maxent-gridworld-4x4 | kinema | " in text and "MCE-IRL" in text


def test_the_report_gives_medians_and_the_cpu_ratio():
    def row(ratio, cpu):
        return {"value_ratio": ratio, "reward_corr": 0.9, "iterations": 200, "train_cpu_s": cpu,
                "machine": "m"}

    store = {"maxent-gridworld-slippery": {
        "kinema-maxent": {"0": row(1.0, 2.0), "1": row(0.9, 3.0), "2": row(0.95, 4.0)},
        "imitation-maxent": {"0": row(1.0, 6.0), "1": {"error": "peer failed"}}}}
    text = irl_tabular.report(store)
    assert "| maxent-gridworld-slippery | kinema | 0.950 (0.900–1.000) | 0.90 | 200 | 3.00 |" \
        in text.splitlines()
    assert "| maxent-gridworld-slippery | imitation | 1.000 (1.000–1.000) | 0.90 | 200 | 6.00 |" \
        in text.splitlines()
    assert "Kinema / imitation 0.50x" in text
    assert irl.report(store).startswith(text.split("\n")[0])  # alone, the tabular table
    assert irl_tabular.report({}) == ""

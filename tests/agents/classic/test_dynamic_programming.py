"""Dynamic programming: value iteration against a closed form, policy iteration agrees with it on
every tabular env, exact and iterative policy evaluation agree, runs save values.json, print the
table, resume bit-exactly and refuse bad input in one line."""

import json

import numpy as np
import pytest
import torch

from agents.classic.dynamic_programming import (
    PolicyIteration,
    PolicyIterationConfig,
    ValueIteration,
    ValueIterationConfig,
    backup,
    one_hot_policy,
    policy_evaluation,
    policy_evaluation_exact,
    value_iteration,
)
from agents.classic.tabular import Model
from agents.runs.train import TrainConfig, load_agent, resume, train
from kinema.cli import main
from sim import tabular
from sim.registry import EnvInfo

CPU = torch.device("cpu")


def two_state_mdp(p: float) -> tabular.TabularMDP:
    """Two states, two actions: 'stay' earns 1 in s0 and 2 in s1; 'move' earns 0 and reaches the
    other state with probability p (else stays)."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[1, 0, 1] = 1.0
    P[0, 1] = [1 - p, p]
    P[1, 1] = [p, 1 - p]
    R = np.zeros((2, 2, 2))
    R[0, 0, 0], R[1, 0, 1] = 1.0, 2.0
    return tabular.TabularMDP("two-state", P, R, np.array([1.0, 0.0]), np.zeros(2, bool),
                              np.eye(2), ("s0", "s1"), ("stay", "move"))


def info_of(m: tabular.TabularMDP) -> EnvInfo:
    return EnvInfo((m.n_states,), "float32", True, (), m.n_actions, None, None, 1.0, m.name)


def converge(agent, limit: int = 100_000):
    for _ in range(limit):
        agent.update({})
        if agent.converged:
            return agent
    raise AssertionError("did not converge")


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_value_iteration_matches_the_closed_form_of_a_two_state_mdp(p):
    gamma, tol = 0.9, 1e-8
    m = two_state_mdp(p)
    vi = converge(ValueIteration(ValueIterationConfig(gamma=gamma, tol=tol), info_of(m), CPU, m))
    # s1: stay forever, 2 / (1 - gamma). s0: stay (1 / (1 - gamma)) or move: V0 = gamma (p V1 +
    # (1 - p) V0)  =>  V0 = gamma p V1 / (1 - gamma (1 - p)); with gamma 0.9 moving is better.
    v1 = 2 / (1 - gamma)
    v0 = max(1 / (1 - gamma), gamma * p * v1 / (1 - gamma * (1 - p)))
    assert abs(float(vi.V[0]) - v0) <= tol and abs(float(vi.V[1]) - v1) <= tol
    assert vi.bound <= tol and vi.policy.tolist() == [1, 0]
    q00 = 1 + gamma * v0  # the closed-form Q of staying in s0
    assert float(vi.Q[0, 0]) == pytest.approx(q00, abs=1e-7)
    assert vi.values()["bound"] <= tol and vi.values()["converged"]
    V, Q, sweeps = value_iteration(Model.of(m, CPU), gamma, tol)  # the same, in one call
    assert torch.equal(V, vi.V) and torch.equal(Q, vi.Q) and sweeps == vi.sweeps


@pytest.mark.parametrize("name", tabular.names())
def test_policy_iteration_and_value_iteration_agree(name):
    m = tabular.mdp(name)
    info = info_of(m)
    vi = converge(ValueIteration(ValueIterationConfig(tol=1e-8), info, CPU))
    pi = converge(PolicyIteration(PolicyIterationConfig(), info, CPU))
    assert torch.allclose(vi.V, pi.V, atol=1e-7, rtol=0)
    # VI's greedy policy is optimal too: its exact value is PI's (a policy within tol of V*)
    model = Model.of(m, CPU)
    v_greedy = policy_evaluation_exact(one_hot_policy(vi.policy, m.n_actions), model, 0.99)
    assert torch.allclose(v_greedy, pi.V, atol=1e-6, rtol=0)
    assert pi.improvements < 50


def test_exact_policy_evaluation_equals_iterative():
    m = tabular.mdp("frozenlake-8x8")
    model = Model.of(m, CPU)
    g = torch.Generator().manual_seed(0)
    pi = torch.softmax(torch.randn(m.n_states, m.n_actions, generator=g, dtype=torch.float64),
                       -1)  # a stochastic policy
    exact = policy_evaluation_exact(pi, model, 0.95)
    V, sweeps = policy_evaluation(pi, model, 0.95, tol=1e-10)
    assert sweeps > 10 and torch.allclose(V, exact, atol=1e-10, rtol=0)
    # and it is the fixed point of the Bellman backup under pi
    assert torch.allclose((pi * backup(exact, model, 0.95)).sum(-1), exact, atol=1e-12)


def test_policy_iteration_with_iterative_evaluation_is_optimal_too():
    info = info_of(tabular.mdp("gridworld-slippery"))
    exact = converge(PolicyIteration(PolicyIterationConfig(), info, CPU))
    it = converge(PolicyIteration(PolicyIterationConfig(evaluation="iterative"), info, CPU))
    assert torch.allclose(exact.V, it.V, atol=1e-8, rtol=0) and it.sweeps > it.improvements


def test_cli_trains_prints_the_grid_writes_values_and_plays_the_bundle(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "value-iteration", "--env", "gridworld-4x4", "--runs-dir", str(runs),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "V(s):" in out and "→" in out and "↓" in out and "converged" in out
    (run,) = runs.iterdir()
    values = json.loads((run / "values.json").read_text())
    assert values["converged"] and values["bound"] <= values["tolerance"] == 1e-6
    assert values["V"][0] == pytest.approx(0.99 ** 5) and len(values["Q"]) == 16
    bundle = tmp_path / "bundle"
    assert main(["export", str(run), "--out", str(bundle), "--json"]) == 0
    assert main(["run", str(bundle), "--env", "gridworld-4x4", "--rate", "0", "--episodes", "2",
                 "--json"]) == 0
    played = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert played["return_mean"] == 1.0 and played["episodes"] == 2


@pytest.mark.parametrize("algo", ["value-iteration", "policy-iteration"])
def test_resume_is_bit_exact(tmp_path, algo):
    base = dict(algo=algo, env="gridworld-slippery", seed=0, eval_every=2, eval_episodes=2,
                checkpoint_every=2, steps=6)
    cfg = {"policy-iteration": PolicyIterationConfig(evaluation="iterative"),
           "value-iteration": ValueIterationConfig()}[algo]
    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")), cfg)

    class Crash(Exception):
        pass

    def crash(p):
        if p.step >= 3:
            raise Crash

    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path / "b")), cfg, on_progress=crash)
    (crashed,) = (tmp_path / "b").iterdir()
    resumed = resume(crashed)
    assert resumed.loop.step == straight.loop.step == 6
    a, _ = load_agent(straight.run)
    b, _ = load_agent(resumed.run)
    for k in ("V", "Q", "policy"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    assert a.sweeps == b.sweeps
    assert (straight.run / "values.json").read_text() == (resumed.run / "values.json").read_text()


@pytest.mark.parametrize("make, match", [
    (lambda: ValueIterationConfig(gamma=1.0), r"gamma must be a number in \[0, 1\), got 1.0"),
    (lambda: ValueIterationConfig(tol=0.0), "tol must be a finite number > 0, got 0.0"),
    (lambda: PolicyIterationConfig(evaluation="guess"),
     "evaluation must be one of exact, iterative, got 'guess'"),
])
def test_bad_configs_are_one_line(make, match):
    with pytest.raises(ValueError, match=match) as e:
        make()
    assert "\n" not in str(e.value)


def test_a_non_tabular_env_is_refused_before_the_run_folder_exists(tmp_path):
    with pytest.raises(ValueError, match="value-iteration runs on tabular environments only; "
                                         "'cartpole' is not one; tabular environments: "):
        train(TrainConfig(algo="value-iteration", env="cartpole", runs_dir=str(tmp_path / "r")))
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())

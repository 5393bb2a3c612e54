"""TD-MPC2's exports: the latent planner as a stateful bundle (`kinema export` by default) that
plans as the agent plans on the same noise, and the prior alone as a feed-forward bundle."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
import pytest
import torch

import sim
from agents.latent.export import ExportedLatentMPPI, PriorPolicy
from agents.latent.tdmpc import TDMPC, TDMPCConfig
from agents.registry import algorithm
from agents.runs.train import TrainConfig, load_agent, train
from deploy.contract import Contract
from deploy.runtime import OnnxPolicy
from kinema.cli import main

ENV = "pendulum"
SMALL: dict[str, Any] = dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_samples=32, num_elites=8,
             num_pi_trajs=4, iterations=2, learning_starts=100, batch_size=32,
             buffer_size=1_000, lr=3e-3)
"""A CPU-second model and planner: every piece of the graph, at toy sizes; a high learning
rate, so 200 updates give returns that differ by more than float32 rounding (a planner that
ranks near-equal returns can pick other elites in onnxruntime than in torch)."""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tdmpc run on pendulum, 300 env steps: 200 updates, so rewards and values are learned
    (distinct returns: the planner's ranking is not decided by rounding)."""
    cfg = dataclasses.replace(algorithm("tdmpc").preset(ENV), **SMALL)
    root = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(algo="tdmpc", env=ENV, steps=300, eval_every=300,
                             eval_episodes=1, runs_dir=str(root)), cfg).run


def _robot_units(action: torch.Tensor) -> np.ndarray:
    info = sim.spec(ENV).info
    low, high = np.asarray(info.action_low), np.asarray(info.action_high)
    return low + (action.numpy().astype(np.float64) + 1.0) * 0.5 * (high - low)


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_kinema_export_ships_the_planner_and_it_plans_as_the_agent(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "planner"
    assert main(["export", str(run), "--out", str(bundle), "--json"]) == 0
    assert _json(capsys)["parity_max_abs_error"] <= 1e-4
    c = Contract.load(bundle)
    agent = cast(TDMPC, load_agent(run)[0])
    s = agent.cfg
    assert c.stateful and [(x.input, x.output, x.shape) for x in c.state] == [
        ("plan", "plan_out", (1, s.horizon, 1))]
    assert {n.name: n.shape for n in c.noise} == {
        "sample_noise": (s.iterations, s.num_samples - s.num_pi_trajs, 1, s.horizon, 1),
        "pi_noise": (s.horizon, s.num_pi_trajs, 1, 1),
        "value_noise": (s.iterations, s.num_samples, 1, 1),
        "member_noise": (s.iterations, s.num_q)}
    assert c.parity_samples > 32  # random observations and the rollout's
    # Mish as Exp/Mul/Add/Div: onnxruntime's Softplus kernel (its Mish expands to it) is slow
    ops = {n.op_type for n in onnx.load(str(bundle / "policy.onnx")).graph.node}
    assert "Exp" in ops and not ops & {"Softplus", "Mish"}

    # The agent's own deterministic planning, given the noise the runtime draws for the
    # bundle: the same actions, warm start carried from call to call.
    policy = OnnxPolicy(bundle)
    rng = np.random.Generator(np.random.PCG64(c.noise_seed))
    draws = [{n.name: torch.from_numpy(rng.standard_normal(n.shape, dtype=np.float32))
              for n in c.noise} for _ in range(6)]
    feed = iter(draws)
    agent.planner.draw_noise = lambda *args, **kwargs: next(feed)  # type: ignore[method-assign]
    agent.reset_evaluation()
    e = sim.make(ENV, seed=3)
    obs, _ = e.reset(seed=3)
    got, want = [], []
    for _ in range(len(draws)):
        got.append(policy(obs))
        action = agent.act(obs[None], deterministic=True)  # in [-1, 1]
        want.append(_robot_units(action)[0])
        obs = e.step(action[0].numpy())[0]
    e.close()
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-4)
    # the warm start the bundle carries is the agent's: its plan shifted by one, padded with 0
    assert agent._eval is not None
    carried = policy._state_in[0]
    np.testing.assert_allclose(np.asarray(carried, np.float64), agent._eval.warm.double().numpy(),
                               atol=1e-4)
    assert carried.shape == (1, s.horizon, 1) and carried[0, -1, 0] == 0.0
    assert isinstance(agent.inference_module(), ExportedLatentMPPI)

    assert main(["run", str(bundle), "--episodes", "1", "--rate", "0", "--json"]) == 0
    report = _json(capsys)
    assert report["episodes"] == 1 and report["stop_reason"] == "completed"


def test_the_prior_alone_exports_feed_forward(run: Path, tmp_path: Path) -> None:
    # a planning run's prior, from the command line
    assert main(["export", str(run), "--out", str(tmp_path / "prior"), "--prior"]) == 0
    c = Contract.load(tmp_path / "prior")
    assert not c.stateful and c.parity_max_abs_error <= 1e-4
    agent = cast(TDMPC, load_agent(run)[0])
    others = {}
    for field in ("export_planner", "plan"):  # either switch gives the prior alone
        cfg = dataclasses.replace(agent.cfg, **{field: False})
        others[field] = cast(TDMPC, algorithm("tdmpc").make_agent(
            cfg, agent.info, torch.device("cpu")))
        others[field].load_state_dict(agent.state_dict())
        assert isinstance(others[field].inference_module(), PriorPolicy)
    # the bundle is what a prior-acting agent does, deterministically
    prior = others["plan"]
    obs = np.stack([sim.make(ENV).reset(seed=i)[0] for i in range(8)])
    policy = OnnxPolicy(tmp_path / "prior")
    got = np.stack([policy(o) for o in obs])
    np.testing.assert_allclose(got, _robot_units(prior.act(obs, deterministic=True)),
                               atol=1e-5)


@pytest.mark.bad_input
def test_a_planner_without_prior_trajectories_is_refused_in_one_line() -> None:
    info = sim.spec(ENV).info
    cfg = dataclasses.replace(TDMPCConfig(), **{**SMALL, "num_pi_trajs": 0})
    agent = cast(TDMPC, algorithm("tdmpc").make_agent(cfg, info, torch.device("cpu")))
    with pytest.raises(ValueError, match=r"^num_pi_trajs is 0; the planner exports with at "
                                         r"least 1 prior trajectory") as e:
        agent.inference_module()
    assert "\n" not in str(e.value)
    assert isinstance(agent.prior_module(), PriorPolicy)  # the prior still exports


@pytest.mark.bad_input
def test_export_prior_of_a_run_without_a_prior_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import agents.runs.train as runs_train

    class SacRun:
        path, algo, env = tmp_path / "pendulum-sac-1", "sac", ENV

    monkeypatch.setattr(runs_train, "load_agent", lambda path: (object(), SacRun()))
    assert main(["export", str(tmp_path), "--prior"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--prior exports the policy prior of a latent planner (tdmpc); pendulum-sac-1 is a " \
           "sac run, whose bundle is its policy: drop --prior" in err and "\n" not in err
    assert not (tmp_path / "pendulum-sac-1").exists()

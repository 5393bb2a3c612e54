"""Stateful bundles: state carried between calls and noise drawn by the runtime, through export,
contract.json, OnnxPolicy and the runner; feed-forward bundles stay as they were."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from deploy.contract import BundleError, Contract, NoiseInput, StateIO
from deploy.export import ExportError, export_bundle
from deploy.runtime import OnnxPolicy, Runner, SafetyLayer, SimRobot

NOISE_SEED = 7
GRAPH_IO = {
    "state": [{"input": "plan", "output": "plan_out", "shape": [4, 1], "initial": 0.0},
              {"input": "clock", "output": "clock_out", "shape": [1], "initial": 0.5}],
    "noise": [{"name": "noise", "shape": [4, 2]}],
}


class StatefulPendulum(nn.Module):
    """A toy planner: action = 2 tanh(W obs + plan[0] + 0.1 noise[0, 0]) (pendulum's [-2, 2]);
    plan_out = 0.5 plan + 0.1 tanh(V obs) + 0.05 noise[:, 1:]; clock_out = clock + 1."""

    graph_io = GRAPH_IO

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.w = nn.Linear(3, 1)
        self.v = nn.Linear(3, 1)

    def forward(self, obs: torch.Tensor, plan: torch.Tensor, clock: torch.Tensor,
                noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # obs [1, 3], plan [4, 1], clock [1], noise [4, 2]
        action = 2.0 * torch.tanh(self.w(obs) + plan[0] + 0.1 * noise[0, 0])  # [1, 1]
        plan_out = 0.5 * plan + 0.1 * torch.tanh(self.v(obs)) + 0.05 * noise[:, 1:]
        return action, plan_out, clock + 1.0


@pytest.fixture(scope="module")
def stateful_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "stateful"
    export_bundle(StatefulPendulum(), env="pendulum", out_dir=out, noise_seed=NOISE_SEED)
    return out


@pytest.fixture
def stateful_copy(stateful_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(stateful_bundle, tmp_path / "b"))


def _by_hand(module: nn.Module, obs: list[np.ndarray], resets: tuple[int, ...] = ()) -> list:
    """The torch module called as the runtime calls the graph: noise from PCG64(NOISE_SEED)
    before each call, state outputs fed back, state refilled at the calls in `resets`."""
    rng = np.random.Generator(np.random.PCG64(NOISE_SEED))
    initial = [np.zeros((4, 1), np.float32), np.full(1, 0.5, np.float32)]
    state = [a.copy() for a in initial]
    actions = []
    for i, o in enumerate(obs):
        if i in resets:
            state = [a.copy() for a in initial]
        noise = rng.standard_normal((4, 2), dtype=np.float32)
        with torch.no_grad():
            action, *state_t = module(*(torch.from_numpy(a) for a in (o[None], *state, noise)))
        state = [t.numpy() for t in state_t]
        actions.append(action.numpy()[0])
    return actions


def _one_line(e: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(e.value)
    assert "\n" not in text and text
    return text


def test_stateful_contract_round_trips_through_json(
    stateful_bundle: Path, pendulum_bundle: Path, tmp_path: Path
) -> None:
    c = Contract.load(stateful_bundle)
    assert c.stateful and c.noise_seed == NOISE_SEED
    assert c.state == (StateIO("plan", "plan_out", (4, 1), 0.0), StateIO("clock", "clock_out",
                                                                          (1,), 0.5))
    assert c.noise == (NoiseInput("noise", (4, 2)),)
    assert c.parity_samples == 32 and c.parity_max_abs_error <= 1e-4 and c.quantization is None
    c.save(tmp_path)
    assert Contract.load(tmp_path, check_hash=False) == c
    data = json.loads((stateful_bundle / "contract.json").read_text())
    assert data["state"][1] == {"input": "clock", "output": "clock_out", "shape": [1],
                                "initial": 0.5}
    assert data["noise"] == [{"name": "noise", "shape": [4, 2]}] and data["noise_seed"] == 7
    # the graph really is the fixed-shape stateful one
    graph = onnx.load(stateful_bundle / "policy.onnx").graph
    assert [i.name for i in graph.input] == ["obs", "plan", "clock", "noise"]
    assert [o.name for o in graph.output] == ["action", "plan_out", "clock_out"]
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 3]
    # a feed-forward contract.json carries none of the new keys
    ff = json.loads((pendulum_bundle / "contract.json").read_text())
    assert not {"state", "noise", "noise_seed"} & set(ff)
    assert not Contract.load(pendulum_bundle).stateful


def test_onnx_policy_carries_state_like_torch_on_the_same_noise(stateful_bundle: Path) -> None:
    policy = OnnxPolicy(stateful_bundle)
    obs = [np.array([1.0, 0.0, 0.3], np.float32), np.array([0.6, 0.8, -1.0], np.float32),
           np.array([-0.2, 0.98, 2.0], np.float32)]
    got = [policy(o) for o in obs]
    want = _by_hand(StatefulPendulum(), obs)
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-5)
    # the carried state matters: on the same noise, a reset state gives another action
    fresh = OnnxPolicy(stateful_bundle)
    fresh(obs[0])
    fresh.reset()
    assert not np.allclose(fresh(obs[1]), got[1], atol=1e-3)
    assert policy._state_in[1][0] == pytest.approx(3.5)  # clock: 0.5 + three calls
    assert got[0].dtype == np.float32 and got[0].shape == (1,)


def test_reset_restores_the_initial_state_and_the_noise_continues(stateful_bundle: Path) -> None:
    policy = OnnxPolicy(stateful_bundle)
    obs = [np.array([1.0, 0.0, 0.3], np.float32), np.array([0.6, 0.8, -1.0], np.float32)] * 2
    got = []
    for i, o in enumerate(obs):
        if i == 2:
            policy.reset()
            assert policy._state_in[1][0] == 0.5 and not policy._state_in[0].any()
        got.append(policy(o))
    want = _by_hand(StatefulPendulum(), obs, resets=(2,))
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-5)
    # same seed, same observations, same resets: the same actions from another load
    again = OnnxPolicy(stateful_bundle)
    replay = [(again.reset() if i == 2 else None, again(o))[1] for i, o in enumerate(obs)]
    np.testing.assert_array_equal(np.stack(replay), np.stack(got))


def test_feed_forward_bundle_is_unaffected(pendulum_bundle: Path) -> None:
    policy = OnnxPolicy(pendulum_bundle)
    assert policy._bound  # still the IOBinding fast path
    obs = np.array([0.6, 0.8, -1.0], np.float32)
    first = policy(obs)
    policy.reset()  # nothing to reset
    np.testing.assert_array_equal(policy(obs), first)
    assert Contract.load(pendulum_bundle).parity_samples == 1000


def test_runner_resets_the_policy_at_each_episode_start(stateful_bundle: Path) -> None:
    policy = OnnxPolicy(stateful_bundle)
    resets: list[int] = []
    robot = SimRobot("pendulum", seed=0)

    class Counting:
        def __call__(self, obs: np.ndarray) -> np.ndarray:
            return policy(obs)

        def reset(self) -> None:
            resets.append(robot.steps)
            policy.reset()

    report = Runner(Counting(), robot, SafetyLayer(policy.contract), rate_hz=0).run(episodes=2)
    assert report.episodes == 2 and report.stop_reason == "completed"
    assert resets == [0, 200, 400]  # run start, then after each 200-step pendulum episode
    assert policy._state_in[1][0] == pytest.approx(0.5)  # reset after the last episode


def test_kinema_run_drives_a_stateful_bundle(
    stateful_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kinema.cli import main

    code = main(["run", str(stateful_bundle), "--env", "pendulum", "--episodes", "1",
                 "--rate", "0", "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and report["episodes"] == 1 and report["steps"] == 200
    assert report["stop_reason"] == "completed" and report["inference_p50_us"] > 0


@pytest.mark.bad_input
def test_quantizing_a_stateful_graph_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as e:
        export_bundle(StatefulPendulum(), env="pendulum", out_dir=tmp_path / "q", quantize="int8")
    assert "feed-forward graphs only" in _one_line(e)
    assert not (tmp_path / "q").exists()


def _with_io(io: dict[str, Any]) -> nn.Module:
    module = StatefulPendulum()
    module.graph_io = io  # an instance attribute shadows the class's
    return module


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("io", "message"),
    [
        ({"state": [{"input": "plan", "output": "plan", "shape": [4, 1]}]},
         "graph name 'plan' is used twice"),
        ({"noise": [{"name": "obs", "shape": [4, 2]}]}, "graph name 'obs' is used twice"),
        ({"noise": [{"name": "n", "shape": [4, 0]}]}, r"has shape \[4, 0\]; expected a list"),
        ({"noise": [{"name": "n", "shape": []}]}, r"has shape \[\]; expected a list of one"),
        ({"noise": [{"name": "n", "shape": [2.5]}]}, r"\['shape'\]\[0\] is 2.5; expected an"),
        ({"noise": [{"name": "n"}]}, "is missing 'shape'"),
        ({"state": [{"input": "a", "output": "b", "shape": [1], "init": 0}]},
         r"unknown key\(s\) \['init'\]"),
        ({"states": []}, r"graph_io has unknown key\(s\) \['states'\]"),
    ],
)
def test_bad_graph_io_is_refused_before_export(
    tmp_path: Path, io: dict[str, Any], message: str
) -> None:
    with pytest.raises(ExportError, match=message) as e:
        export_bundle(_with_io(io), env="pendulum", out_dir=tmp_path / "b")
    _one_line(e)
    assert not (tmp_path / "b").exists()


class ShortPlan(StatefulPendulum):
    """Returns a plan one step shorter than graph_io declares."""

    def forward(self, obs: torch.Tensor, plan: torch.Tensor, clock: torch.Tensor,
                noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        action, plan_out, clock_out = super().forward(obs, plan, clock, noise)
        return action, plan_out[1:], clock_out


@pytest.mark.bad_input
def test_a_module_that_breaks_its_graph_io_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as e:
        export_bundle(ShortPlan(), env="pendulum", out_dir=tmp_path / "b")
    assert "returned state 'plan_out' of shape (3, 1); graph_io declares [4, 1]" in _one_line(e)
    io = {**GRAPH_IO, "state": [{**GRAPH_IO["state"][0], "shape": [3, 1]}, GRAPH_IO["state"][1]]}
    with pytest.raises(ExportError) as e:  # a plan [3, 1] does not fit the module's [4, 1] math
        export_bundle(_with_io(io), env="pendulum", out_dir=tmp_path / "b")
    assert "raised RuntimeError on its graph_io inputs (obs [1, 3], plan [3, 1]" in _one_line(e)
    with pytest.raises(ExportError, match="noise_seed is 3 but there are no noise inputs"):
        export_bundle(_with_io({"state": GRAPH_IO["state"]}), env="pendulum",
                      out_dir=tmp_path / "c", noise_seed=3)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["state"][0].update(output="clock"), "graph name 'clock' is used twice"),
        (lambda d: d["noise"][0].update(name="action"), "graph name 'action' is used twice"),
        (lambda d: d["noise"][0].update(shape=[4, -2]), r"has shape \[4, -2\]"),
        (lambda d: d["state"][0].update(initial="zero"), r"\['initial'\] is 'zero'; expected a"),
        (lambda d: d.update(noise_seed=-1), "noise_seed is -1; expected an integer >= 0"),
        (lambda d: d.update(noise_seed=1.5), "'noise_seed' is 1.5; expected an integer"),
        (lambda d: d.update(state={"input": "plan"}), "'state' is .*; expected a list of"),
    ],
)
def test_bad_stateful_contract_fields_name_the_field(
    stateful_copy: Path, edit: Any, message: str
) -> None:
    path = stateful_copy / "contract.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message) as e:
        Contract.load(stateful_copy)
    assert "contract.json" in _one_line(e)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["state"][0].update(shape=[5, 1]),
         r"input 'plan' has shape \[4, 1\]; contract.json says \[5, 1\]"),
        (lambda d: d["noise"][0].update(name="eps"), r"has inputs \['obs', 'plan', 'clock', "
                                                     r"'noise'\]; contract.json .* expects"),
        (lambda d: d.update(noise=[], noise_seed=0), "has inputs"),
        (lambda d: d["state"][1].update(output="tick"), r"has outputs \['action', 'plan_out', "
                                                        r"'clock_out'\]"),
    ],
)
def test_graph_that_does_not_match_its_stateful_contract_is_refused(
    stateful_copy: Path, edit: Any, message: str
) -> None:
    path = stateful_copy / "contract.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message) as e:
        OnnxPolicy(stateful_copy)
    _one_line(e)


@pytest.mark.bad_input
def test_stateful_contract_over_a_dynamic_batch_graph_is_refused(
    tmp_path: Path, contract_for: Callable[..., Contract]
) -> None:
    """A graph with a symbolic batch under a contract that declares noise: stateful graphs run
    one observation per call, with fixed shapes."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["obs", "axes"], ["action"], keepdims=1)], "g",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("n", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 1])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    blob = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)],
                             ir_version=10).SerializeToString()
    (tmp_path / "policy.onnx").write_bytes(blob)
    contract_for(blob, noise=(NoiseInput("n", (2,)),)).save(tmp_path)
    with pytest.raises(BundleError, match=r"input 'obs' has shape \['batch', 3\]; contract.json "
                                          r"says \[1, 3\]") as e:
        OnnxPolicy(tmp_path)
    _one_line(e)
    contract_for(blob).save(tmp_path)  # the same graph as a feed-forward bundle: extra input
    with pytest.raises(BundleError, match="exactly one input named 'obs'"):
        OnnxPolicy(tmp_path)


def test_the_ros_node_drives_a_stateful_bundle(ros_probe: Any, stateful_bundle: Path) -> None:
    """`kinema ros` runs the bundle through the same OnnxPolicy: one command per observation
    (observation trigger), the state carried between them, as torch does by hand."""
    pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")
    from deploy.ros import PolicyNode

    policy = OnnxPolicy(stateful_bundle)
    node = PolicyNode(policy, policy.contract, context=ros_probe.node.context,
                      trigger="observation", warmup_steps=0, watchdog_s=5.0, max_misses=1000)
    ros_probe.add(node)
    obs = [np.array([np.cos(t), np.sin(t), 0.5 - t], np.float32) for t in (0.1, 0.7, 1.3, 2.0)]
    try:
        for i, o in enumerate(obs):
            ros_probe.publish_obs(o.tolist())
            assert ros_probe.wait_for(lambda i=i: len(ros_probe.commands) > i, 5.0), i
        want = _by_hand(StatefulPendulum(), obs)
        np.testing.assert_allclose(np.stack(ros_probe.commands[:4]), np.stack(want), atol=1e-5)
        assert node.steps == 4 and policy._state_in[1][0] == pytest.approx(4.5)
        # A new episode announced on the reset topic: the state starts again from its initial
        # value before the next observation is acted on (the noise stream continues).
        ros_probe.reset()
        for i, o in enumerate(obs[:2], start=4):
            ros_probe.publish_obs(o.tolist())
            assert ros_probe.wait_for(lambda i=i: len(ros_probe.commands) > i, 5.0), i
        want = _by_hand(StatefulPendulum(), obs + obs[:2], resets=(4,))
        np.testing.assert_allclose(np.stack(ros_probe.commands[4:6]), np.stack(want[4:]),
                                   atol=1e-5)
        assert node.resets == 1 and node.status()["resets"] == 1
    finally:
        node.destroy_node()

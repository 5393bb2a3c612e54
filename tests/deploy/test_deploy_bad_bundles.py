"""Bundles that must never run: each refused at load with one clear sentence, by the library
and by the `kinema run` / `kinema ros` commands (exit 2, no traceback)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from deploy.contract import BundleError, Contract, sha256_bytes
from deploy.runtime import OnnxPolicy, run_bundle
from kinema.cli import main


def _with_unknown_op(bundle: Path) -> None:
    """Hand-edit the graph: its first Tanh becomes an operator onnxruntime has never heard of;
    the contract's hash is updated, so only the operator is wrong."""
    model = onnx.load(bundle / "policy.onnx")
    node = next(n for n in model.graph.node if n.op_type == "Tanh")
    node.op_type, node.domain = "WarpDrive", "ai.kinema.test"
    model.opset_import.append(onnx.helper.make_opsetid("ai.kinema.test", 1))
    blob = model.SerializeToString()
    (bundle / "policy.onnx").write_bytes(blob)
    c = Contract.load(bundle, check_hash=False)
    dataclasses.replace(c, policy_sha256=sha256_bytes(blob)).save(bundle)


def test_deploy_unknown_operator_is_refused(bundle_copy: Path) -> None:
    _with_unknown_op(bundle_copy)
    Contract.load(bundle_copy)  # the contract itself is fine...
    with pytest.raises(BundleError, match=r"onnxruntime cannot load policy\.onnx.*WarpDrive"):
        OnnxPolicy(bundle_copy)  # ...the graph is not


def test_deploy_graph_observation_size_must_match_the_contract(
    contract_for: Callable[..., Contract], tmp_path: Path
) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["obs", "axes"], ["action"], keepdims=1)], "wide",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 1])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    blob = model.SerializeToString()
    bundle = tmp_path / "wide"
    bundle.mkdir()
    (bundle / "policy.onnx").write_bytes(blob)
    contract_for(blob).save(bundle)  # says obs_dim 3
    with pytest.raises(BundleError, match=r"input 'obs' has shape \['batch', 5\].*\[batch, 3\]"):
        OnnxPolicy(bundle)


def test_deploy_wrong_observation_size_at_run_time_is_refused(pendulum_bundle: Path) -> None:
    with pytest.raises(ValueError, match=r"bundle \(made for 'pendulum'\) needs \(3,\)"):
        run_bundle(pendulum_bundle, "cartpole", rate_hz=0, steps=1)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing_policy", r"policy\.onnx' is missing"),
        ("missing_contract", r"contract\.json' is missing"),
        ("hash", "has sha256 .* the graph was changed after export"),
        ("unknown_op", r"onnxruntime cannot load policy\.onnx"),
    ],
)
@pytest.mark.parametrize("command", ["run", "ros"])
def test_deploy_cli_refuses_bad_bundles_in_one_line(
    bundle_copy: Path, capsys: pytest.CaptureFixture[str], damage: str, message: str,
    command: str,
) -> None:
    if command == "ros":
        pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")
    if damage == "missing_policy":
        (bundle_copy / "policy.onnx").unlink()
    elif damage == "missing_contract":
        (bundle_copy / "contract.json").unlink()
    elif damage == "hash":
        with open(bundle_copy / "policy.onnx", "ab") as f:
            f.write(b"\0")
    else:
        _with_unknown_op(bundle_copy)
    assert main([command, str(bundle_copy), "--duration" if command == "ros" else "--steps",
                 "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kinema {command}: error: ") and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err

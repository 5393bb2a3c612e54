"""`--quantize int8`: the shipped graph's error and speed are measured and recorded, and a graph
above the bound is refused without writing anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from deploy.contract import BundleError, Contract
from deploy.export import ExportError, export_bundle
from deploy.runtime import OnnxPolicy


def test_deploy_int8_bundle_records_error_and_speed(
    pendulum_int8_bundle: Path, pendulum_policy: nn.Module
) -> None:
    c = Contract.load(pendulum_int8_bundle)
    q = c.quantization
    assert q is not None and q.scheme == "int8-dynamic"
    assert q.metric == "max_abs_error_over_range" and q.bound == 0.02
    assert 0 < q.error <= q.bound and q.max_abs_error == pytest.approx(q.error * 4.0)
    assert q.samples == 1000 and q.float_p50_us > 0 and q.quantized_p50_us > 0
    assert c.parity_max_abs_error <= 1e-4  # the float graph passed parity first

    ops = {n.op_type for n in onnx.load(pendulum_int8_bundle / "policy.onnx").graph.node}
    assert "MatMulInteger" in ops  # the shipped graph really is the int8 one
    policy = OnnxPolicy(pendulum_int8_bundle)
    obs = np.random.default_rng(1).uniform(-1, 1, (100, 3)).astype(np.float32)
    with torch.no_grad():
        want = pendulum_policy(torch.from_numpy(obs)).numpy()
    got = np.stack([policy(o) for o in obs])
    assert np.max(np.abs(got - want)) <= q.max_abs_error + 1e-6


def test_deploy_int8_above_the_bound_is_refused(tmp_path: Path, pendulum_policy: nn.Module) -> None:
    with pytest.raises(ExportError, match=r"int8 quantization has max abs error over range .* "
                                          r"the bound is 1e-06"):
        export_bundle(pendulum_policy, env="pendulum", out_dir=tmp_path / "q", quantize="int8",
                      quantize_bound=1e-6)
    assert not (tmp_path / "q").exists()


def test_deploy_int8_discrete_uses_the_action_mismatch_rate(
    tmp_path: Path, cartpole_policy: nn.Module
) -> None:
    c = export_bundle(cartpole_policy, env="cartpole", out_dir=tmp_path / "q", quantize="int8",
                      quantize_bound=0.5)
    assert c.quantization is not None and c.quantization.metric == "action_mismatch_rate"
    assert 0 <= c.quantization.error <= 0.5


def test_deploy_unknown_quantization_is_refused(tmp_path: Path, pendulum_policy: nn.Module) -> None:
    with pytest.raises(ExportError, match="quantize 'int4' is not supported; use one of int8"):
        export_bundle(pendulum_policy, env="pendulum", out_dir=tmp_path / "q", quantize="int4")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"extra": 1}, r"unknown key\(s\) \['extra'\]"),
        ({"metric": "vibes"}, "metric 'vibes' is not one of"),
        ({"error": 0.5}, "must be within"),
        ({"samples": "many"}, r"\['samples'\] is 'many'; expected an integer"),
    ],
)
def test_deploy_quantization_field_is_strict(
    tmp_path: Path, pendulum_int8_bundle: Path, edit: dict, message: str
) -> None:
    shutil.copytree(pendulum_int8_bundle, tmp_path / "q")
    path = tmp_path / "q" / "contract.json"
    data = json.loads(path.read_text())
    data["quantization"].update(edit)
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message):
        Contract.load(tmp_path / "q")

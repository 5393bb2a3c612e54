"""OnnxPolicy: checks the graph against its contract at load, and one observation per call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from deploy.contract import BundleError
from deploy.runtime import OnnxPolicy


def test_wrong_observation_size_is_a_clear_error(pendulum_bundle: Path) -> None:
    policy = OnnxPolicy(pendulum_bundle)
    with pytest.raises(ValueError, match=r"shape \(4,\); this bundle takes \(3,\)"):
        policy(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"shape \(1, 3\)"):
        policy(np.zeros((1, 3), np.float32))


def test_calls_return_fresh_float32_arrays(graph_bundle: Callable[..., Path]) -> None:
    policy = OnnxPolicy(graph_bundle(value=0.25))
    a = policy(np.ones(3))  # float64 input is accepted and cast
    b = policy(np.zeros(3, np.float32))
    assert a.dtype == np.float32 and a.shape == (1,) and a[0] == pytest.approx(0.25)
    a[0] = 9.0
    assert b[0] == pytest.approx(0.25)  # no aliasing of an internal buffer


def test_tampered_graph_is_refused_at_load(bundle_copy: Path) -> None:
    (bundle_copy / "policy.onnx").write_bytes(b"not a graph")
    with pytest.raises(BundleError, match="sha256"):
        OnnxPolicy(bundle_copy)


def test_graph_with_wrong_input_name_is_refused(graph_bundle: Callable[..., Path]) -> None:
    with pytest.raises(BundleError, match="exactly one input named 'obs'"):
        OnnxPolicy(graph_bundle(in_name="state"))


def test_graph_that_disagrees_with_contract_dims_is_refused(
    graph_bundle: Callable[..., Path],
) -> None:
    bundle = graph_bundle(act_dim=2)  # contract says act_dim 1
    with pytest.raises(BundleError, match=r"output 'action' has shape \['batch', 2\]"):
        OnnxPolicy(bundle)


def test_discrete_policy_outputs_an_index(cartpole_bundle: Path) -> None:
    action = OnnxPolicy(cartpole_bundle)(np.zeros(4, np.float32))
    assert action.shape == (1,) and action[0] in (0.0, 1.0)

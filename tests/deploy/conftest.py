"""Shared pieces for the deploy tests: small hand-built policies and bundles exported once.

Helpers are handed out as fixtures (not imported from here) so the tests work under any
pytest import mode.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from deploy.contract import Contract, sha256_bytes
from deploy.export import export_bundle


class PendulumPolicy(nn.Module):
    """MLP with tanh squashing scaled to pendulum's torque bounds [-2, 2]."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 1))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return 2.0 * torch.tanh(self.net(obs))


class CartpolePolicy(nn.Module):
    """Q-network argmax: the action index as a float, [batch, 1]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).argmax(-1, keepdim=True).float()


@pytest.fixture
def pendulum_policy() -> PendulumPolicy:
    return PendulumPolicy()


@pytest.fixture
def cartpole_policy() -> CartpolePolicy:
    return CartpolePolicy()


@pytest.fixture(scope="session")
def pendulum_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "pendulum"
    export_bundle(PendulumPolicy(), env="pendulum", out_dir=out, source_run="runs/pendulum-x")
    return out


@pytest.fixture(scope="session")
def cartpole_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "cartpole"
    export_bundle(CartpolePolicy(), env="cartpole", out_dir=out)
    return out


@pytest.fixture
def bundle_copy(pendulum_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the pendulum bundle that a test may damage."""
    return Path(shutil.copytree(pendulum_bundle, tmp_path / "bundle"))


GraphBundle = Callable[..., Path]


@pytest.fixture
def graph_bundle(tmp_path: Path) -> GraphBundle:
    """Factory: a bundle at tmp_path/name from `constant_graph` with a pendulum contract.

    graph_bundle(value=nan, name="b", in_name="obs", act_dim=1, **contract_overrides)
    """

    def make(
        value: float = 0.5,
        name: str = "graph",
        in_name: str = "obs",
        act_dim: int = 1,
        **overrides: object,
    ) -> Path:
        blob = constant_graph(3, act_dim, value, in_name=in_name)
        return write_bundle(tmp_path / name, blob, **overrides)

    return make


@pytest.fixture
def contract_for() -> Callable[..., Contract]:
    """Factory: pendulum_contract(blob, **overrides)."""
    return pendulum_contract


def constant_graph(
    obs_dim: int, act_dim: int, value: float, in_name: str = "obs", out_name: str = "action"
) -> bytes:
    """action = obs @ 0 + value: a graph whose output we choose (NaN included)."""
    shape = [obs_dim, act_dim]
    zeros = helper.make_tensor("w", TensorProto.FLOAT, shape, [0.0] * obs_dim * act_dim)
    bias = helper.make_tensor("b", TensorProto.FLOAT, [act_dim], [value] * act_dim)
    graph = helper.make_graph(
        [helper.make_node("MatMul", [in_name, "w"], ["z"]),
         helper.make_node("Add", ["z", "b"], [out_name])],
        "constant",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["batch", obs_dim])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", act_dim])],
        initializer=[zeros, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def pendulum_contract(blob: bytes, **overrides: object) -> Contract:
    fields: dict[str, object] = dict(
        env="pendulum", obs_names=("cos", "sin", "omega"), obs_dim=3, action_names=("torque",),
        act_dim=1, discrete=False, n_actions=None, action_low=(-2.0,), action_high=(2.0,),
        rate_hz=20.0, safe_action=(0.0,), source_run=None, policy_sha256=sha256_bytes(blob),
        opset=20, parity_max_abs_error=0.0, parity_samples=1,
    )
    fields.update(overrides)
    return Contract(**fields)  # type: ignore[arg-type]


def write_bundle(path: Path, blob: bytes, **overrides: object) -> Path:
    """A bundle from a hand-built graph, with a pendulum contract."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "policy.onnx").write_bytes(blob)
    pendulum_contract(blob, **overrides).save(path)
    return path

"""Export: round trips with measured parity, refusals that write nothing, atomic replacement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import deploy.export as export_module
from deploy.contract import Contract
from deploy.export import ExportError, export_bundle
from deploy.runtime import OnnxPolicy


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_pendulum_round_trip(pendulum_bundle: Path, pendulum_policy: nn.Module) -> None:
    c = Contract.load(pendulum_bundle)
    assert (c.env, c.obs_dim, c.act_dim, c.discrete) == ("pendulum", 3, 1, False)
    assert (c.action_low, c.action_high, c.safe_action) == ((-2.0,), (2.0,), (0.0,))
    assert c.rate_hz == pytest.approx(20.0) and c.source_run == "runs/pendulum-x"
    assert c.opset == 20 and c.parity_samples == 1000
    assert 0.0 <= c.parity_max_abs_error < 1e-4

    policy = OnnxPolicy(pendulum_bundle)
    obs = np.random.default_rng(3).uniform(-8, 8, (50, 3)).astype(np.float32)
    with torch.no_grad():
        expected = pendulum_policy(torch.from_numpy(obs)).numpy()
    got = np.stack([policy(o) for o in obs])
    assert got.dtype == np.float32 and got.shape == (50, 1)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_cartpole_discrete_round_trip(cartpole_bundle: Path, cartpole_policy: nn.Module) -> None:
    c = Contract.load(cartpole_bundle)
    assert c.discrete and c.n_actions == 2 and c.act_dim == 1
    assert (c.action_low, c.action_high, c.safe_action) == ((0.0,), (1.0,), (0.0,))
    assert c.parity_max_abs_error == 0.0
    policy = OnnxPolicy(cartpole_bundle)
    obs = np.random.default_rng(4).normal(0, 1, (50, 4)).astype(np.float32)
    with torch.no_grad():
        expected = cartpole_policy(torch.from_numpy(obs)).numpy()
    got = np.stack([policy(o) for o in obs])
    np.testing.assert_array_equal(got, expected)
    assert set(np.unique(got)) == {0.0, 1.0}  # the test policy uses both actions


def test_rollout_obs_join_the_parity_check(tmp_path: Path, pendulum_policy: nn.Module) -> None:
    rollout = np.zeros((25, 3), np.float32)
    c = export_bundle(pendulum_policy, env="pendulum", out_dir=tmp_path / "b", rollout_obs=rollout)
    assert c.parity_samples == 1025


class _Linear(nn.Module):
    def __init__(self, out_dim: int, scale: float = 1.0) -> None:
        super().__init__()
        self.out_dim, self.scale = out_dim, scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(obs[:, :1]).repeat(1, self.out_dim)


class _NaN(nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, :1] * float("nan")


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (_Linear(out_dim=2), r"shape \(1000, 2\).*\[batch, 1\]"),
        (_NaN(), "non-finite"),
        (_Linear(out_dim=1, scale=5.0), "outside the bounds"),  # scaling forgotten
    ],
)
def test_export_refuses_and_writes_nothing(tmp_path: Path, policy: nn.Module, message: str) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match=message):
        export_bundle(policy, env="pendulum", out_dir=out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_parity_failure_refuses(
    tmp_path: Path, pendulum_policy: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = export_module.run_onnxruntime
    monkeypatch.setattr(export_module, "run_onnxruntime", lambda b, o: real(b, o) + 1e-3)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match="differs from torch"):
        export_bundle(pendulum_policy, env="pendulum", out_dir=out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_new_bundle_replaces_old_only_when_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bundle"
    first = export_bundle(_Linear(1), env="pendulum", out_dir=out)

    def crash(self: Contract, bundle_dir: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Contract, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        export_bundle(_Linear(1, scale=2.0), env="pendulum", out_dir=out)
    assert Contract.load(out) == first and _leftovers(tmp_path) == []

    monkeypatch.undo()
    second = export_bundle(_Linear(1, scale=2.0), env="pendulum", out_dir=out)
    assert second.policy_sha256 != first.policy_sha256
    assert Contract.load(out) == second and _leftovers(tmp_path) == []


@pytest.mark.bad_input
def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="holds notes.txt, which export did not write"):
        export_bundle(_Linear(1), env="pendulum", out_dir=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_bad_rollout_obs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"rollout_obs has shape \(5, 4\)"):
        export_bundle(_Linear(1), env="pendulum", out_dir=tmp_path / "b",
                      rollout_obs=np.zeros((5, 4), np.float32))


def test_export_leaves_the_module_in_its_training_mode(tmp_path: Path) -> None:
    policy = _Linear(1).train()
    export_bundle(policy, env="pendulum", out_dir=tmp_path / "b")
    assert policy.training

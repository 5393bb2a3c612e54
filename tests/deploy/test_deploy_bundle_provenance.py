"""A bundle carries no trace of the machine that exported it: torch's exporter writes stack
traces (file paths, source lines) into every node's metadata, and export strips all metadata
and doc strings before the hash is taken, float and int8 graphs alike."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import onnx
import pytest

from deploy.contract import Contract, sha256_bytes
from deploy.onnx_meta import metadata_left

ROOT = Path(__file__).resolve().parents[2]


def _machine_paths() -> list[bytes]:
    """What an absolute path of this machine would contain."""
    found = {"/home", "/work", "/tmp", "/usr", "/root", "site-packages", "dist-packages",
             'File "', str(ROOT), sys.prefix, sys.base_prefix, tempfile.gettempdir()}
    if str(Path.home()) != "/":
        found.add(str(Path.home()))
    return sorted(s.encode() for s in found)


def _check_clean(bundle: Path) -> None:
    for name in ("policy.onnx", "contract.json"):
        data = (bundle / name).read_bytes()
        leaked = [p for p in _machine_paths() if p in data]
        assert not leaked, f"{name} of {bundle.name} carries {leaked}"
    model = onnx.load(bundle / "policy.onnx")
    assert metadata_left(model) == []
    onnx.checker.check_model(model, full_check=True)
    # ...and the hash is of these stripped bytes
    assert Contract.load(bundle).policy_sha256 == sha256_bytes(
        (bundle / "policy.onnx").read_bytes())


@pytest.mark.parametrize("which", ["pendulum_bundle", "pendulum_int8_bundle", "cartpole_bundle",
                                   "trained_cartpole_bundle"])
def test_deploy_bundle_has_no_machine_paths(which: str, request: pytest.FixtureRequest) -> None:
    _check_clean(request.getfixturevalue(which))


def test_deploy_cli_int8_export_has_no_machine_paths(
    trained_cartpole_bundle: Path, tmp_path: Path
) -> None:
    from kinema.cli import main

    out = tmp_path / "int8"
    assert main(["export", str(trained_cartpole_bundle.parent), "--out", str(out), "--quantize",
                 "int8", "--quantize-bound", "0.5", "--json"]) == 0
    assert "MatMulInteger" in {n.op_type for n in onnx.load(out / "policy.onnx").graph.node}
    _check_clean(out)


@pytest.mark.filterwarnings("ignore:`isinstance.treespec, LeafSpec.`:FutureWarning")
def test_deploy_the_exporter_does_write_paths_that_export_strips() -> None:
    """The premise: without stripping, torch's graph names this checkout's files."""
    import torch

    from deploy.export import _Exported

    module = _Exported(torch.nn.Linear(3, 1)).eval()
    program = torch.onnx.export(module, (torch.zeros(2, 3),), input_names=["obs"],
                                output_names=["action"], dynamo=True, verbose=False,
                                dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert program is not None
    raw = program.model_proto.SerializeToString()
    assert str(ROOT).encode() in raw and metadata_left(program.model_proto)

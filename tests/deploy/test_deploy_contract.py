"""contract.json: round trip, and every way a bundle can be untrustworthy is one clear error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.contract import BundleError, Contract


def test_contract_round_trips_through_json(pendulum_bundle: Path, tmp_path: Path) -> None:
    c = Contract.load(pendulum_bundle)
    c.save(tmp_path)
    assert Contract.load(tmp_path, check_hash=False) == c
    data = json.loads((tmp_path / "contract.json").read_text())
    assert data["obs_names"] == ["obs_0", "obs_1", "obs_2"] and data["format_version"] == 1


def test_a_frames_contract_names_their_shape_and_no_pixels(
    contract_for: Callable[..., Contract], tmp_path: Path
) -> None:
    # camera frames [H, W, C] = [2, 3, 2] flattened: obs_dim 12, no per-pixel names
    c = contract_for(b"x", obs_dim=12, obs_names=(), obs_shape=(2, 3, 2))
    c.save(tmp_path)
    data = json.loads((tmp_path / "contract.json").read_text())
    assert data["obs_shape"] == [2, 3, 2] and data["obs_names"] == []
    assert Contract.load(tmp_path, check_hash=False) == c
    flat = contract_for(b"x")  # a flat contract.json is what it was before frames
    flat.save(tmp_path)
    assert "obs_shape" not in json.loads((tmp_path / "contract.json").read_text())


def test_missing_contract_is_a_clear_error(bundle_copy: Path) -> None:
    (bundle_copy / "contract.json").unlink()
    with pytest.raises(BundleError, match=r"contract\.json.*missing"):
        Contract.load(bundle_copy)


def test_missing_bundle_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        Contract.load(tmp_path / "nowhere")


def test_tampered_policy_is_a_hash_mismatch(bundle_copy: Path) -> None:
    onnx_path = bundle_copy / "policy.onnx"
    blob = bytearray(onnx_path.read_bytes())
    blob[-1] ^= 0xFF  # one flipped byte
    onnx_path.write_bytes(bytes(blob))
    with pytest.raises(BundleError, match=r"policy\.onnx.*sha256"):
        Contract.load(bundle_copy)


def test_missing_policy_is_a_clear_error(bundle_copy: Path) -> None:
    (bundle_copy / "policy.onnx").unlink()
    with pytest.raises(BundleError, match=r"policy\.onnx.*missing"):
        Contract.load(bundle_copy)


def test_invalid_json_is_a_clear_error(bundle_copy: Path) -> None:
    (bundle_copy / "contract.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        Contract.load(bundle_copy)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("obs_dim", None, "'obs_dim' is null"),
        ("obs_dim", "3", "'obs_dim' is '3'; expected an integer"),
        ("discrete", 0, "'discrete' is 0; expected true or false"),
        ("action_low", [-2.0, "x"], r"'action_low'\[1\]"),
        ("rate_hz", True, "'rate_hz' is True; expected a number"),
        ("format_version", 99, "format_version 99"),
        ("safe_action", [5.0], "outside the action bounds"),
        ("obs_names", ["a"], "obs_names has 1 names but obs_dim is 3"),
        ("obs_names", [], "obs_names has 0 names but obs_dim is 3"),  # names only frames lack
        ("obs_shape", [3], r"obs_shape \[3\] must be at least 2 positive sizes whose product "
                           "is obs_dim 3"),
        ("obs_shape", [2, 2], r"obs_shape \[2, 2\] must be at least 2 positive sizes"),
        ("obs_shape", [3, "1"], r"'obs_shape'\[1\] is '1'; expected an integer"),
    ],
)
def test_bad_fields_name_the_field(
    bundle_copy: Path, field: str, value: object, message: str
) -> None:
    path = bundle_copy / "contract.json"
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message):
        Contract.load(bundle_copy)


def test_missing_field_is_named(bundle_copy: Path) -> None:
    path = bundle_copy / "contract.json"
    data = json.loads(path.read_text())
    del data["policy_sha256"]
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match="missing the required field 'policy_sha256'"):
        Contract.load(bundle_copy)


def test_discrete_contract_must_have_index_bounds(
    contract_for: Callable[..., Contract],
) -> None:
    with pytest.raises(BundleError, match="discrete bounds"):
        contract_for(b"x", discrete=True, n_actions=3, action_low=(0.0,), action_high=(1.0,))


def test_save_is_atomic_and_leaves_no_temporary_files(bundle_copy: Path) -> None:
    Contract.load(bundle_copy).save(bundle_copy)
    assert sorted(p.name for p in bundle_copy.iterdir()) == ["contract.json", "policy.onnx"]

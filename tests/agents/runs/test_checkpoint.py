"""Checkpoints: exact round trips, no pickle, crash safety, clear errors on damaged files."""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import agents.runs.checkpoint as ckpt
from agents.runs.checkpoint import CheckpointError, latest_step, load_checkpoint, save_checkpoint


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))


def _adam_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    opt.zero_grad()
    net(x).square().mean().backward()
    opt.step()


def _trained(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    net = _mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(2):
        _adam_step(net, opt, torch.randn(8, 4))
    return net, opt


def _extras() -> dict:
    return {
        "counters": {"step": 1024, "episodes": 7, "big": 2**70},
        "by_index": {0: "a", 3: {"nested": [1, 2.5, None]}, 10: (1, "x")},
        "floats": [math.nan, math.inf, -math.inf, -0.0, 0.1, 1e-300],
        "flags": (True, False, None),
        "dollar": {"$tensor": "not a tag", "plain": "text"},
        "empty": {"d": {}, "l": [], "t": ()},
    }


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def _same(a: object, b: object) -> bool:
    """Equality that is exact for tensors (dtype, shape, bits) and for NaN."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(_bits(a), _bits(b)))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float):
        return isinstance(b, float) and a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(type(k) is type(j) for k, j in zip(a, b, strict=True))
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, list | tuple):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    return type(a) is type(b) and a == b


def test_round_trip_resumes_adam_bit_exactly(tmp_path: Path) -> None:
    net, opt = _trained()
    state = {"model": net.state_dict(), "optim": opt.state_dict(), "rng": torch.get_rng_state(),
             **_extras()}
    save_checkpoint(tmp_path, 2, state)
    step, back = load_checkpoint(tmp_path)
    assert step == 2
    assert _same(state, back)
    assert isinstance(back["optim"]["param_groups"][0]["betas"], tuple)
    assert list(back["optim"]["state"]) == [0, 1, 2, 3]  # int keys stay ints

    torch.manual_seed(123)
    net2 = _mlp()
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-2)
    net2.load_state_dict(back["model"])
    opt2.load_state_dict(back["optim"])
    x = torch.randn(8, 4)
    _adam_step(net, opt, x)
    _adam_step(net2, opt2, x)
    for p, q in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(p, q)

    torch.set_rng_state(back["rng"])
    after_load = torch.rand(5)
    torch.set_rng_state(state["rng"])
    assert torch.equal(after_load, torch.rand(5))


def test_tensor_layouts_and_dtypes_round_trip(tmp_path: Path) -> None:
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    tied = torch.ones(3)
    state = {
        "transposed": base.t(), "slice": base[1:, ::2], "whole": base, "tied_a": tied,
        "tied_b": tied, "scalar": torch.tensor(2.5, dtype=torch.bfloat16),
        "bytes": torch.tensor([0, 255], dtype=torch.uint8), "mask": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3), "param": nn.Parameter(torch.full((2,), 3.0)),
        "a.b": torch.zeros(1), "a": {"b": torch.ones(1)},  # both would be named "a.b"-ish
    }
    save_checkpoint(tmp_path, 0, state)
    _, back = load_checkpoint(tmp_path)
    for k, v in state.items():
        assert _same(v.detach() if isinstance(v, torch.Tensor) else v, back[k]), k
    assert not back["param"].requires_grad


def test_no_file_is_a_pickle_and_loading_never_unpickles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net, opt = _trained()
    save_checkpoint(tmp_path, 5, {"model": net.state_dict(), "optim": opt.state_dict()})
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"model.safetensors", "optim.safetensors", "state.json",
                                       "state.json.sha256", "LATEST"}
    for p in files:
        head = p.read_bytes()[:8]
        assert head[:1] != b"\x80" and head[:2] != b"PK", p  # pickle protocol 2+, torch zip
    for name in ("model.safetensors", "optim.safetensors"):
        data = (tmp_path / "checkpoints" / "5" / name).read_bytes()
        header = int.from_bytes(data[:8], "little")  # safetensors: u64 length, JSON header
        json.loads(data[8:8 + header])
    assert (tmp_path / "LATEST").read_text() == "checkpoints/5\n"

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickling on a load path")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert load_checkpoint(tmp_path)[0] == 5


def _fail_on_second_save_file(monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = ckpt.save_file, []

    def flaky(tensors: dict, path: str) -> None:
        calls.append(path)
        if len(calls) == 2:  # model.safetensors is on disk, optim.safetensors is not
            raise OSError("disk full")
        real(tensors, path)

    monkeypatch.setattr(ckpt, "save_file", flaky)


def _fail_on_replace(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    real = os.replace

    def flaky(src: object, dst: object) -> None:
        s, d = Path(str(src)).name, Path(str(dst)).name
        if (when == "rename" and s.startswith(".tmp-")) or (when == "LATEST" and d == "LATEST"):
            raise OSError("killed")
        real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)


@pytest.mark.parametrize("where", ["safetensors", "state.json", "rename", "LATEST"])
def test_interrupted_save_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    first = {"model": {"w": torch.ones(3)}, "optim": {"m": torch.zeros(3)}, "n": 1}
    save_checkpoint(tmp_path, 1, first)
    with monkeypatch.context() as m:
        if where == "safetensors":
            _fail_on_second_save_file(m)
        elif where == "state.json":
            m.setattr(ckpt.json, "dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("x")))
        else:
            _fail_on_replace(m, where)
        with pytest.raises(OSError):
            save_checkpoint(tmp_path, 2, {"model": {"w": torch.full((3,), 2.0)}, "n": 2})
    assert latest_step(tmp_path) == 1
    step, back = load_checkpoint(tmp_path)
    assert step == 1 and _same(first, back)
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert left == (["1", "2"] if where == "LATEST" else ["1"])  # no half-written folder


def test_crash_leftovers_are_ignored_then_cleaned(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, {"n": 1})
    root = tmp_path / "checkpoints"
    shutil.copytree(root / "1", root / ".tmp-2-99999")  # a save killed before its rename
    (root / ".tmp-2-99999" / "model.safetensors").unlink()
    assert load_checkpoint(tmp_path) == (1, {"n": 1})
    save_checkpoint(tmp_path, 3, {"n": 3})
    assert sorted(p.name for p in root.iterdir()) == ["1", "3"]


def test_crash_while_replacing_a_step_keeps_it_loadable(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 4, {"n": "old"})
    root = tmp_path / "checkpoints"
    os.replace(root / "4", root / ".old-4-99999")  # killed between the two renames
    assert load_checkpoint(tmp_path) == (4, {"n": "old"})
    save_checkpoint(tmp_path, 5, {"n": 5})  # the next save puts the old copy back
    assert load_checkpoint(tmp_path, 4) == (4, {"n": "old"})
    assert not list(root.glob(".old-*"))


def test_saving_an_existing_step_replaces_it(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 4, {"n": "old", "model": {"w": torch.zeros(2)}})
    save_checkpoint(tmp_path, 4, {"n": "new"})
    assert load_checkpoint(tmp_path) == (4, {"n": "new"})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["4"]


def test_keep_last_prunes_older_checkpoints_only(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    for s in range(1, 6):
        save_checkpoint(tmp_path, s * 10, {"s": s}, keep_last=2)
    assert sorted(int(p.name) for p in root.iterdir()) == [40, 50]
    save_checkpoint(tmp_path, 45, {"s": 4.5}, keep_last=1)  # a resumed run: 50 is not older
    assert sorted(int(p.name) for p in root.iterdir()) == [45, 50]
    assert latest_step(tmp_path) == 45
    for s in range(3):
        save_checkpoint(tmp_path, s, {"s": s}, keep_last=None)
    assert sorted(int(p.name) for p in root.iterdir()) == [0, 1, 2, 45, 50]


def _write_consistently(state: Path, data: bytes) -> None:
    """Replace state.json and record its new SHA-256 beside it, as a buggy writer might."""
    state.write_bytes(data)
    state.with_name("state.json.sha256").write_text(f"{ckpt.sha256_file(state)}  state.json\n")


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_damaged_safetensors_is_reported_by_name(tmp_path: Path, how: str) -> None:
    net, _ = _trained()
    save_checkpoint(tmp_path, 3, {"model": net.state_dict()})
    _damage(tmp_path / "checkpoints" / "3" / "model.safetensors", how)
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupt: its SHA-256"):
        load_checkpoint(tmp_path)


def test_corrupt_safetensors_with_matching_hash_is_a_checkpoint_error(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 3, {"model": {"w": torch.ones(100)}})
    folder = tmp_path / "checkpoints" / "3"
    _damage(folder / "model.safetensors", "truncate")
    meta = json.loads((folder / "state.json").read_text())
    meta["files"]["model.safetensors"] = ckpt.sha256_file(folder / "model.safetensors")
    (folder / "state.json").write_text(json.dumps(meta))
    (folder / "state.json.sha256").write_text(
        f"{ckpt.sha256_file(folder / 'state.json')}  state.json\n")  # a consistent lie
    with pytest.raises(CheckpointError, match=r"model\.safetensors is not a valid safetensors"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda r: (r / "LATEST").unlink(), r"LATEST does not exist"),
    (lambda r: (r / "LATEST").write_text(""), r"LATEST is empty"),
    (lambda r: (r / "LATEST").write_text("nonsense"), r"LATEST is 'nonsense'"),
    (lambda r: (r / "LATEST").write_text("checkpoints/99\n"), r"checkpoints/99 does not exist"),
    (lambda r: (r / "checkpoints/7/optim.safetensors").unlink(), r"optim\.safetensors is missing"),
    (lambda r: (r / "checkpoints/7/state.json").write_text("{"),
     r"state\.json is corrupt or was edited"),
    (lambda r: _write_consistently(r / "checkpoints/7/state.json", b"{"),
     r"state\.json is not valid JSON"),
    (lambda r: (r / "checkpoints/7/state.json").unlink(), r"state\.json is missing"),
])
def test_bad_run_folders_raise_one_clear_error(tmp_path: Path, damage, message: str) -> None:
    save_checkpoint(tmp_path, 7, {"model": {"w": torch.ones(2)}, "optim": {"m": torch.ones(2)}})
    damage(tmp_path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(tmp_path)
    assert "\n" not in str(info.value) and info.value.__cause__ is None


def test_latest_step_and_bad_arguments(tmp_path: Path) -> None:
    assert latest_step(tmp_path) is None
    with pytest.raises(TypeError, match=r"state\['x'\]\[0\]"):
        save_checkpoint(tmp_path, 1, {"x": [object()]})
    with pytest.raises(TypeError, match="key"):
        save_checkpoint(tmp_path, 1, {"x": {(1, 2): 3}})
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path, -1, {})
    with pytest.raises(ValueError, match="keep_last"):
        save_checkpoint(tmp_path, 1, {}, keep_last=0)
    assert latest_step(tmp_path) is None


def test_every_file_of_a_checkpoint_is_covered_by_a_sha256(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 7, {"model": {"w": torch.ones(2)}, "n": 1})
    folder = tmp_path / "checkpoints" / "7"
    sidecar = (folder / "state.json.sha256").read_text()
    assert sidecar == f"{ckpt.sha256_file(folder / 'state.json')}  state.json\n"  # sha256sum -c
    meta = json.loads((folder / "state.json").read_text())
    assert meta["format"] == "kinema-checkpoint/2" and set(meta["files"]) == {
        "model.safetensors", "optim.safetensors"}
    (folder / "state.json").write_text((folder / "state.json").read_text().replace(
        '"n": 1', '"n": 2'))  # an edit that is still valid JSON and a valid tree
    with pytest.raises(CheckpointError, match=r"state\.json is corrupt or was edited: its "
                       r"SHA-256 .* recorded in state\.json\.sha256") as info:
        load_checkpoint(tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda f: (f / "state.json.sha256").unlink(), r"state\.json\.sha256 is missing"),
    (lambda f: (f / "state.json.sha256").write_text("nonsense"),
     r"state\.json\.sha256 is malformed"),
])
def test_a_missing_or_malformed_sidecar_is_refused(tmp_path: Path, damage, message: str) -> None:
    save_checkpoint(tmp_path, 7, {"n": 1})
    damage(tmp_path / "checkpoints" / "7")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path)


def test_a_format_1_checkpoint_loads_without_its_sidecar(tmp_path: Path) -> None:
    """Checkpoints written before state.json.sha256 existed stay loadable (tests/fixtures)."""
    save_checkpoint(tmp_path, 7, {"n": 1})
    folder = tmp_path / "checkpoints" / "7"
    (folder / "state.json.sha256").unlink()
    meta = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps(meta | {"format": "kinema-checkpoint/1"}))
    assert load_checkpoint(tmp_path) == (7, {"n": 1})

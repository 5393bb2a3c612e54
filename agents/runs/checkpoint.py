"""Atomic, pickle-free checkpoints inside a run directory.

Layout (see ARCHITECTURE.md, "Run directories"):

    checkpoints/<step>/model.safetensors   every tensor not under the top-level key "optim"
    checkpoints/<step>/optim.safetensors   the tensors under state["optim"]
    checkpoints/<step>/state.json          the rest of the tree, the step, a SHA-256 per file
    checkpoints/<step>/state.json.sha256   state.json's own SHA-256 ("<hex>  state.json", the
                                           format of `sha256sum`, so `sha256sum -c` checks it)
    LATEST                                 "checkpoints/<step>\\n", relative to the run folder

So every file of a checkpoint is covered by a SHA-256 that loading checks: the tensors by
state.json, state.json by its sidecar. Checkpoints of format 1 (written before the sidecar
existed) load without it; a format-2 state.json without its sidecar is refused.

Why this order of writes: a checkpoint is built in `checkpoints/.tmp-<step>-<pid>/`, every file
is fsynced, the folder is renamed into place and the parent fsynced, and only then is LATEST
replaced (temp file + os.replace). A crash at any moment leaves LATEST naming a complete
checkpoint. Leftover `.tmp-*` folders are never read and are removed by the next save; one
writer per run is assumed. Loading never unpickles: tensors come from safetensors, the rest
from JSON (see agents/runs/tree.py; tuples come back as tuples, int dict keys as ints).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from agents.runs.tree import TreeError, decode, encode
from data.files import (
    fsync_path,
    fsync_write,
    publish_dir,
    sha256_bytes,
    sha256_file,
    sha256_mismatch,
    write_atomic,
)

FORMAT = "kinema-checkpoint/2"
FORMATS = ("kinema-checkpoint/1", FORMAT)
"""Formats this code reads: 1 has no state.json.sha256, 2 must have one."""
MODEL_FILE, OPTIM_FILE, STATE_FILE = "model.safetensors", "optim.safetensors", "state.json"
STATE_SHA_FILE = STATE_FILE + ".sha256"
_LATEST_RE = re.compile(r"checkpoints/([0-9]+)")
_SHA_LINE_RE = re.compile(r"([0-9a-f]{64})  " + re.escape(STATE_FILE) + r"\n?")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the file and the fault."""


def save_checkpoint(run_dir: Path, step: int, state: dict, keep_last: int | None = 3) -> Path:
    """Write `state` as checkpoint `step` of `run_dir` and point LATEST at it.

    Saving a step that exists replaces it (a resumed run passing the same step again). Then
    only the `keep_last` newest checkpoints with a step at or below `step` are kept (None keeps
    all); checkpoints with a larger step, left by a run that was resumed from an earlier one,
    are kept until the resumed run overwrites them. Returns the checkpoint folder.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last must be None or an int >= 1, got {keep_last!r}")
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got a {type(state).__name__}")
    run_dir = Path(run_dir)
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(root)
    tree, tensors = encode(state, lambda path: OPTIM_FILE if path[:1] == ("optim",) else MODEL_FILE)

    final, pid = root / str(step), os.getpid()
    tmp, old = root / f".tmp-{step}-{pid}", root / f".old-{step}-{pid}"
    try:
        tmp.mkdir()
        hashes = {}
        for name in (MODEL_FILE, OPTIM_FILE):
            save_file(tensors.get(name, {}), str(tmp / name))
            fsync_path(tmp / name)
            hashes[name] = sha256_file(tmp / name)
        meta = {"format": FORMAT, "step": step, "files": hashes, "tree": tree}
        text = json.dumps(meta, allow_nan=False, indent=1).encode()
        fsync_write(tmp / STATE_FILE, text)
        fsync_write(tmp / STATE_SHA_FILE, f"{sha256_bytes(text)}  {STATE_FILE}\n".encode())
        publish_dir(tmp, final, old)  # a step saved again replaces the folder; readers find the
        # previous copy under .old-<step>-<pid> while it is moved aside (see _folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_atomic(run_dir / "LATEST", f"checkpoints/{step}\n".encode())
    if keep_last is not None:
        older = sorted((s for s in _complete_steps(root) if s < step), reverse=True)
        for s in older[keep_last - 1:]:
            trash = root / f".tmp-del-{s}-{pid}"  # renamed first so no half-deleted step remains
            os.replace(root / str(s), trash)
            shutil.rmtree(trash, ignore_errors=True)
    return final


def load_checkpoint(
    run_dir: Path, step: int | None = None, map_location: str | torch.device = "cpu"
) -> tuple[int, dict]:
    """(step, state) of checkpoint `step`, or of the one LATEST names when step is None.

    Each safetensors file is checked against the SHA-256 in state.json before it is parsed, so
    a torn or altered file is reported instead of loaded; tensors land on `map_location`.
    """
    run_dir = Path(run_dir)
    if step is None:
        step = _read_latest(run_dir)
        if step is None:
            raise CheckpointError(f"{run_dir / 'LATEST'} does not exist, so this run has no "
                                  "completed checkpoint")
    folder = _folder(run_dir / "checkpoints", step)
    path = folder / STATE_FILE
    meta = _read_state(path, step)
    device = str(torch.device(map_location))
    tensors = {name: _read_tensors(folder / name, sha, device)
               for name, sha in meta["files"].items()}
    try:
        tree = decode(meta["tree"], tensors)
    except TreeError as e:
        raise CheckpointError(f"{path} is malformed: {e}") from None
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path} is malformed: its tree is not a dict")
    return step, tree


def latest_step(run_dir: Path) -> int | None:
    """The step LATEST names, or None when no checkpoint has been completed yet."""
    return _read_latest(Path(run_dir))


def _read_small(path: Path, encoding: str) -> str | None:
    """A small text file's content, None when it does not exist; other faults are one line."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} cannot be read ({e})") from None


def _read_latest(run_dir: Path) -> int | None:
    path = run_dir / "LATEST"
    text = _read_small(path, "utf-8")
    if text is None:
        return None
    text = text.strip()
    match = _LATEST_RE.fullmatch(text)
    if match is None:
        shown = "empty" if not text else f"{text[:80]!r}"
        raise CheckpointError(f"{path} is {shown}, expected a line like 'checkpoints/1024'")
    return int(match.group(1))


def _folder(root: Path, step: int) -> Path:
    """The folder of `step`; during a replace the previous copy sits in `.old-<step>-<pid>`."""
    folder = root / str(step)
    if folder.is_dir():
        return folder
    for old in sorted(root.glob(f".old-{step}-*")):
        if (old / STATE_FILE).is_file():
            return old
    raise CheckpointError(f"checkpoint folder {folder} does not exist")


def _read_state(path: Path, step: int) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing, so the checkpoint is incomplete") from None
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read ({e})") from None
    recorded = _recorded_sha(path.with_name(STATE_SHA_FILE))
    if recorded is not None and sha256_bytes(data) != recorded:
        raise CheckpointError(f"{path} is corrupt or was edited: its SHA-256 "
                              f"{sha256_bytes(data)[:12]}... differs from the {recorded[:12]}... "
                              f"recorded in {STATE_SHA_FILE}")
    try:
        meta = json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS:
        raise CheckpointError(f"{path} is not a {FORMAT} file")
    if recorded is None and meta["format"] != FORMATS[0]:
        raise CheckpointError(f"{path.with_name(STATE_SHA_FILE)} is missing, so {path} "
                              "cannot be verified; the checkpoint is incomplete")
    if meta.get("step") != step:
        raise CheckpointError(f"{path} records step {meta.get('step')!r}, not {step}")
    files = meta.get("files")
    if not (isinstance(files, dict) and set(files) <= {MODEL_FILE, OPTIM_FILE}
            and all(isinstance(h, str) for h in files.values()) and "tree" in meta):
        raise CheckpointError(f"{path} is malformed: 'files' or 'tree' is missing or invalid")
    return meta


def _recorded_sha(path: Path) -> str | None:
    """The SHA-256 a state.json.sha256 records, None when there is none (format 1)."""
    text = _read_small(path, "ascii")
    if text is None:
        return None
    match = _SHA_LINE_RE.fullmatch(text)
    if match is None:
        raise CheckpointError(f"{path} is malformed: expected one line '<64 hex digits>  "
                              f"{STATE_FILE}'")
    return match.group(1)


def _read_tensors(path: Path, sha: str, device: str) -> dict[str, torch.Tensor]:
    try:
        fault = sha256_mismatch(path, sha, "state.json")
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing, so the checkpoint is incomplete") from None
    if fault:
        raise CheckpointError(fault)
    try:
        return load_file(str(path), device=device)
    except Exception as e:  # safetensors raises its own error types; report them as one line
        raise CheckpointError(f"{path} is not a valid safetensors file ({e})") from None


def _complete_steps(root: Path) -> list[int]:
    return [int(p.name) for p in root.iterdir()
            if p.name.isascii() and p.name.isdigit() and (p / STATE_FILE).is_file()]


def _clean_leftovers(root: Path) -> None:
    """Remove what a crashed save left: partial `.tmp-*` folders; restore or drop `.old-*`."""
    for p in root.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".old-*"):
        final = root / p.name.split("-")[1]  # .old-<step>-<pid>
        if final.name.isdigit() and not final.exists() and (p / STATE_FILE).is_file():
            os.replace(p, final)
        else:
            shutil.rmtree(p, ignore_errors=True)



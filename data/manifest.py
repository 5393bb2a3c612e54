"""A SHA-256 manifest over a dataset folder, committed atomically (a small redo log).

    DIR/manifest.json           {"format", "files": {relpath: sha256}, "episodes", "steps",
                                 "manifest_sha256": sha256 of the rest, canonical JSON}
    DIR/.manifest.pending.json  the same plus "staged": {relpath: staged file}, while a commit
                                is in flight

Why a redo log: a commit replaces several files (the HDF5 file and its metadata.json), and no
file system renames two files at once. So a commit first writes every new file under a staged
name and fsyncs it, then writes the pending manifest (atomically: temp file + rename), which is
the commit point. It then renames the staged files into place and finally renames the pending
manifest over manifest.json. A crash before the commit point leaves the old dataset plus stray
staged files; a crash after it is rolled forward by `recover` (the staged files are complete).
A crash at any moment therefore loses at most the commit in flight.

The manifest hashes itself, so one flipped byte anywhere in it is caught, like one flipped byte
in any file it lists. One writer at a time holds an exclusive lock on DIR/.lock; readers hold it
shared. Whoever holds it (so no writer is live) finishes an interrupted commit and removes what a
killed writer left: staged files (a whole copy of the HDF5 file, see data/dataset.py) and
write_atomic's temporary files. A file that a live writer is using is never removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

from data.files import (
    TMP_MARK,
    fsync_path,
    sha256_bytes,
    sha256_file,
    sha256_mismatch,
    write_atomic,
)

MANIFEST_FORMAT = "kinema-manifest/1"
MANIFEST_FILE, PENDING_FILE, LOCK_FILE = "manifest.json", ".manifest.pending.json", ".lock"
STAGED_MARK = ".staged-"
"""Staged files are named .<name>.staged-<pid> beside their final path."""


class DatasetError(ValueError):
    """A dataset that cannot be written or read; the message names the file and the fault."""


def staged_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{STAGED_MARK}{os.getpid()}")


def _self_hash(body: dict[str, Any]) -> str:
    canon = json.dumps({k: v for k, v in body.items() if k != "manifest_sha256"}, sort_keys=True)
    return sha256_bytes(canon.encode())


def _write_json_atomic(path: Path, body: dict[str, Any]) -> None:
    body = dict(body, manifest_sha256=_self_hash(body))
    write_atomic(path, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing, so this folder is not a Kinema dataset "
                           "(kinema collect writes one)") from None
    except (OSError, ValueError) as e:  # ValueError covers JSON and UTF-8 decoding errors
        raise DatasetError(f"{path} is corrupt: it is not valid JSON ({e})") from None
    if not isinstance(body, dict) or body.get("format") != MANIFEST_FORMAT:
        raise DatasetError(f"{path} is corrupt: it is not a {MANIFEST_FORMAT} manifest")
    if body.get("manifest_sha256") != _self_hash(body):
        raise DatasetError(f"{path} is corrupt: its content does not match its own SHA-256")
    files = body.get("files")
    if not (isinstance(files, dict) and all(isinstance(v, str) for v in files.values())
            and isinstance(body.get("episodes"), int) and isinstance(body.get("steps"), int)):
        raise DatasetError(f"{path} is corrupt: 'files', 'episodes' or 'steps' is malformed")
    return body


def read_manifest(root: Path) -> dict[str, Any]:
    return _read_json(root / MANIFEST_FILE)


def verify(root: Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check every file the manifest lists against its SHA-256; returns the manifest."""
    manifest = manifest if manifest is not None else read_manifest(root)
    for rel, sha in manifest["files"].items():
        path = root / rel
        try:
            fault = sha256_mismatch(path, sha, root / MANIFEST_FILE)
        except FileNotFoundError:
            raise DatasetError(f"{path} is missing; the manifest lists it") from None
        if fault:
            raise DatasetError(fault)
    return manifest


def commit(root: Path, staged: dict[str, Path], *, episodes: int, steps: int) -> None:
    """Make the staged files (relpath -> fsynced staged file) the dataset, atomically.

    Files of the previous manifest that are not staged keep their recorded hash.
    """
    old = read_manifest(root)["files"] if (root / MANIFEST_FILE).exists() else {}
    files = dict(old) | {rel: sha256_file(p) for rel, p in staged.items()}
    body = {"format": MANIFEST_FORMAT, "files": files, "episodes": episodes, "steps": steps}
    pending = dict(body, staged={rel: os.path.relpath(p, root) for rel, p in staged.items()})
    _write_json_atomic(root / PENDING_FILE, pending)  # the commit point
    _roll_forward(root, _read_json(root / PENDING_FILE), check=False)


def _roll_forward(root: Path, pending: dict[str, Any], *, check: bool = True) -> None:
    dirs = set()
    for rel, tmp in pending.get("staged", {}).items():
        if (root / tmp).exists():
            os.replace(root / tmp, root / rel)
        dirs.add((root / rel).parent)
    for d in dirs:
        fsync_path(d)
    body = {k: v for k, v in pending.items() if k not in ("staged", "manifest_sha256")}
    if check:  # after a crash: a staged file that vanished shows here, not at the next read
        verify(root, body)
    _write_json_atomic(root / MANIFEST_FILE, body)
    (root / PENDING_FILE).unlink()
    fsync_path(root)


def is_leftover(name: str) -> bool:
    """A staged or temporary file's name: what a killed writer leaves behind."""
    return name.startswith(".") and (STAGED_MARK in name or TMP_MARK in name)


def recover(root: Path) -> None:
    """Finish a commit a crash interrupted and remove what killed writers left behind.

    The caller holds the lock (exclusive or shared), so no writer is live: every staged or
    temporary file in the folder is a leftover. Past the commit point the staged files are
    renamed into place first, so only files no commit needs are removed.
    """
    if (root / PENDING_FILE).exists():
        _roll_forward(root, _read_json(root / PENDING_FILE))
    for p in list(root.rglob(".*")):
        if is_leftover(p.name) and p.is_file():
            with contextlib.suppress(OSError):  # gone already, or a folder we may not change
                p.unlink()


class Lock:
    """An advisory lock on DIR/.lock: exclusive for the one writer, shared for readers.

    The holder of the exclusive lock may delete DIR/.lock (a writer that committed nothing
    removes what it made); whoever locked the deleted file finds it is no longer DIR/.lock and
    locks the new one, so two holders never disagree about which file is the lock.
    """

    def __init__(self, root: Path, *, exclusive: bool) -> None:
        path, mode = root / LOCK_FILE, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        self.path, self.held = path, False
        self._file: IO[bytes] | None = None
        for _ in range(100):
            try:
                f = open(path, "a+b")  # noqa: SIM115  (held for the object's life)
            except OSError as e:
                if not exclusive:
                    raise
                raise DatasetError(f"{root} cannot be written ({e.strerror or e})") from None
            try:
                fcntl.flock(f.fileno(), mode | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                if exclusive:
                    raise DatasetError(f"{root} is being written by another process; one writer "
                                       "at a time") from None
                return  # a reader while a writer is live: held stays False
            if _same_file(f.fileno(), path):
                self.held, self._file = True, f
                return
            f.close()  # the lock file was deleted meanwhile: lock the new one
        raise DatasetError(f"{path} keeps being replaced; cannot lock {root}")

    def release(self) -> None:
        f, self._file, self.held = self._file, None, False
        if f is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

"""Durable files: atomic replace, fsync, SHA-256, and publishing a folder by rename.

The one home of these primitives for datasets (data/manifest.py), run folders and checkpoints
(agents/runs) and export bundles (deploy/). Standard library only, and `data/__init__.py` is
lazy, so `import data.files` loads nothing else: deploy.runtime reads contracts through it on
robot computers that have no torch.

What a caller can rely on (POSIX; elsewhere folder fsyncs are skipped):
- `write_atomic`: readers see the old bytes or the new, never a mix. When it returns, the new
  bytes and their name are on disk; when it raises, the old file is untouched and no temporary
  file is left behind. A crash meanwhile can leave a `.<name>.tmp-*` file (see TMP_MARK).
- `publish_dir`: see its docstring.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"
"""`write_atomic` writes `.<name>.tmp-<pid>-<random>` beside `<name>`; only a crash leaves one,
and a writer may delete any it finds (data/manifest.py's `recover` does)."""

_CHUNK = 1 << 20


def fsync_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` (created or truncated) and fsync it; not atomic on its own."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's content, or a folder's entries (renames into it), to disk.

    Folders are fsynced only on POSIX, the only systems that allow opening one.
    """
    path = Path(path)
    if os.name != "posix" and path.is_dir():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` so that readers see the old or the new bytes, never a mix.

    A temporary file in the same folder is written and fsynced, renamed over `path` with
    `os.replace`, and the folder fsynced so the rename survives a power loss. The file gets
    the permissions `open()` would give it (0o666 less the umask) unless `mode` is given.
    """
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.chmod(tmp, mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_path(path.parent)


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, exclusively created temporary sibling of `path` (unique across threads too)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def publish_dir(tmp: Path, final: Path, aside: Path) -> None:
    """Rename the complete folder `tmp` to `final`, replacing a folder already there.

    `tmp`'s files must be fsynced already; `tmp` itself is fsynced here. No system renames a
    folder over a non-empty one, so an existing `final` is first renamed to `aside` (a sibling
    name the caller chooses, so that its readers and its crash recovery can find it), then
    `tmp` to `final`; the parent is fsynced, and only then is `aside` removed.

    If this raises before `tmp` became `final`, the previous `final` is back in place and `tmp`
    is left for the caller to remove; if the parent's fsync raises, the new folder is in place
    and the previous one is still under `aside`. A crash between the two renames leaves the
    previous folder under `aside` and nothing at `final`.
    """
    fsync_path(tmp)
    moved = final.exists()
    if moved:
        os.replace(final, aside)
    try:
        os.replace(tmp, final)
    except BaseException:
        if moved and not final.exists():
            os.replace(aside, final)
        raise
    fsync_path(final.parent)
    if moved:
        shutil.rmtree(aside, ignore_errors=True)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_mismatch(path: str | os.PathLike[str], expected: str, recorded_in: object
                    ) -> str | None:
    """None when the file's SHA-256 is `expected`; else why not, in words for an error message.

    A missing file raises FileNotFoundError, which each caller words for what it reads.
    """
    actual = sha256_file(path)
    if actual == expected:
        return None
    return (f"{path} is corrupt: its SHA-256 {actual[:12]}... differs from the "
            f"{expected[:12]}... recorded in {recorded_in}")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def kinema_version() -> str:
    """The installed package version, stamped into the files Kinema writes; "unknown" when run
    from a source tree that was never installed."""
    from importlib import metadata  # a few milliseconds; most importers never ask

    try:
        return metadata.version("kinema")
    except metadata.PackageNotFoundError:
        return "unknown"


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file written one record at a time (metrics.jsonl);
    a last line torn by a crash is left out, a missing file is no records. ValueError names
    the first line that is not a JSON object."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return []
    out = []
    for i, line in enumerate(lines[:-1], 1):  # lines[-1] is "" or the torn record
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise ValueError(f"{path} line {i} is not valid JSON") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path} line {i} is not a JSON object")
        out.append(rec)
    return out

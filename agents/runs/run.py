"""The run directory of one training run: config, metrics, TensorBoard events, checkpoints.

    runs/<env>-<algo>-<YYYYmmdd-HHMMSS>/     (local time; "-2", "-3", ... on a name clash)
      config.json     {"env", "algo", "created", "kinema_version", "git_commit", "config"}
      metrics.jsonl   one JSON object per log point, always with "step" and "wall_time"
      tb/             TensorBoard events of the numeric values
      checkpoints/, LATEST   see agents/runs/checkpoint.py

`config` is kept apart from the metadata inside config.json so that `Run.config` is exactly
what the caller gave (after a JSON round trip) and can rebuild the config dataclass. Metrics are
written with Python's json, so a non-finite loss is kept as NaN/Infinity rather than dropped.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import torch

from agents.runs.checkpoint import latest_step, load_checkpoint, save_checkpoint
from data.files import TMP_MARK, kinema_version, read_jsonl, write_atomic

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

CONFIG_FILE, METRICS_FILE, TB_DIR = "config.json", "metrics.jsonl", "tb"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LEFTOVER_RE = re.compile(r"\.(.+)" + re.escape(TMP_MARK) + r"([0-9]+)-[0-9a-f]+")
_OWN_FILES = ("LATEST", CONFIG_FILE, METRICS_FILE)
"""The files of a run folder that are replaced with data.files.write_atomic."""
_NOT_SCALARS = ("step", "wall_time")  # TensorBoard has both on every event already


class RunError(ValueError):
    """A run folder that cannot be created or opened; the message names the path and fault."""


def _now() -> datetime:
    """The clock used for run names, in one place so that tests can fix it."""
    return datetime.now()


class Run:
    """One run folder. Make it with `Run.create` or `Run.open`; close it (or use `with`)."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self._path = path
        self._meta = meta
        self._metrics: IO[str] | None = None
        self._writer: SummaryWriter | None = None
        self._purge_step: int | None = None

    @classmethod
    def create(cls, root: Path, env: str, algo: str, config: dict) -> Run:
        """Make `root/<env>-<algo>-<YYYYmmdd-HHMMSS>[-n]/` and write its config.json."""
        for what, name in (("env", env), ("algo", algo)):
            if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                raise RunError(f"{what} name {name!r} cannot name a run folder; use letters, "
                               "digits, '.', '_' and '-'")
        if not isinstance(config, dict):
            raise RunError(f"config must be a dict, got a {type(config).__name__}")
        now = _now()
        meta = {"env": env, "algo": algo, "created": now.isoformat(timespec="seconds"),
                "kinema_version": kinema_version(), "git_commit": _git_commit(), "config": config}
        try:
            text = json.dumps(meta, indent=2) + "\n"
        except (TypeError, ValueError) as e:
            raise RunError(f"config cannot be written as JSON ({e})") from None
        root = check_runs_dir(Path(root))
        base = f"{env}-{algo}-{now:%Y%m%d-%H%M%S}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            for n in itertools.count(1):
                path = root / (base if n == 1 else f"{base}-{n}")
                try:
                    path.mkdir()  # atomic, so two runs started in the same second get two
                    break
                except FileExistsError:
                    continue
        except OSError as e:
            raise RunError(f"--runs-dir {root} cannot hold a new run folder "
                           f"({e.strerror or e})") from None
        try:
            write_atomic(path / CONFIG_FILE, text.encode())
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # no run folder without its config.json
            raise
        return cls(path, json.loads(text))

    @classmethod
    def open(cls, path: Path) -> Run:
        """An existing run folder, e.g. for `kinema train --resume RUN` or `kinema eval RUN`."""
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"run folder {path} does not exist")
        file = path / CONFIG_FILE
        try:
            meta = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{file} is missing, so {path} is not a run folder") from None
        except (OSError, ValueError) as e:
            raise RunError(f"{file} cannot be read as JSON ({e})") from None
        if not (isinstance(meta, dict) and isinstance(meta.get("env"), str)
                and isinstance(meta.get("algo"), str) and isinstance(meta.get("config"), dict)):
            raise RunError(f"{file} lacks the 'env', 'algo' and 'config' entries of a run")
        return cls(path, meta)

    @property
    def path(self) -> Path:
        return self._path

    def clean_leftovers(self) -> list[Path]:
        """Remove the temporary files a killed `write_atomic` left beside LATEST, config.json or
        metrics.jsonl (`.<name>.tmp-<pid>-<hex>`), unless the process that named one still runs
        (it may be writing it now). Call it before writing to a run that is opened again, as
        `kinema train --resume` does; returns what was removed."""
        removed = []
        for p in self._path.iterdir():
            m = _LEFTOVER_RE.fullmatch(p.name)
            if m is None or m.group(1) not in _OWN_FILES or not p.is_file() or p.is_symlink():
                continue
            if _alive(int(m.group(2))):
                continue
            try:
                p.unlink()
            except FileNotFoundError:
                continue
            removed.append(p)
        return removed

    @property
    def config(self) -> dict[str, Any]:
        return self._meta["config"]

    @property
    def env(self) -> str:
        return self._meta["env"]

    @property
    def algo(self) -> str:
        return self._meta["algo"]

    def log(self, record: dict[str, Any]) -> None:
        """Append `record` to metrics.jsonl and its finite int/float values to TensorBoard.

        Tensors and numpy values are converted here, once per log point, so update paths never
        sync with the device. `wall_time` is added when missing. With a str `kind` field the
        TensorBoard tags are "<kind>/<key>" (kind "eval": "eval/return_mean"); bools are flags,
        not curves, so they stay out of TensorBoard like `step` and `wall_time`.
        """
        rec = {k: _plain(v) for k, v in record.items()}
        step = rec.pop("step", None)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"a metrics record needs an int 'step' >= 0, got {step!r}")
        rec = {"step": step, **rec}
        rec.setdefault("wall_time", time.time())
        line = json.dumps(rec)
        f = self._metrics_file()
        f.write(line + "\n")
        f.flush()
        kind = rec.get("kind")
        prefix = f"{kind}/" if isinstance(kind, str) and kind else ""
        scalars = {f"{prefix}{k}": v for k, v in rec.items()
                   if k not in _NOT_SCALARS and isinstance(v, int | float)
                   and not isinstance(v, bool) and math.isfinite(v)}
        if scalars:
            writer = self._tb()
            wall = rec["wall_time"] if isinstance(rec["wall_time"], int | float) else None
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, global_step=step, walltime=wall)

    def records(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl; a last line torn by a crash is left out."""
        if self._metrics is not None:
            self._metrics.flush()
        try:
            return read_jsonl(self._path / METRICS_FILE)
        except ValueError as e:
            raise RunError(str(e)) from None

    def resume_from(self, step: int) -> None:
        """Prepare to continue after the checkpoint at `step`.

        What was logged after that checkpoint belongs to the run that crashed or was abandoned;
        the resumed run logs those steps again. So metrics.jsonl is rewritten (atomically) with
        the records up to `step`, and TensorBoard opens with purge_step=step + 1, which hides
        the stale events with a larger step.
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        self.close()
        kept = [r for r in self.records()
                if isinstance(r.get("step"), int | float) and r["step"] <= step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        write_atomic(self._path / METRICS_FILE, text.encode())
        self._purge_step = step + 1
        self._tb()  # now, so the purge marker is written even if nothing numeric follows

    def save(self, step: int, state: dict, keep_last: int | None = 3) -> Path:
        """Checkpoint `state` at `step` (agents.runs.checkpoint.save_checkpoint)."""
        self._flush()  # the metrics up to `step` reach the disk before the checkpoint does
        return save_checkpoint(self._path, step, state, keep_last=keep_last)

    def load(
        self, step: int | None = None, map_location: str | torch.device = "cpu"
    ) -> tuple[int, dict]:
        """(step, state) of a checkpoint, LATEST by default (see load_checkpoint)."""
        return load_checkpoint(self._path, step, map_location=map_location)

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None before the first one."""
        return latest_step(self._path)

    def close(self) -> None:
        """Flush and close metrics.jsonl and TensorBoard; a later `log` opens them again."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _metrics_file(self) -> IO[str]:
        if self._metrics is None:
            path = self._path / METRICS_FILE
            _drop_torn_tail(path)
            self._metrics = open(path, "a", encoding="utf-8")  # held open: one write per log
        return self._metrics

    def _tb(self) -> SummaryWriter:
        if self._writer is None:
            # imported here: tensorboard is slow to import and most commands never log
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self._path / TB_DIR), purge_step=self._purge_step)
        return self._writer

    def _flush(self) -> None:
        if self._metrics is not None:
            self._metrics.flush()
            os.fsync(self._metrics.fileno())
        if self._writer is not None:
            self._writer.flush()


def _plain(v: Any) -> Any:
    """A metric value as JSON data: tensors and numpy values become Python numbers or lists."""
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().tolist()
    if isinstance(v, np.ndarray | np.generic):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (a crash mid-write) so appends start clean."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        f.truncate(f.read().rfind(b"\n") + 1)



def check_runs_dir(root: Path) -> Path:
    """`root` if it is a folder or can be made one; else RunError naming it (before any run)."""
    for p in (root, *root.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                what = "is a file" if p == root else f"is inside {p}, which is a file"
                raise RunError(f"--runs-dir {root} {what}; it must be a folder (or a path where "
                               "one can be made)")
            if not os.access(p, os.W_OK | os.X_OK) and p == root:
                raise RunError(f"--runs-dir {root} is not writable by this user")
            break
    return root


def _alive(pid: int) -> bool:
    """Whether another process with this id runs now (ours is not: we are not mid-write)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such process id)
        return False
    except OSError:
        return True  # someone else's process (PermissionError): leave its file alone
    return True


def _git_commit() -> str | None:
    """HEAD of the git checkout in the current folder, or None when that is not quick to know."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=2, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha) else None

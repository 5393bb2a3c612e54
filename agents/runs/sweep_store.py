"""The files of a sweep folder (agents/runs/sweep.py runs it on Ray): sweep.json with the grid and
its trials, one folder per trial holding its run, and result.json once a trial finished. Every
write is atomic (data.files.write_atomic); the files are JSON, never pickles."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from data.files import kinema_version, write_atomic

SWEEP_FILE, TRIALS_DIR, RESULT_FILE, TUNE_DIR = "sweep.json", "trials", "result.json", "tune"
FORMAT = "kinema-sweep/1"


class SweepError(ValueError):
    """A sweep folder that cannot be created, read or resumed; the message names it."""


@dataclass(frozen=True)
class Trial:
    """One point of the grid: a seed and the values of the --set hyperparameters."""

    id: str
    seed: int
    params: dict[str, Any]
    """The --set values of this point, as the algorithm's config holds them (JSON)."""
    train: dict[str, Any]
    """The TrainConfig of the run, as a dict."""
    algo_config: dict[str, Any]

    @classmethod
    def make(cls, index: int, params: dict[str, Any], train_cfg: Any, algo_cfg: Any, *,
             device: str | None = None) -> Trial:
        """Trial number `index` from its configs; `device` replaces train_cfg's (checked on
        this machine, while the trial may run on another)."""
        train = dataclasses.asdict(train_cfg) | ({"device": device} if device else {})
        return cls(f"{index:03d}", train_cfg.seed, _jsonable(params), _jsonable(train),
                   _jsonable(dataclasses.asdict(algo_cfg)))


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v))


def default_path(root: Path, env: str, algo: str) -> Path:
    return Path(root) / f"{env}-{algo}-{datetime.now():%Y%m%d-%H%M%S}"


def check_new(path: Path) -> None:
    """Refuse a --out that exists (a file, or a folder with anything in it)."""
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        raise SweepError(f"--out {path} exists; a new sweep needs a new or empty folder "
                         f"(kinema sweep --resume {path} continues a sweep)")


def create(path: Path, meta: dict[str, Any], trials: list[Trial], *, unique: bool = False
           ) -> Path:
    """Make the sweep folder: sweep.json (atomically) and trials/; returns its absolute path.

    `path` must be new or empty (check_new); with `unique` (a default name, made here) a name
    that exists gets "-2", "-3", ... instead, as run folders do.
    """
    base = path = Path(path).absolute()
    for n in range(2, 10_000):
        try:
            path.mkdir(parents=True)
            break
        except FileExistsError:
            if not unique:
                check_new(path)
                break
            path = base.with_name(f"{base.name}-{n}")
    trials = [dataclasses.replace(t, train=t.train | {"runs_dir": str(trial_dir(path, t.id))})
              for t in trials]
    doc = {"format": FORMAT, "created": datetime.now().isoformat(timespec="seconds"),
           "kinema_version": kinema_version(), **meta,
           "trials": [dataclasses.asdict(t) for t in trials]}
    try:
        (path / TRIALS_DIR).mkdir()
        write_atomic(path / SWEEP_FILE, (json.dumps(doc, indent=1) + "\n").encode())
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def load(path: Path) -> tuple[dict[str, Any], list[Trial]]:
    """(sweep.json without its trials, the trials) of a sweep folder."""
    file = Path(path) / SWEEP_FILE
    if not Path(path).is_dir():
        raise SweepError(f"sweep folder {path} does not exist")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"{file} is missing, so {path} is not a sweep folder") from None
    except (OSError, ValueError) as e:
        raise SweepError(f"{file} cannot be read as JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SweepError(f"{file} is not a {FORMAT} file")
    try:
        trials = [Trial(**t) for t in doc.pop("trials")]
    except (KeyError, TypeError) as e:
        raise SweepError(f"{file} has malformed trials ({e})") from None
    return doc, trials


def add_trial(sweep: Path, trial: Trial) -> Trial:
    """Append a trial (one a search drew) to sweep.json, atomically; returns it as stored."""
    sweep = Path(sweep).absolute()
    doc = json.loads((sweep / SWEEP_FILE).read_text(encoding="utf-8"))
    trial = dataclasses.replace(trial, train=trial.train
                                | {"runs_dir": str(trial_dir(sweep, trial.id))})
    doc["trials"].append(dataclasses.asdict(trial))
    write_atomic(sweep / SWEEP_FILE, (json.dumps(doc, indent=1) + "\n").encode())
    return trial


def trial_dir(sweep: Path, trial_id: str) -> Path:
    return Path(sweep) / TRIALS_DIR / trial_id


def trial_runs(folder: Path) -> list[Path]:
    """The run folders in a trial's folder (one, once the trial started)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file())


def read_result(sweep: Path, trial_id: str) -> dict[str, Any] | None:
    """A finished trial's summary, or None while it is not finished."""
    try:
        return json.loads((trial_dir(sweep, trial_id) / RESULT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise SweepError(f"{trial_dir(sweep, trial_id) / RESULT_FILE} cannot be read ({e})"
                         ) from None

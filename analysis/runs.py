"""Run folders read as data, without torch: find them under the paths a person names (a run, a
sweep, any folder that holds runs), read config.json and the evaluation records of
metrics.jsonl, and group the runs by configuration (the config minus the seed).

The file names and record keys are those agents/runs/run.py writes (see its docstring); they
are repeated here so that reading runs never imports the training stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.files import read_jsonl

CONFIG_FILE, METRICS_FILE = "config.json", "metrics.jsonl"
NOT_CONFIG = ("seed", "runs_dir", "device", "threads", "checkpoint_every", "keep_checkpoints")
"""TrainConfig fields that are not part of a configuration: runs that differ only in these
are seeds of one configuration (the seed is what varies; the rest does not change what a run
learns, only where and how fast it is computed and how it is saved)."""


@dataclass(frozen=True)
class RunData:
    """One run folder: its identity, config and evaluation records, in log order."""

    path: Path
    env: str
    algo: str
    config: dict[str, Any]
    """config.json's "config": {"train": TrainConfig fields, "algo_config": ...}."""
    evals: list[dict[str, Any]]
    """The records of metrics.jsonl with "kind": "eval" and a numeric return_mean."""

    @property
    def seed(self) -> Any:
        return self.config.get("train", {}).get("seed")

    @property
    def train(self) -> dict[str, Any]:
        return self.config.get("train", {})


@dataclass(frozen=True)
class Group:
    """The runs of one configuration (config minus seed), and a short label for it."""

    label: str
    key: dict[str, Any]
    runs: list[RunData]

    @property
    def algo(self) -> str:
        return self.runs[0].algo

    @property
    def env(self) -> str:
        return self.runs[0].env


def is_run(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def find_runs(paths: list[Path]) -> list[Path]:
    """The run folders named or held (at any depth) by `paths`, each once, in path order.

    A folder is a run when it holds config.json; folders whose name starts with "." are
    skipped (temporary and aside folders). ValueError names a path that does not exist or
    holds no run.
    """
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise ValueError(f"{p} does not exist; expected a run folder, a sweep folder or a "
                             "folder that holds runs")
        if is_run(p):
            found[p.resolve()] = None
            continue
        held = [c.parent for c in sorted(p.rglob(CONFIG_FILE))
                if not any(part.startswith(".") for part in c.relative_to(p).parts)
                and (c.parent / METRICS_FILE).exists()]
        if not held:
            raise ValueError(f"{p} holds no run folder (a folder with {CONFIG_FILE} and "
                             f"{METRICS_FILE}, as kinema train and kinema sweep write)")
        found.update(dict.fromkeys(h.resolve() for h in held))
    return list(found)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of metrics.jsonl; a last line torn by a crash is left out (as
    agents.runs.run.Run.records does: both read it with data.files.read_jsonl)."""
    return read_jsonl(path)


def read_run(path: Path) -> RunData:
    """A run folder's config and evaluation records; ValueError names a malformed file."""
    file = path / CONFIG_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{file} cannot be read as JSON ({e})") from None
    config = meta.get("config") if isinstance(meta, dict) else None
    if not (isinstance(config, dict) and isinstance(meta.get("env"), str)
            and isinstance(meta.get("algo"), str) and isinstance(config.get("train"), dict)):
        raise ValueError(f"{file} lacks the 'env', 'algo' and 'config' (with 'train') entries "
                         "of a run")
    evals = [r for r in read_records(path / METRICS_FILE) if r.get("kind") == "eval"
             and _number(r.get("return_mean")) and _number(r.get("step"))]
    return RunData(path, meta["env"], meta["algo"], config, evals)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def config_key(run: RunData) -> dict[str, Any]:
    """What makes a configuration: algo, env, the train options but NOT_CONFIG, and every
    algorithm option."""
    train = {k: v for k, v in run.train.items() if k not in NOT_CONFIG}
    return {"algo": run.algo, "env": run.env, "train": train,
            "algo_config": run.config.get("algo_config", {})}


def group_runs(runs: list[RunData]) -> list[Group]:
    """Runs grouped by `config_key`, groups in the order their first run comes."""
    groups: dict[str, tuple[dict[str, Any], list[RunData]]] = {}
    for r in runs:
        key = config_key(r)
        groups.setdefault(json.dumps(key, sort_keys=True), (key, []))[1].append(r)
    flat = [_flatten(key) for key, _ in groups.values()]
    differ = [k for k in dict.fromkeys(k for f in flat for k in f)
              if len({json.dumps(f.get(k)) for f in flat}) > 1]
    out = []
    for (key, members), f in zip(groups.values(), flat, strict=True):
        parts = [f"{k.rpartition('.')[2]}={show(f.get(k))}" for k in differ]
        label = " ".join(parts) if parts else f"{key['algo']} {key['env']}"
        out.append(Group(label, key, members))
    return out


def _flatten(key: dict[str, Any]) -> dict[str, Any]:
    out = {"algo": key["algo"], "env": key["env"]}
    for section in ("train", "algo_config"):
        out.update({f"{section}.{k}": v for k, v in key[section].items()})
    return out


def show(v: Any) -> str:
    """A config value as a person writes it: 0.001, 64x64, true."""
    if isinstance(v, list | tuple):
        return "x".join(map(show, v))
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def load_groups(paths: list[Path]) -> list[Group]:
    """The runs under `paths`, read and grouped by configuration."""
    return group_runs([read_run(p) for p in find_runs(paths)])

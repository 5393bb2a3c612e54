"""`kinema sweep ALGO --env ENV --seeds A-B [--set k=v1,v2 ...] [options]` and
`kinema sweep --resume SWEEP`: a grid of seeds x hyperparameter values as Ray Tune trials,
each an ordinary run directory (agents/runs/sweep.py).

Every `kinema train` option but --seed and --runs-dir passes through to every trial, and so do
ALGO options; `--set NAME=V1,V2` makes NAME (a field of the algorithm's config) an axis of the
grid. With `--search optuna --trials N [--metric return_mean|best_return] [--mode max|min]`
Ray Tune's Optuna searcher draws N trials instead, the --set values as categorical choices
(SEARCH_RULES: trial n gets seed n of --seeds, cycling); sweep.json records the settings under
"search" and each trial as it is drawn. Such a sweep cannot be resumed yet (that would need
Tune's pickled searcher state). Everything is checked before Ray starts, and the sweep folder
is made only once Ray runs, so a refusal leaves nothing behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import itertools
import math
import typing
from pathlib import Path
from typing import Any

from kinema.args import add_dataclass_options, nonneg_float, positive_float, positive_int
from kinema.output import console, emit_json, err_console
from kinema.sweep_view import Display, summary_table

USAGE = ("kinema sweep ALGO --env ENV --seeds A-B [--set NAME=V1,V2 ...] [--search optuna "
         "--trials N [--metric M] [--mode max|min]] [train options] "
         "[ALGO options] | kinema sweep --resume SWEEP")
SKIPPED = ("algo", "seed", "runs_dir")
"""TrainConfig fields that are not flags here: ALGO is positional, --seeds replaces --seed,
and each trial's runs_dir is its folder in the sweep."""
RESOURCE_FLAGS = ("cpus_per_trial", "gpus_per_trial", "max_concurrent")
DEFAULTS = {"cpus_per_trial": 1.0, "gpus_per_trial": 0.0, "max_concurrent": None}
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def add_parser(sub: Any, *, config_options: bool = True) -> argparse.ArgumentParser:
    """Add `sweep`; its TrainConfig flags (which import torch) only with `config_options`."""
    s = sub.add_parser("sweep", help="seeds x hyperparameters as Ray Tune trials, each a run",
                       usage=USAGE, description="A grid of runs on Ray Tune: every seed of "
                       "--seeds for every combination of the --set values. ALGO options (as "
                       "kinema train ALGO -h lists them) apply to every trial.")
    s.add_argument("--seeds", metavar="A-B", help="seeds: a range A-B (0-9) and/or a "
                   "comma-separated list (0,3,7)")
    s.add_argument("--set", action="append", metavar="NAME=V1,V2", help="an axis of the grid: "
                   "a hyperparameter of ALGO and its values (--set lr=1e-3,3e-4 --set "
                   "hidden=64x64,256x256); may be repeated")
    s.add_argument("--search", metavar="grid|optuna", help="grid (default): every combination "
                   "of the --set values; optuna: Ray Tune's Optuna searcher draws --trials "
                   "combinations, the --set values as categorical choices")
    s.add_argument("--trials", type=positive_int, metavar="N",
                   help="with --search optuna: how many trials it draws")
    s.add_argument("--metric", metavar="NAME", help="with --search optuna: what it optimizes, "
                   "return_mean (the last evaluation's, default) or best_return")
    s.add_argument("--mode", metavar="max|min", help="with --search optuna: maximize "
                   "(default) or minimize --metric")
    s.add_argument("--out", type=Path, metavar="SWEEP",
                   help="the new sweep folder (default sweeps/<env>-<algo>-<time>)")
    s.add_argument("--resume", type=Path, metavar="SWEEP", help="continue a sweep: finished "
                   "trials are kept, the others resume from their LATEST checkpoint")
    s.add_argument("--address", metavar="HOST:PORT", help="join the Ray cluster there (`ray "
                   "start --head` prints it); default: a local Ray instance on this machine")
    s.add_argument("--cpus-per-trial", type=positive_float, metavar="C",
                   help="CPUs Ray reserves for each trial (default 1)")
    s.add_argument("--gpus-per-trial", type=nonneg_float, metavar="G",
                   help="GPUs Ray reserves for each trial; a fraction shares one (default 0)")
    s.add_argument("--max-concurrent", type=positive_int, metavar="N",
                   help="at most N trials at once (default: as many as the resources allow)")
    if config_options:
        from agents.runs.config import TrainConfig

        add_dataclass_options(s, TrainConfig, skip=SKIPPED)
    s.add_argument("--json", action="store_true",
                   help="print the sweep folder and a summary row per trial as one JSON object")
    s.add_argument("--no-progress", action="store_true", help="hide the table of trials")
    s.set_defaults(handler=main)
    return s


def take_algo(argv: list[str]) -> str | None:
    """Remove and return the ALGO word of `sweep ALGO ...` (as kinema.train.take_algo)."""
    if len(argv) > 1 and argv[0] == "sweep" and not argv[1].startswith("-"):
        return argv.pop(1)
    return None


# -- the grid -------------------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """'0-9' -> 0..9; '0,3,7' and '0-2,10' too. ValueError names the bad part."""
    from agents.runs.config import MAX_SEED

    accepted = (f"a range A-B (e.g. 0-9) or comma-separated seeds (0,3,7), integers in "
                f"[0, {MAX_SEED}]")
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not (lo.isdigit() and (hi.isdigit() if dash else True)):
            raise ValueError(f"--seeds {text!r}: {part.strip()!r} is not a seed or a range; "
                             f"expected {accepted}")
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise ValueError(f"--seeds {text!r}: the range {part.strip()} ends before it starts; "
                             f"expected A-B with A <= B")
        if b > MAX_SEED:
            raise ValueError(f"--seeds {text!r}: {b} is too large; expected {accepted}")
        seeds.extend(range(a, b + 1))
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"--seeds {text!r} names seed {repeated[0]} twice; each seed once")
    return seeds


@dataclasses.dataclass(frozen=True)
class Axis:
    name: str
    values: list[str]
    """Each value as the algorithm's option takes it: ['--lr', '1e-3'], ['--no-norm-obs']."""
    args: list[list[str]]


def parse_sets(items: list[str], cls: type, algo: str) -> list[Axis]:
    """The --set axes, each checked against the fields of the algorithm's config `cls`."""
    fields = [f.name for f in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    axes: list[Axis] = []
    for item in items:
        raw, eq, text = item.partition("=")
        name = raw.strip().replace("-", "_")
        if not (eq and name):
            raise ValueError(f"--set {item!r} is not NAME=V1,V2 (e.g. --set lr=1e-3,3e-4)")
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"--set {item}: {algo} has no hyperparameter {name!r}{hint}; its "
                             f"hyperparameters: {', '.join(fields)}")
        if any(a.name == name for a in axes):
            raise ValueError(f"--set {name} is given twice; give its values once, "
                             f"comma-separated")
        values = [v.strip() for v in text.split(",")]
        if "" in values:
            raise ValueError(f"--set {item}: a value is empty; expected NAME=V1,V2")
        if len(set(values)) < len(values):
            raise ValueError(f"--set {item} repeats a value; each value once")
        axes.append(Axis(name, values, [_option(name, v, hints[name], item) for v in values]))
    return axes


def _option(name: str, value: str, tp: Any, item: str) -> list[str]:
    """A --set value as the tokens of the algorithm's option (tyro's spelling)."""
    flag = "--" + name.replace("_", "-")
    if tp is bool:
        if value.lower() not in TRUE + FALSE:
            raise ValueError(f"--set {item}: {value!r} is not true or false")
        return [flag] if value.lower() in TRUE else [f"--no-{name.replace('_', '-')}"]
    if typing.get_origin(tp) is tuple:
        return [flag, *value.split("x")]  # hidden=64x64 -> --hidden 64 64
    return [flag, value]


def plan(a: argparse.Namespace) -> tuple[dict[str, Any], list[Any]]:
    """(sweep.json's description, the trials) of a new sweep; every trial's config is built
    and checked here, as `kinema train` would check it, before Ray starts."""
    import sim
    from agents.registry import algorithm, check_fits
    from agents.runs.config import TrainConfig
    from agents.runs.sweep_store import Trial
    from kinema.algo_options import parse_algo_options
    from kinema.train import config_fields

    if a.algo is None or a.env is None or a.seeds is None:
        raise ValueError("ALGO, --env and --seeds are required (or --resume SWEEP)")
    search = parse_search(a)
    algo = algorithm(a.algo)
    check_fits(algo, a.env, sim.spec(a.env).info)
    seeds = parse_seeds(a.seeds)
    axes = parse_sets(a.set or [], algo.config_cls, a.algo)
    given = {k: getattr(a, k) for k in config_fields() if k not in (*SKIPPED, "env")
             and getattr(a, k) is not None}
    device = given.pop("device", "auto")
    if device != "cpu" and device != "auto" and not (a.gpus_per_trial or 0):
        raise ValueError(f"--device {device} needs --gpus-per-trial above 0: a trial uses only "
                         "the GPUs Ray gives it")
    trials: list[Trial] = []
    for point in itertools.product(*(range(len(ax.values)) for ax in axes)):
        args = [tok for ax, i in zip(axes, point, strict=True) for tok in ax.args[i]]
        try:
            algo_cfg = parse_algo_options(algo.config_cls, algo.preset(a.env),
                                          a.algo_args + args, f"kinema sweep {a.algo}")
            if algo.check is not None:
                algo.check(algo_cfg, a.env)
        except ValueError as e:
            where = " ".join(f"{ax.name}={ax.values[i]}" for ax, i in zip(axes, point,
                                                                           strict=True))
            raise ValueError(f"--set {where}: {e}" if where else str(e)) from None
        params = {ax.name: getattr(algo_cfg, ax.name) for ax in axes}
        for seed in seeds[:1] if search else seeds:  # a search gives each drawn trial its seed
            cfg = TrainConfig(algo=a.algo, env=a.env, seed=seed, **given | {"device": "cpu"})
            trials.append(Trial.make(len(trials), params, cfg, algo_cfg, device=device))
    meta = {"algo": a.algo, "env": a.env, "seeds": seeds,
            "set": {ax.name: ax.values for ax in axes}, "algo_args": a.algo_args,
            "train": given | {"device": device},
            "resources": {k: getattr(a, k) if getattr(a, k) is not None else DEFAULTS[k]
                          for k in RESOURCE_FLAGS}}
    if search:
        meta["search"] = search | {"sampler_seed": seeds[0]}
    return meta, trials


SEARCH_RULES = ("--search optuna draws --trials N combinations of the --set values; trial n "
                "gets seed n of --seeds (cycling); the Optuna sampler's seed is the first seed")


def parse_search(a: argparse.Namespace) -> dict[str, Any] | None:
    """The search settings of a new sweep (None for a grid); ValueError for bad ones."""
    from agents.runs.sweep import METRICS

    kind = a.search or "grid"
    if kind not in ("grid", "optuna"):
        raise ValueError(f"--search {kind!r} is not grid or optuna")
    if kind == "grid":
        given = [f"--{k}" for k in ("trials", "metric", "mode") if getattr(a, k) is not None]
        if given:
            raise ValueError(f"{given[0]} needs --search optuna (a grid runs every combination)")
        return None
    if a.trials is None:
        raise ValueError("--search optuna needs --trials N (how many trials to draw)")
    metric, mode = a.metric or "return_mean", a.mode or "max"
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, METRICS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"--metric {metric!r} is not one a trial reports{hint}; expected one "
                         f"of {', '.join(METRICS)}")
    if mode not in ("max", "min"):
        raise ValueError(f"--mode {mode!r} is not max or min")
    if not a.set:
        raise ValueError("--search optuna needs at least one --set NAME=V1,V2 to choose from")
    return {"kind": "optuna", "trials": a.trials, "metric": metric, "mode": mode}


# -- the command ----------------------------------------------------------------------------------
def main(a: argparse.Namespace) -> int:
    from agents.runs import sweep as S
    from agents.runs import sweep_store as store
    from agents.runs.cluster import ray_session

    candidates = None
    if a.resume is not None:
        _refuse_grid_options(a)
        meta, _ = store.load(a.resume)
        if meta.get("search"):
            raise ValueError(f"--resume {a.resume}: a search sweep (--search "
                             f"{meta['search']['kind']}) cannot be resumed yet; start a new one")
        out: Path = a.resume
    else:
        meta, trials = plan(a)
        if meta.get("search"):  # the grid's trials, each a candidate the search may draw
            candidates = {tuple(meta["set"][k][i] for k, i in zip(meta["set"], point,
                                                                   strict=True)): t
                          for t, point in zip(trials, itertools.product(
                              *(range(len(v)) for v in meta["set"].values())), strict=True)}
            trials = []
        if a.out is not None:
            store.check_new(a.out)
    saved = meta["resources"]
    res = S.Resources(*(getattr(a, k) if getattr(a, k) is not None else saved[k]
                        for k in RESOURCE_FLAGS))
    with ray_session(a.address) as cluster:
        S.check_fits_cluster(res, cluster)
        if a.resume is None:
            path = a.out or store.default_path(Path("sweeps"), meta["env"], meta["algo"])
            out = store.create(path, meta, trials, unique=a.out is None)
        _, all_trials = store.load(out)
        with Display(all_trials, store.read_result, out,
                     enabled=not (a.json or a.no_progress)) as display:
            outcome = S.run_sweep(out, res, on_event=display.update, candidates=candidates)
    return finish(Path(out).absolute(), outcome, a.json)


def _refuse_grid_options(a: argparse.Namespace) -> None:
    from kinema.train import config_fields

    given = [f"--{k.replace('_', '-')}" for k in ("seeds", "set", "search", "trials", "metric",
                                                  "mode", "out", *config_fields())
             if k not in SKIPPED and getattr(a, k, None) is not None]
    if a.algo is not None:
        given.insert(0, a.algo)
    given += a.algo_args
    if given:
        raise ValueError(f"--resume continues a sweep's own grid and configs; {given[0]} cannot "
                         "change them (start a new sweep for another grid); only --address, "
                         "--cpus-per-trial, --gpus-per-trial and --max-concurrent may be given")


def finish(path: Path, outcome: Any, as_json: bool) -> int:
    """Print the trials (a table, or one JSON object); exit 130 when interrupted, 1 when a
    trial failed, else 0."""
    rows = outcome.rows
    if as_json:
        emit_json({"sweep": str(path), "trials": [_clean(r) for r in rows]})
    else:
        console.print(summary_table(path, rows))
    if outcome.interrupted:
        err_console.print(f"kinema sweep: interrupted; kinema sweep --resume {path} continues "
                          "it (finished trials are kept, the others resume from their LATEST "
                          "checkpoint)", markup=False, highlight=False, soft_wrap=True)
        return 130
    if outcome.failed:
        first = outcome.failed[0]
        err_console.print(f"kinema sweep: {len(outcome.failed)} of {len(rows)} trials failed "
                          f"(trial {first['trial']}: {first.get('error')}); kinema sweep "
                          f"--resume {path} runs them again", markup=False, highlight=False,
                          soft_wrap=True)
        return 1
    return 0


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in row.items()}

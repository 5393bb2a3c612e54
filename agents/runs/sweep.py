"""Sweeps over seeds and hyperparameters as Ray Tune trials, each an ordinary run directory.

    SWEEP/
      sweep.json               the grid: algo, env, seeds, --set values, resources, and per trial
                               its id, seed, params and full configs (written once, atomically)
      trials/<id>/<run>/       the trial's run folder, exactly as `kinema train` writes it
      trials/<id>/result.json  the trial's summary, written (atomically) only when it finished
      tune/attempt-<n>/        Ray Tune's own experiment files, one folder per run or resume

Ray itself (a local instance or a cluster by address) comes from agents/runs/cluster.py. Each
trial is a Ray Tune function trainable (`_trial`) that calls agents.runs.train.train, or
agents.runs.train.resume when its folder already holds a run with a LATEST checkpoint, and
reports progress with `ray.tune.report`. Ray Tune schedules the trials on the cluster's CPUs and
GPUs (`tune.with_resources`), runs them in its worker processes, and calls back the driver with
their results (a `tune.Callback`), which draws the progress table.

Resume (`kinema sweep --resume SWEEP`) is ours, not `Tuner.restore`: Tune's experiment state is
a pickle (its docs warn that restoring runs code from the folder), and nothing here loads a
pickle. So the state of a sweep is its files: a trial with result.json is finished and kept;
every other trial runs again on a fresh Tuner and continues its run from LATEST (bit-exact on
CPU, as `kinema train --resume`). A run folder that has no checkpoint yet holds nothing to
continue and is started again. On a multi-machine cluster SWEEP must be on storage every node
mounts at the same path (the trials write their run folders there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.runs.sweep_store import (
    RESULT_FILE,
    TUNE_DIR,
    SweepError,
    Trial,
    add_trial,
    load,
    read_result,
    trial_dir,
    trial_runs,
)
from data.files import write_atomic

REPORT_INTERVAL_S = 1.0
"""Seconds between two progress reports of a trial to the driver (tune.report)."""


@dataclass(frozen=True)
class Resources:
    """What each trial asks Ray for, and how many may run at once (None: as many as fit)."""

    cpus: float = 1.0
    gpus: float = 0.0
    max_concurrent: int | None = None


@dataclass
class Outcome:
    """A finished `run_sweep`: the summary row of every trial, and whether it was cut short."""

    rows: list[dict[str, Any]]
    interrupted: bool

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "error"]


def check_fits_cluster(res: Resources, cluster: dict[str, float]) -> None:
    """A trial that asks for more than the cluster has would wait for ever: refuse it."""
    for flag, asked, key in (("--cpus-per-trial", res.cpus, "CPU"),
                             ("--gpus-per-trial", res.gpus, "GPU")):
        have = cluster.get(key, 0.0)
        if asked > have:
            raise ValueError(f"{flag} {asked:g} is more than the Ray cluster has ({have:g} "
                             f"{key}s); ask for at most {have:g}")


# -- Ray Tune --------------------------------------------------------------------------------------
def _events_callback(on_event: Callable[[dict[str, Any]], None]) -> Any:
    """A tune.Callback (run in the driver) that forwards each trial's reports and ends."""
    from ray import tune

    class Events(tune.Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            on_event({"trial": trial.config["trial"], "status": "running"})

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                            **info: Any) -> None:
            on_event({k: result[k] for k in _REPORTED if k in result} | {"status": "running"})

        def on_trial_complete(self, iteration: int, trials: list, trial: Any,
                              **info: Any) -> None:
            on_event({"trial": trial.config["trial"], "status": "finished"})

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            on_event({"trial": trial.config["trial"], "status": "error"})

        def __reduce__(self) -> Any:  # Tune saves its run config; the display stays here
            return (_no_events, ())

    return Events()


def _no_events() -> Any:
    return _events_callback(lambda _: None)


_REPORTED = ("trial", "step", "total", "steps_per_s", "eval_return", "run")
METRICS = ("return_mean", "best_return")
"""What a search may optimize: each trial reports both with every report (None before its
first evaluation); the last report holds the run's last evaluation and its best."""


def _searcher(sweep: Path, search: dict[str, Any], candidates: dict[tuple[str, ...], Trial],
              names: list[str], seeds: list[int]) -> Any:
    """Ray Tune's OptunaSearch, drawing the --set values as categorical choices; each trial it
    draws is added to sweep.json (trial n gets seed seeds[n % len(seeds)]) before it runs."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study it makes

    class Search(OptunaSearch):
        def suggest(self, trial_id: str) -> dict | None:
            cfg = super().suggest(trial_id)
            if cfg is None:
                return None
            n = len(load(sweep)[1])
            template = candidates[tuple(str(cfg[k]) for k in names)]
            seed = seeds[n % len(seeds)]
            trial = add_trial(sweep, dataclasses.replace(
                template, id=f"{n:03d}", seed=seed, train=template.train | {"seed": seed}))
            return dict(cfg) | {"trial": trial.id}

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            """No pruning: a report before the first evaluation has no return yet."""

    return Search(metric=search["metric"], mode=search["mode"], seed=search["sampler_seed"])


def run_sweep(sweep: Path, resources: Resources, *,
              on_event: Callable[[dict[str, Any]], None] | None = None,
              candidates: dict[tuple[str, ...], Trial] | None = None) -> Outcome:
    """Run every unfinished trial of `sweep` as a Ray Tune trial (Ray must be initialized,
    see ray_session) and return the summary rows of all trials, finished ones included.

    A search sweep (sweep.json's "search") has no trials yet: Optuna draws search["trials"] of
    them from `candidates`, one planned trial per combination of the --set values (keyed by
    those values, as given), and each is added to sweep.json as it is drawn.
    """
    from ray import tune

    sweep = Path(sweep).absolute()
    meta, trials = load(sweep)
    search = meta.get("search")
    todo = [t.id for t in trials if read_result(sweep, t.id) is None]
    errors: dict[str, str] = {}
    if search is not None and trials:
        raise SweepError(f"{sweep} is a search sweep that has started; a search sweep cannot "
                         "be resumed yet (start a new one)")
    if todo or search is not None:
        trainable = tune.with_resources(_trial, {"cpu": resources.cpus, "gpu": resources.gpus})
        space: dict[str, Any] = {"sweep": str(sweep), "gpus": resources.gpus,
                                 "cwd": os.getcwd()}
        if search is None:
            space["trial"] = tune.grid_search(todo)
            searching: dict[str, Any] = {}
        else:
            if candidates is None:
                raise SweepError(f"{sweep} is a search sweep; run_sweep needs its candidates")
            names = list(meta["set"])
            space |= {k: tune.choice(v) for k, v in meta["set"].items()}
            searching = {"search_alg": _searcher(sweep, search, candidates, names,
                                                 meta["seeds"]),
                         "num_samples": search["trials"]}
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(max_concurrent_trials=resources.max_concurrent,
                                        reuse_actors=True,  # a reused worker keeps torch
            # and the simulators imported, so the next trial starts at once (BENCHMARKS.md)
                                        **searching),
            run_config=tune.RunConfig(
                name=_attempt(sweep), storage_path=str(sweep / TUNE_DIR),
                verbose=0, failure_config=tune.FailureConfig(max_failures=0),
                callbacks=[_events_callback(on_event or (lambda _: None))]),
        )
        with contextlib.redirect_stdout(io.StringIO()):  # Tune prints its banner and trial
            grid = tuner.fit()  # lines even at verbose=0; the caller's table shows progress
        for i in range(len(grid)):
            result = grid[i]
            if result.error is not None and result.config and "trial" in result.config:
                errors[result.config["trial"]] = _last_line(result.error)
        _, trials = load(sweep)  # a search added its trials
    rows, interrupted = [], False
    for t in trials:
        done = read_result(sweep, t.id)
        if done is None:
            status = "error" if t.id in errors else "interrupted"
            interrupted |= status == "interrupted"
            runs = trial_runs(trial_dir(sweep, t.id))
            done = {"status": status, "run": str(runs[0]) if runs else None,
                    "error": errors.get(t.id)}
        rows.append({"trial": t.id, "seed": t.seed, "params": t.params, **done})
    return Outcome(rows, interrupted)


def _attempt(sweep: Path) -> str:
    """The name of this run's Tune experiment: attempt-1, attempt-2 after a resume, ..."""
    tune_dir = sweep / TUNE_DIR
    n = 1 + (sum(1 for p in tune_dir.iterdir() if p.is_dir()) if tune_dir.is_dir() else 0)
    while (tune_dir / f"attempt-{n}").exists():
        n += 1
    return f"attempt-{n}"


def _last_line(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return " ".join((lines[-1] if lines else type(e).__name__).split())[:300]


# -- one trial, in a Ray worker -------------------------------------------------------------------
def _trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: train (or resume) one trial's run, then write result.json."""
    from ray import tune

    from agents.loops.core import Diverged
    from agents.registry import algorithm
    from agents.runs import train as T
    from agents.runs.config import TrainConfig, config_from_dict

    sweep = Path(config["sweep"])
    (trial,) = [t for t in load(sweep)[1] if t.id == config["trial"]]
    if os.path.isdir(config["cwd"]):
        os.chdir(config["cwd"])  # Tune starts trials in its own folder; config.json's git commit
        # and relative paths are the driver's, as with kinema train
    folder = trial_dir(sweep, trial.id)
    device = trial.train["device"]
    if device == "auto" and not config["gpus"]:
        device = "cpu"  # a trial uses only the GPUs Ray gave it
    report = _Reporter(trial.id, folder, tune.report)
    run = _resumable(folder)
    try:
        if run is not None:
            result = T.resume(run, train_overrides={"device": device}, on_progress=report)
        else:
            cfg = config_from_dict(TrainConfig, trial.train | {"device": device,
                                                               "runs_dir": str(folder)})
            algo_cfg = config_from_dict(algorithm(cfg.algo).config_cls, trial.algo_config)
            result = T.train(cfg, algo_cfg, on_progress=report)
        summary = {"status": "done", **summarize_run(result.run), "stopped": result.stopped}
    except Diverged as e:
        runs = trial_runs(folder)
        summary = {"status": "diverged", "error": str(e),
                   **(summarize_run(runs[0]) if runs else {})}
    write_atomic(folder / RESULT_FILE, (json.dumps(summary, indent=1) + "\n").encode())
    tune.report({"trial": trial.id, **{k: summary.get(k) for k in ("run", "step", "total")},
                 "eval_return": summary.get("return_mean"),
                 **{k: summary.get(k) for k in METRICS}})


def _resumable(folder: Path) -> Path | None:
    """The trial's run folder when it has a checkpoint to continue from; a run folder without
    one (killed before its first checkpoint) is removed, so the trial starts it again."""
    runs = trial_runs(folder)
    with_latest = [r for r in runs if (r / "LATEST").is_file()]
    for r in runs:
        if r not in with_latest:
            shutil.rmtree(r)
    if len(with_latest) > 1:
        raise SweepError(f"{folder} holds {len(with_latest)} runs; a trial has one")
    return with_latest[0] if with_latest else None


def summarize_run(run: Path) -> dict[str, Any]:
    """A run's last evaluation, its best, and its budget, from metrics.jsonl and config.json."""
    from agents.runs.run import Run

    r = Run.open(run)
    evals = [e for e in r.records() if e.get("kind") == "eval"]
    last = evals[-1] if evals else {}
    return {"run": str(run), "step": last.get("step"), "total": r.config["train"].get("steps"),
            "train_s": last.get("train_s"), "return_mean": last.get("return_mean"),
            "return_std": last.get("return_std"),
            "best_return": max((e["return_mean"] for e in evals), default=None)}


class _Reporter:
    """on_progress of a trial's loop: a tune.report at most every REPORT_INTERVAL_S."""

    def __init__(self, trial_id: str, folder: Path, report: Callable[[dict], None]) -> None:
        self.trial_id, self.folder, self.report = trial_id, folder, report
        self.last = -float("inf")
        self.run: str | None = None
        self.best: float | None = None

    def __call__(self, p: Any) -> None:
        now = time.monotonic()
        if now - self.last < REPORT_INTERVAL_S:
            return
        self.last = now
        if p.last_eval is not None and (self.best is None or p.last_eval > self.best):
            self.best = p.last_eval
        if self.run is None:
            runs = trial_runs(self.folder)
            self.run = str(runs[0]) if runs else None
        self.report({"trial": self.trial_id, "step": p.step, "total": p.total,
                     "steps_per_s": p.steps_per_s, "eval_return": p.last_eval, "run": self.run,
                     "return_mean": p.last_eval, "best_return": self.best})

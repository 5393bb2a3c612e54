"""`kinema train [ALGO] --env ENV [options] [ALGO options]` and `kinema train --resume RUN`.

The options of a run are TrainConfig's fields (agents/runs/config.py): their flags, types and
help come from the dataclass and its attribute docstrings, and what --resume may change from
its field metadata (MUTABLE_ON_RESUME). The algorithm's options are its config dataclass's,
parsed by tyro (kinema/algo_options.py). Only --resume, --json, --no-progress and -h/--help
are this command's own.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kinema.args import add_dataclass_options, flag
from kinema.output import emit, training_progress

USAGE = ("kinema train [ALGO] --env ENV [options] [ALGO options]"
         " | kinema train --resume RUN [options]")
POSITIONAL = ("algo",)
"""TrainConfig fields that are not flags: ALGO is the first word after `train`."""


def add_parser(sub: Any, *, config_options: bool = True) -> argparse.ArgumentParser:
    """Add `train`. Its TrainConfig flags import torch (agents.runs.config): without
    `config_options` only the command's own flags are added, for commands that must not."""
    t = sub.add_parser("train", help="train an agent; ALGO options follow (kinema train ALGO -h)",
                       add_help=False, usage=USAGE)
    resume_help = "continue RUN from its LATEST checkpoint"
    if config_options:
        from agents.runs.config import MUTABLE_ON_RESUME, TrainConfig

        add_dataclass_options(t, TrainConfig, skip=POSITIONAL)
        mutable = [flag(f) for f in config_fields(TrainConfig) if f in MUTABLE_ON_RESUME]
        resume_help += f"; only {', '.join(mutable)} may change"
    t.add_argument("--resume", type=Path, metavar="RUN", help=resume_help)
    t.add_argument("--json", action="store_true", help="print the result as one JSON object")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("-h", "--help", action="store_true", help="show this help (and ALGO's options)")
    t.set_defaults(handler=main, command_parser=t)
    return t


def config_fields(cls: type | None = None) -> list[str]:
    """The TrainConfig fields `kinema train` has a flag for, in declaration order."""
    import dataclasses

    if cls is None:
        from agents.runs.config import TrainConfig

        cls = TrainConfig
    return [f.name for f in dataclasses.fields(cls) if f.name not in POSITIONAL]


def take_algo(argv: list[str]) -> str | None:
    """Remove and return the ALGO word of `train ALGO ...`, taken first so that option values
    never fill it."""
    if len(argv) > 1 and argv[0] == "train" and not argv[1].startswith("-"):
        return argv.pop(1)
    return None


def main(a: argparse.Namespace) -> None:
    from agents.registry import algorithm, check_fits
    from agents.runs import train as T
    from kinema.algo_options import algo_overrides, parse_algo_options

    if a.help:
        _help(a)
        return
    given = {k: getattr(a, k) for k in config_fields() if getattr(a, k) is not None}
    rest = a.algo_args
    if a.resume is not None:
        if a.algo is not None:
            given["algo"] = a.algo
        algo_over = algo_overrides(a.resume, rest)
        progress, update = training_progress(given.get("steps") or 0,
                                             enabled=not (a.no_progress or a.json))
        with progress:
            result = T.resume(a.resume, train_overrides=given, algo_overrides=algo_over,
                              on_progress=update)
    else:
        if a.algo is None or a.env is None:
            raise ValueError("ALGO and --env are required (or --resume RUN)")
        algo = algorithm(a.algo)
        import sim

        check_fits(algo, a.env, sim.spec(a.env).info)  # before the progress bar draws
        algo_cfg = parse_algo_options(algo.config_cls, algo.preset(a.env), rest,
                                      f"kinema train {a.algo}")
        cfg = T.TrainConfig(algo=a.algo, **given)
        steps = cfg.steps or algo.default_steps(cfg.env)
        progress, update = training_progress(steps, enabled=not (a.no_progress or a.json))
        with progress:
            result = T.train(cfg, algo_cfg, on_progress=update)
    report(result, a.json)


def _help(a: argparse.Namespace) -> None:
    """This command's help, then ALGO's options (tyro's help) or the algorithm names."""
    import tyro

    from agents.registry import algorithm, names

    a.command_parser.print_help()
    if a.algo:
        print(f"\n{a.algo} options (defaults shown for --env {a.env or 'cartpole'}):")
        algo = algorithm(a.algo)
        tyro.cli(algo.config_cls, default=algo.preset(a.env or "cartpole"), args=["--help"],
                 prog=f"kinema train {a.algo}")
    else:
        print(f"\nalgorithms: {', '.join(names())}")


def report(result: Any, as_json: bool) -> None:
    """The run's outcome: its folder, timing and its last evaluation."""
    from agents.runs.run import Run

    run = Run.open(result.run)
    evals = [r for r in run.records() if r.get("kind") == "eval"]
    values = run.path / "values.json"
    if values.is_file() and not as_json:  # tabular runs: the value table and greedy policy
        import json

        from agents.classic.tabular import format_values

        print(format_values(json.loads(values.read_text()), run.env) + "\n")
    last = evals[-1] if evals else {}
    loop = result.loop
    emit({
        "run": str(result.run),
        "steps": loop.step,
        "train_s": round(loop.train_s, 2),
        "wall_s": round(loop.wall_s, 2),
        "steps_per_s": round(loop.step / max(loop.train_s, 1e-9), 1),
        "return_mean": last.get("return_mean"),
        "return_std": last.get("return_std"),
        "episodes": last.get("episodes"),
        "solved_at": loop.solved_at,
        "stopped": result.stopped,  # one of agents.runs.train.STOP_REASONS
        # imitation runs: expert-normalized score and expert labels (agents/imitation_loops.py)
        **{k: last[k] for k in ("normalized_score", "labels") if k in last},
    }, as_json=as_json, title="training")

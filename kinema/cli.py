"""`kinema`: list envs, train (one run or a sweep on Ray), evaluate, report and plot runs, export
and run policies.

Thin by design: each command is one module of this package with `add_parser(subparsers)` and
a `main(args)` that calls one function of sim, agents, data or deploy. This module assembles
the parser, dispatches, and turns the errors a person can fix into one line: exit 2 (3 when
training diverged, 130 when interrupted).
"""

from __future__ import annotations

import sys

from kinema import bench, collect, envs, evaluate, export, plot, report, ros, run, sweep, train
from kinema.args import Parser
from kinema.output import err_console

_TORCH_FREE = ("run", "ros", "ros-sim", "report", "plot")
"""Commands that run without the training stack (a robot computer's, and the analysis of run
folders): they must not import agents. Every module of this package imports agents, torch and
simulators only inside functions."""


def build_parser(command: str | None = None) -> Parser:
    """The `kinema` parser. The TrainConfig flags of `train` and `sweep` are added only when
    `command` is that command: building them imports agents.runs.config, and so torch."""
    p = Parser(prog="kinema", description="Kinema: simulate, train, export and run robot "
               "controllers.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser,
                           metavar="{envs,train,eval,collect,export,run,ros,ros-sim,bench,sweep,report,plot}")
    envs.add_parser(sub)
    train.add_parser(sub, config_options=command == "train")
    for module in (evaluate, collect, export, run, bench, ros):
        module.add_parser(sub)
    sweep.add_parser(sub, config_options=command == "sweep")
    report.add_parser(sub)
    plot.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    algo = train.take_algo(argv) or sweep.take_algo(argv)
    args, rest = parser.parse_known_args(argv)
    if args.command in ("train", "sweep"):  # ALGO options: the algorithm's parser reads them
        args.algo, args.algo_args = algo, rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from deploy.contract import BundleError
    from sim.errors import UnknownNameError

    fixable: tuple[type[Exception], ...] = (UnknownNameError, ValueError, BundleError,
                                            FileNotFoundError)
    diverged: tuple[type[Exception], ...] = ()  # `except ()` catches nothing
    if args.command not in _TORCH_FREE:  # the training stack's errors, where it may run
        from agents.loops.core import Diverged
        from agents.runs.checkpoint import CheckpointError
        from agents.runs.run import RunError

        fixable, diverged = (*fixable, CheckpointError, RunError), (Diverged,)
    try:
        code = args.handler(args)  # None, or the exit code of a command that has several
    except fixable as exc:
        err_console.print(f"kinema {args.command}: error: {exc}", markup=False, highlight=False,
                          soft_wrap=True)
        return 2
    except diverged as exc:
        err_console.print(f"kinema {args.command}: diverged: {exc}", markup=False, highlight=False,
                          soft_wrap=True)
        return 3
    except KeyboardInterrupt:
        err_console.print(f"kinema {args.command}: interrupted; the last complete checkpoint "
                          "is kept", markup=False, highlight=False,
                          soft_wrap=True)
        return 130
    return int(code or 0)

"""`kinema run BUNDLE`: a bundle in the real-time runner against a simulator.

Torch-free (kinema/cli.py): a robot computer runs it without the training stack.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from kinema.args import nonneg_float, positive_int
from kinema.output import emit, err_console

FAULT_EXIT = 4
"""Exit status of a run that ended in a latched fault stop (the line names the reason)."""
INTERRUPTED_EXIT = 130
EXIT_CODES = (
    "exit status: 0 the run completed (its steps or episodes); 2 bad input, nothing ran "
    f"(one line names it); {FAULT_EXIT} the run ended in a latched fault stop (one line names "
    "the reason, e.g. stale_obs or robot_read_error; the report is still printed); "
    f"{INTERRUPTED_EXIT} interrupted (Ctrl-C; the safe action was sent)"
)


def seed(text: str) -> int:
    """argparse type: a simulator seed, an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected a seed, an "
                                         "integer >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; expected a seed, an integer "
                                         ">= 0")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    r = sub.add_parser("run", help="run a bundle in the real-time runner against a simulator",
                       description="Run a bundle through the safety layer against a simulated "
                       "robot and report returns, latency and why the run stopped.",
                       epilog=EXIT_CODES)
    r.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle folder from kinema export")
    r.add_argument("--env", help="simulated robot (default: the env in the bundle's contract; "
                   "its action bounds must contain the contract's)")
    r.add_argument("--rate", type=nonneg_float, metavar="HZ",
                   help="control rate (default: the contract's; 0 = as fast as possible)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--episodes", type=positive_int, help="stop after N episodes (default 1)")
    g.add_argument("--steps", type=positive_int, help="stop after N control steps")
    r.add_argument("--seed", type=seed, default=0,
                   help="seed of the simulated robot, an integer >= 0 (default 0)")
    r.add_argument("--realtime", type=int, nargs="?", const=50, metavar="PRIO",
                   help="run the loop under SCHED_FIFO (priority PRIO, default 50; Linux, "
                   "needs root or CAP_SYS_NICE)")
    r.add_argument("--json", action="store_true", help="print the report as one JSON object")
    r.set_defaults(handler=main)
    return r


def main(a: argparse.Namespace) -> None:
    from deploy.runtime import run_bundle

    if a.realtime is not None:
        from deploy.runtime.realtime import use_realtime

        use_realtime(a.realtime)
    episodes = None if a.steps else (a.episodes or 1)
    report = run_bundle(a.bundle, env=a.env, rate_hz=a.rate, episodes=episodes, steps=a.steps,
                        seed=a.seed)
    result = report.to_json()
    emit(result if a.json else table_view(result), as_json=a.json, title="real-time run")
    exit_for_stop("run", report.stop_reason, report.fault)


def exit_for_stop(command: str, reason: str | None, fault: str | None, *,
                  interrupt_ends: bool = False, after: str | None = None) -> None:
    """Return for a run that completed; otherwise one line naming why it stopped, and exit
    FAULT_EXIT (a latched stop) or INTERRUPTED_EXIT (Ctrl-C, unless `interrupt_ends`: a
    command that serves until told to stop) so a script can tell."""
    from deploy.runtime.safety import REASONS, ROBOT_SEND_ERROR, describe_stop

    if reason in REASONS:
        after = after or ("no command could be sent after it" if reason == ROBOT_SEND_ERROR
                          else "the safe action was commanded")
        _exit(f"kinema {command}: stopped: {describe_stop(reason, fault)}; {after}", FAULT_EXIT)
    if reason == "interrupted" and not interrupt_ends:
        _exit(f"kinema {command}: interrupted; the safe action was sent", INTERRUPTED_EXIT)


def _exit(line: str, code: int) -> NoReturn:
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(code)


def table_view(result: dict[str, Any]) -> dict[str, Any]:
    """`result` as a table prints it: lists of numbers rounded like its other numbers (6
    significant digits); --json keeps full precision."""
    return {k: _rounded(v) if isinstance(v, list) else v for k, v in result.items()}


def _rounded(values: list[Any]) -> str:
    return "[" + ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in values) + "]"

"""`kinema run BUNDLE`: a bundle in the real-time runner against a simulator.

Torch-free (kinema/cli.py): a robot computer runs it without the training stack.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kinema.args import nonneg_float, positive_int
from kinema.output import emit


def add_parser(sub: Any) -> argparse.ArgumentParser:
    r = sub.add_parser("run", help="run a bundle in the real-time runner against a simulator")
    r.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle folder from kinema export")
    r.add_argument("--env", help="simulated robot (default: the env in the bundle's contract)")
    r.add_argument("--rate", type=nonneg_float, metavar="HZ",
                   help="control rate (default: the contract's; 0 = as fast as possible)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--episodes", type=positive_int, help="stop after N episodes (default 1)")
    g.add_argument("--steps", type=positive_int, help="stop after N control steps")
    r.add_argument("--seed", type=int, default=0, help="seed of the simulated robot (default 0)")
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
    emit(report.to_json(), as_json=a.json, title="real-time run")

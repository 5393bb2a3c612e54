"""`kinema collect`: record expert demonstrations into a verified dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kinema.args import positive_int
from kinema.output import emit, err_console


def add_parser(sub: Any) -> argparse.ArgumentParser:
    c = sub.add_parser("collect", help="record expert demonstrations into a verified dataset",
                       description="Record episodes into DIR/data (Minari's HDF5 layout) with a "
                       "SHA-256 manifest. Teleop keys: Enter start, S stop and keep, Backspace "
                       "discard, Esc quit; action dims on Left/Right, Down/Up, J/L, K/I, F/H, G/T, "
                       "Z/X, C/V; digits pick discrete actions (see agents/teleop.py).")
    c.add_argument("--env", required=True, help="environment name (see kinema envs)")
    c.add_argument("--expert", required=True, metavar="EXPERT",
                   help="scripted, mpc (or mpc:horizon=H,samples=K,iterations=I), teleop, or a "
                   "trained run folder")
    c.add_argument("--episodes", type=positive_int, required=True, help="episodes to keep")
    c.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="dataset folder: new or empty (with --append, an existing dataset)")
    c.add_argument("--seed", type=int, default=0,
                   help="episode i is reset with seed + i (default 0)")
    c.add_argument("--append", action="store_true", help="add episodes to an existing dataset")
    c.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="record with N Ray workers (a local Ray instance); episodes are still "
                   "committed one at a time, in the order of their seeds (default 1: this "
                   "process)")
    c.add_argument("--json", action="store_true", help="print the result as one JSON object")
    c.set_defaults(handler=main)
    return c


def main(a: argparse.Namespace) -> None:
    import sim
    from agents.experts import teleop
    from agents.experts.base import make_expert
    from data.dataset import check_new_folder, is_dataset
    from data.record import record
    from kinema.output import console

    sim.spec(a.env)
    if not (a.append and is_dataset(a.out)):  # refused before an expert or an env is made
        check_new_folder(a.out)
    if a.workers > 1 and a.expert == "teleop":
        raise ValueError("--workers needs an expert that runs without a person; teleop records "
                         "in one process (leave --workers out)")
    expert = make_expert(a.expert, a.env)
    if expert.name == "teleop":
        console.print(teleop.__doc__, markup=False)

    def shown(i: int, ret: float) -> None:
        if not a.json:
            err_console.print(f"episode {i}/{a.episodes}: return {ret:.2f}", markup=False)

    if a.workers > 1:
        from agents.experts.parallel import record_parallel

        result = record_parallel(a.env, a.expert, expert.spec, a.episodes, a.out,
                                 workers=a.workers, seed=a.seed, append=a.append,
                                 on_episode=shown)
    else:
        result = record(a.env, expert, a.episodes, a.out, seed=a.seed, append=a.append,
                        on_episode=shown)
    emit({"env": a.env, "expert": expert.name, **result.summary()}, as_json=a.json,
         title="collect")

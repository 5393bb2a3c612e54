"""`kinema envs`: the registered environments, as a table or a JSON list."""

from __future__ import annotations

import argparse
from typing import Any

from kinema.output import emit_json


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("envs", help="list registered environments")
    e.add_argument("--tag", help="only envs with this tag (e.g. continuous, cart-pole)")
    e.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    e.set_defaults(handler=main)
    return e


def main(a: argparse.Namespace) -> None:
    import sim
    from agents.registry import algorithms

    algos = algorithms()
    rows: list[dict[str, Any]] = []
    for name in sim.names(a.tag):
        s = sim.spec(name)
        info = s.info
        # the algorithms whose preset for this env is tuned (a source, not the fallback)
        presets = {algo.name: source for algo in algos
                   if (source := algo.preset_source(name)) is not None}
        rows.append({"name": name, "backend": s.backend, "tags": list(s.tags),
                     "obs_shape": list(info.obs_shape),
                     "action_shape": list(info.action_shape) if not info.discrete else [],
                     "n_actions": info.n_actions, "dt": info.dt, "presets": presets})
    if a.json:
        emit_json(rows)
        return
    from rich.table import Column, Table

    from kinema.output import console

    # A name never wraps or gets cut (it is typed back); narrow terminals fold the rest.
    table = Table(Column("name", no_wrap=True), *(Column(h, overflow="fold") for h in (
        "backend", "tags", "obs", "action", "rate Hz", "tuned presets")))
    for r in rows:
        act = f"discrete({r['n_actions']})" if r["n_actions"] else str(tuple(r["action_shape"]))
        table.add_row(r["name"], r["backend"], ", ".join(r["tags"]), str(tuple(r["obs_shape"])),
                      act, f"{1 / r['dt']:g}", ", ".join(r["presets"]) or "-")
    console.print(table)

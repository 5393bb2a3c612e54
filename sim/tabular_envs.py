"""Entries for the tabular MDPs of sim/tabular.py: our grid worlds and Gymnasium's toy-text
envs, each a `TabularEnv` over its model (tags tabular, state, discrete)."""

from __future__ import annotations

import functools

from sim.registry import EnvSpec, register
from sim.tabular import GRIDS, GYMNASIUM, TabularEnv, mdp

_TAGS = ("tabular", "state", "discrete")


def _build(name: str, *, render_mode: str | None = None) -> TabularEnv:
    return TabularEnv(mdp(name), render_mode=render_mode)


_ENTRIES = {**{n: (steps, text) for n, (_, _, steps, text) in GRIDS.items()},
            **{n: (steps, text) for n, (_, _, steps, text) in GYMNASIUM.items()}}
for _name, (_steps, _text) in _ENTRIES.items():
    register(EnvSpec(name=_name, backend="gymnasium", tags=_TAGS,
                     build=functools.partial(_build, _name), max_episode_steps=_steps,
                     description=_text))

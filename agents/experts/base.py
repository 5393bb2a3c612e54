"""Experts that demonstrate and label: scripted controllers, trained runs, MPC, people.

An expert offers, structurally:

    name: str; spec: dict              recorded in the dataset's metadata
    render_mode: str | None            "rgb_array" when it must see the env (teleop)
    begin(env, obs) -> bool            an episode starts; False ends the collection (teleop quit)
    act(obs, env) -> action            one observation -> one action in the env's units
    signal() -> None | "stop" | "discard" | "quit"   asked before each step (teleop)

`act` gets the env too: MPC plans on the true simulator state and MuJoCo controllers read the
model, so the env passed must be the one the observation came from, in that state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from agents.experts import scripted

KINDS = ("scripted", "mpc", "teleop")


class Expert(Protocol):
    name: str
    spec: dict[str, Any]
    render_mode: str | None

    def begin(self, env: gym.Env, obs: np.ndarray) -> bool: ...

    def act(self, obs: np.ndarray, env: gym.Env) -> np.ndarray: ...

    def signal(self) -> str | None: ...


class RunExpert:
    """The deterministic policy of a trained run directory (its LATEST checkpoint)."""

    render_mode: str | None = None

    def __init__(self, run_path: Path, env: str) -> None:
        from agents.runs.train import load_agent

        self.agent, run = load_agent(Path(run_path))
        if run.env != env:
            raise ValueError(f"run {run.path} was trained on {run.env!r}, not on {env!r}; "
                             f"use a run of {env!r} as the expert")
        self.name = f"run:{run.path.name}"
        # the folder as given, so a reference score can replay this expert later
        self.spec = {"kind": "run", "run": str(run_path), "algo": run.algo, "env": env}

    def begin(self, env: gym.Env, obs: np.ndarray) -> bool:
        return True

    def signal(self) -> str | None:
        return None

    @torch.no_grad()
    def act(self, obs: np.ndarray, env: gym.Env) -> np.ndarray:
        return np.asarray(self.agent.act(np.asarray(obs)[None], deterministic=True).cpu())[0]


def make_expert(spec: str, env: str, **options: Any) -> Expert:
    """`scripted`, `mpc`, `teleop`, or the path of a trained run directory.

    options: for mpc, fields of agents.experts.sim_mpc.MPCConfig; for teleop, `source` (an
    input source, default the keyboard in a window).
    """
    if spec == "scripted":
        if env not in scripted.SCRIPTED:
            raise ValueError(f"no scripted expert for {env!r}; scripted experts exist for "
                             f"{', '.join(sorted(scripted.SCRIPTED))} (or use mpc, teleop or a "
                             "trained run)")
        return scripted.ScriptedExpert(env, scripted.SCRIPTED[env])
    if spec == "mpc" or spec.startswith("mpc:"):
        from agents.experts.sim_mpc import SimulatorMPC, mpc_config

        return SimulatorMPC(env, mpc_config(env, spec.partition(":")[2], **options))
    if spec == "teleop":
        from agents.experts.teleop import Teleop

        return Teleop(env, options.get("source"))
    path = Path(spec)
    if not path.is_dir():
        raise ValueError(f"expert {spec!r} is neither one of {', '.join(KINDS)} nor a run folder")
    return RunExpert(path, env)

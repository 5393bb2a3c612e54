"""The tabular loop: sweeps of a known model (dynamic programming) or TD control from env steps.

Dynamic programming (value and policy iteration; the algorithm steps no training env, so
`envs` is None): an iteration is `agent.update({})`, one sweep or one improvement step, counted
as one step of the budget, until the agent's stopping rule says `converged`; that iteration is
evaluated and checkpointed whatever the schedule says.

TD control (Q-learning, SARSA): an iteration is one vector-env step. The next action a' is drawn
from the behaviour policy at s' before the update, and taken at the next iteration, so SARSA's
target uses the action actually taken (Sutton & Barto 2018, section 6.4); it is training state,
checkpointed with the agent. An episode that ended bootstraps from its real final observation
(info["final_obs"]) with an action drawn there; termination does not bootstrap.

Inverse RL (tabular MaxEnt IRL) runs as dynamic programming does, each update a gradient step
from the demonstrations of the agent's cfg.dataset, read once as state-visit counts.

Every run ends by writing the agent's value table to RUN/values.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from agents.loops.core import Core, LoopState, Progress, Schedule
from agents.protocol import TabularAgent
from data.files import write_atomic

if TYPE_CHECKING:
    from agents.runs.run import Run

VALUES_FILE = "values.json"
"""The run's value table: V, Q, the greedy policy, gamma and how they were reached."""


def train_tabular(agent: TabularAgent, envs: gym.vector.VectorEnv | None, run: Run,
                  schedule: Schedule, *, resume: dict[str, Any] | None = None,
                  on_progress: Callable[[Progress], None] | None = None) -> LoopState:
    """Dynamic-programming sweeps (envs None) or TD steps, until the budget, the target return
    or convergence; then RUN/values.json."""
    if envs is None:
        loop = _sweep(agent, run, schedule, resume, on_progress)
    else:
        loop = _td(agent, envs, run, schedule, resume, on_progress)
    write_values(run, agent.values())
    return loop


def _sweep(agent: TabularAgent, run: Run, schedule: Schedule, resume: dict[str, Any] | None,
           on_progress: Callable[[Progress], None] | None) -> LoopState:
    dataset = getattr(agent.cfg, "dataset", "")  # inverse RL learns from demonstrations
    batch = demonstrations(dataset, agent.info.name, agent.device) if dataset else {}
    core = Core(agent, None, run, schedule, on_progress=on_progress)
    core.start(resume)
    loop = core.loop
    while loop.step < schedule.steps and loop.solved_at is None and not agent.converged:
        core.terms.add(agent.update(batch))
        loop.step += 1
        loop.iteration += 1
        core.after_iteration(None, force_eval=agent.converged)
    return loop


def _td(agent: TabularAgent, envs: gym.vector.VectorEnv, run: Run, schedule: Schedule,
        resume: dict[str, Any] | None, on_progress: Callable[[Progress], None] | None
        ) -> LoopState:
    dev, N = agent.device, envs.num_envs
    pending: dict[str, Tensor] = {}  # the action a' to take at the next observation

    def as_tensor(x: np.ndarray) -> Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=dev)

    core = Core(agent, envs, run, schedule, on_progress=on_progress,
                extra_state=lambda: {"next_action": pending["action"]})
    obs = core.start(resume)
    assert obs is not None
    loop = core.loop
    obs_t = as_tensor(obs)
    pending["action"] = (agent.explore(obs_t, loop.step) if resume is None
                         else resume["next_action"].to(dev))
    while loop.step < schedule.steps and loop.solved_at is None:
        action = pending["action"]
        next_obs, reward, terminated, truncated, info = envs.step(action.cpu().numpy())
        loop.step += N
        ended = terminated | truncated
        next_t = as_tensor(next_obs)
        next_action = agent.explore(next_t, loop.step)
        final_t, final_action = next_t, next_action
        if ended.any():  # s' of an ended episode is its final observation, not the reset one
            final = next_obs.copy()
            for i in np.flatnonzero(ended):
                final[i] = info["final_obs"][i]
            final_t = as_tensor(final)
            final_action = torch.where(torch.as_tensor(ended, device=dev),
                                       agent.explore(final_t, loop.step), next_action)
        core.terms.add(agent.update({
            "obs": obs_t, "actions": action, "rewards": torch.as_tensor(reward, device=dev),
            "next_obs": final_t, "terminated": torch.as_tensor(terminated, device=dev),
            "next_actions": final_action}))
        core.count_episodes(reward, ended)
        obs_t, pending["action"] = next_t, next_action
        loop.iteration += 1
        core.after_iteration(next_obs)
    return loop


def demonstrations(path: str, env: str, device: torch.device) -> dict[str, Tensor]:
    """{"visits": [S]}: how often the demonstrations visit each state, per episode (every
    observation counts, the final one included), from the dataset at `path` recorded on `env`."""
    from data.dataset import Dataset

    data = Dataset.open(path)
    if data.env != env:
        raise ValueError(f"the dataset {path} was recorded on {data.env!r}, not on {env!r}; "
                         f"record one with kinema collect --env {env}")
    data.check()
    visits: np.ndarray | None = None
    for ep in data.episodes():
        counts = np.bincount(ep.observations.reshape(len(ep.observations), -1).argmax(-1),
                             minlength=ep.observations.shape[-1])
        visits = counts if visits is None else visits + counts
    assert visits is not None  # check() refuses an empty dataset
    return {"visits": torch.as_tensor(visits / len(data), dtype=torch.float64, device=device)}


def write_values(run: Run, values: dict[str, Any]) -> None:
    """RUN/values.json, written atomically (a non-finite number is written as null)."""
    def finite(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, list):
            return [finite(x) for x in v]
        return {k: finite(x) for k, x in v.items()} if isinstance(v, dict) else v

    text = json.dumps(finite(values), allow_nan=False)
    write_atomic(run.path / VALUES_FILE, (text + "\n").encode())

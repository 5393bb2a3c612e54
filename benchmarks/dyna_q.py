"""`kinema bench dyna-q`: real env steps until the greedy policy is optimal, Dyna-Q (n planning
steps) beside Q-learning (n = 0), on the tabular grid worlds.

    kinema bench dyna-q [--seeds 0,1,2,3,4]

Each run steps one env with the agent's epsilon-greedy exploration and its update (the TD
loop's order, agents/loops/tabular.py), and every `check_every` real steps evaluates the greedy
policy exactly on the env's known model: the run counts as solved at the first check where
V^pi(p0) >= (1 - tol) V*(p0), V* from policy iteration. Medians over seeds.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

import sim
from agents.classic.dyna_q import DynaQ
from agents.classic.dyna_q import preset as dyna_preset
from agents.classic.dynamic_programming import (
    PolicyIteration,
    PolicyIterationConfig,
    one_hot_policy,
    policy_evaluation_exact,
)
from agents.classic.tabular import Model
from benchmarks.markdown import machine
from benchmarks.markdown import write_section as write_markdown_section
from sim import tabular

RESULTS = Path("benchmarks/results/dyna_q.json")
BEGIN, END = "<!-- kinema bench dyna-q: begin -->", "<!-- kinema bench dyna-q: end -->"
TITLE = "Dyna-Q beside Q-learning: real steps to the optimal policy (issue 11)"


@dataclass(frozen=True)
class Task:
    env: str
    budget: int
    """Most real env steps of a run."""
    check_every: int
    tol: float
    """Solved at V^pi(p0) >= (1 - tol) V*(p0) (0: exactly optimal, up to float rounding)."""


TASKS = {
    "gridworld-4x4": Task("gridworld-4x4", 3_000, 25, 0.0),
    "gridworld-slippery": Task("gridworld-slippery", 150_000, 500, 0.05),
}
PLANNING = (0, 10)
"""n of the compared runs: Q-learning (0) and Dyna-Q with 10 planning steps per real step."""


def optimum(env: str, gamma: float) -> float:
    """V*(p0) of the env's model at `gamma` (policy iteration, exact evaluation)."""
    pi = PolicyIteration(PolicyIterationConfig(gamma=gamma), sim.spec(env).info,
                         torch.device("cpu"))
    while not pi.converged:
        pi.update({})
    return float(Model.of(tabular.mdp(env), torch.device("cpu")).p0 @ pi.V)


def greedy_value(agent: DynaQ, env: str) -> float:
    """V^pi(p0) of the agent's greedy policy, exactly, on the env's model."""
    m = tabular.mdp(env)
    model = Model.of(m, agent.device)
    V = policy_evaluation_exact(one_hot_policy(agent.Q.argmax(-1), m.n_actions), model,
                                agent.cfg.gamma)
    return float(model.p0 @ V)


def steps_to_optimal(task: Task, planning_steps: int, seed: int) -> dict[str, Any]:
    """Real env steps until the greedy policy is optimal (None: not within the budget)."""
    torch.manual_seed(seed)
    cfg = replace(dyna_preset(task.env), planning_steps=planning_steps)
    env = sim.make(task.env, seed=seed)
    agent = DynaQ(cfg, sim.spec(task.env).info, torch.device("cpu"))
    target = (1 - task.tol) * optimum(task.env, cfg.gamma) - 1e-9
    obs, _ = env.reset(seed=seed)
    solved = None
    for step in range(1, task.budget + 1):
        obs_t = torch.as_tensor(obs[None], dtype=torch.float32)
        action = agent.explore(obs_t, step - 1)
        next_obs, reward, terminated, truncated, _ = env.step(int(action[0]))
        agent.update({"obs": obs_t, "actions": action,
                      "rewards": torch.tensor([reward], dtype=torch.float64),
                      "next_obs": torch.as_tensor(next_obs[None], dtype=torch.float32),
                      "terminated": torch.tensor([terminated])})
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step % task.check_every == 0 and greedy_value(agent, task.env) >= target:
            solved = step
            break
    env.close()
    return {"steps": solved, "planning_updates": agent.planning_updates}


def run(seeds: list[int], results: Path = RESULTS, markdown: Path | None = None,
        log: Any = print) -> dict[str, Any]:
    torch.set_num_threads(1)
    store: dict[str, Any] = {"machine": machine(f"torch {torch.__version__}", "1 thread"),
                             "date": datetime.now().isoformat(timespec="seconds"), "tasks": {}}
    for name, task in TASKS.items():
        for n in PLANNING:
            for seed in seeds:
                out = steps_to_optimal(task, n, seed)
                store["tasks"].setdefault(name, {}).setdefault(str(n), {})[str(seed)] = out
                log(json.dumps({"env": name, "planning_steps": n, "seed": seed, **out}))
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(store, indent=1) + "\n")
    if markdown is not None:
        write_markdown_section(markdown, BEGIN, END, TITLE, report(store))
    return store


def _median(runs: dict[str, Any], budget: int) -> str:
    steps = [r["steps"] for r in runs.values()]
    solved = [s for s in steps if s is not None]
    # an unsolved run counts as the budget, so the median is then a lower bound
    med = statistics.median(s if s is not None else budget for s in steps)
    mark = "" if len(solved) == len(steps) else f", {len(steps) - len(solved)} unsolved"
    return f"{med:,.0f} ({len(steps)} seeds{mark})"


def report(store: dict[str, Any]) -> str:
    lines = ["| env | solved at | Q-learning real steps | Dyna-Q (n = 10) real steps | "
             "Dyna-Q / Q-learning | per-seed Q-learning; Dyna-Q |",
             "|---|---|---:|---:|---:|---|"]
    for name, runs in store.get("tasks", {}).items():
        task = TASKS[name]
        q, d = runs["0"], runs["10"]
        med = [statistics.median(r["steps"] or task.budget for r in x.values()) for x in (q, d)]
        seeds = "; ".join(", ".join(str(r["steps"] or "unsolved") for r in x.values())
                          for x in (q, d))
        solved = "V* exactly" if task.tol == 0 else f"within {task.tol:.0%} of V*(p0)"
        # an unsolved run counts as the budget: a median it moves is a lower bound, a ratio a bound
        inf = [statistics.median(r["steps"] or math.inf for r in x.values()) for x in (q, d)]
        exact = [m == i for m, i in zip(med, inf, strict=True)]
        bound = {(False, True): "<= ", (True, False): ">= "}.get((exact[0], exact[1]), "")
        ratio = "—" if not any(exact) else f"**{bound}{med[1] / med[0]:.2f}x**"
        lines.append(f"| {name} | {solved} | {_median(q, task.budget)} | "
                     f"{_median(d, task.budget)} | {ratio} | {seeds} |")
    return "\n".join(lines) + (
        f"\n\nMedians over seeds of the real env steps until the greedy policy's exact value "
        f"V^pi(p0) reaches the criterion, checked every "
        f"{', '.join(f'{t.check_every} ({n})' for n, t in TASKS.items())} steps; both use "
        f"Q-learning's preset (alpha, epsilon schedule, gamma). Machine: {store['machine']}.")


"""`kinema bench irl --tasks maxent-...`: Kinema's tabular maxent-irl beside imitation's MCE-IRL.

Per task and seed: a value-iteration expert (Kinema's preset for the env) records DEMOS
episodes (`kinema collect --expert RUN`, collection seeded by the seed); both libraries fit a
linear state reward over the env's features (sim.tabular: the grid worlds' goal, hazard, wall,
distance and per-step features; one-hot states elsewhere) to those demonstrations' state visits,
with Adam at the same step size for the same number of updates at most (each stops earlier on
its own tolerance), and each gives the policy argmax_a pi_0(a|s) of its fitted soft model.

imitation's MCEIRL (1.0.1) takes a fixed-horizon TabularModelPOMDP, where Kinema's MDPs end at
terminal states. `fixed_horizon` maps one onto the other: every terminal state leads to one
added absorbing "done" state whose features are zero, so a terminal state is visited once, as
in Kinema's forward pass, and the "done" state holds the rest of the horizon (its reward, the
linear layer's bias, is the same for every policy and moves nothing).

Judged the same way for both, on Kinema's model (the values are exact, no sampling):
- value: V^pi(p0) of the policy on the true reward at the expert's gamma, and its ratio to the
  expert's;
- reward correlation: Pearson's r between the learned r(s) and the true reward of entering s,
  over the states that can be entered.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.classic.dynamic_programming import one_hot_policy, policy_evaluation_exact
from agents.classic.tabular import Model
from agents.loops.tabular import demonstrations
from agents.registry import algorithm
from agents.runs.evaluation import evaluate
from agents.runs.train import TrainConfig, train
from benchmarks.markdown import machine
from benchmarks.rl import CpuClock
from sim import tabular

DEMOS = 50
"""Demonstrations per task and seed."""
CPU = torch.device("cpu")


@dataclass(frozen=True)
class TabularTask:
    env: str
    steps: int
    """Gradient steps at most, both libraries."""


TASKS = {
    "maxent-gridworld-4x4": TabularTask("gridworld-4x4", 100),
    "maxent-gridworld-slippery": TabularTask("gridworld-slippery", 200),
    "maxent-frozenlake": TabularTask("frozenlake", 200),
}


def fixed_horizon(env: str, visits: np.ndarray) -> dict[str, np.ndarray]:
    """The env's model as imitation's fixed-horizon arrays (module docstring): P [S+1, A, S+1],
    features [S+1, F], p0 [S+1], horizon T, and the demonstrations' visits [S] padded with the
    "done" state's T + 1 - sum."""
    m = tabular.mdp(env)
    S, A = m.n_states, m.n_actions
    P = np.zeros((S + 1, A, S + 1))
    P[:S, :, :S] = m.P
    ends = np.flatnonzero(m.terminal)
    P[ends] = 0.0
    P[ends, :, S] = 1.0
    P[S, :, S] = 1.0
    horizon = kinema_config(env, "").horizon
    return {"P": P, "features": np.vstack([m.features, np.zeros(m.features.shape[1])]),
            "p0": np.append(m.p0, 0.0), "horizon": np.array(horizon),
            "demo_om": np.append(visits, horizon + 1 - visits.sum())}


def kinema_config(env: str, dataset: Path | str) -> Any:
    return dataclasses.replace(algorithm("maxent-irl").preset(env), dataset=str(dataset))


def judge(env: str, reward: np.ndarray, policy: np.ndarray, gamma: float) -> dict[str, float]:
    """The policy's exact value at gamma, its ratio to the optimal (the expert's) value, and the
    reward's correlation with the true reward of entering each state."""
    from agents.classic.dynamic_programming import value_iteration

    m = tabular.mdp(env)
    model = Model.of(m, CPU)
    pi = one_hot_policy(torch.as_tensor(policy, device=CPU), m.n_actions)
    value = float(model.p0 @ policy_evaluation_exact(pi, model, gamma))
    V, _, _ = value_iteration(model, gamma, 1e-10)
    live = ~m.terminal
    inflow = m.P[live].sum((0, 1))  # [S']: how much can enter s' from a live state
    entered = inflow > 0
    true_in = (m.P[live] * m.R[live]).sum((0, 1))[entered] / inflow[entered]
    corr = float(np.corrcoef(np.asarray(reward)[: m.n_states][entered], true_in)[0, 1])
    expert = float(model.p0 @ V)
    return {"value": value, "expert_value": expert, "value_ratio": value / expert,
            "reward_corr": corr}


def expert_run(env: str, root: Path) -> tuple[Path, float]:
    """A value-iteration run on `env` (its preset), and its gamma."""
    result = train(TrainConfig(algo="value-iteration", env=env, eval_episodes=1,
                               runs_dir=str(root)))
    return result.run, algorithm("value-iteration").preset(env).gamma


def run_kinema(task: TabularTask, dataset: Path, seed: int, steps: int | None = None
               ) -> dict[str, Any]:
    """One maxent-irl run through `train` (run folder, dataset, checkpoint and all); its CPU
    seconds up to the last evaluation."""
    clock = CpuClock()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(TrainConfig(algo="maxent-irl", env=task.env, steps=steps or task.steps,
                                   eval_every=task.steps, eval_episodes=1, seed=seed,
                                   runs_dir=tmp),
                       kinema_config(task.env, dataset), evaluator=clock.wrap(evaluate))
        values = json.loads((result.run / "values.json").read_text())
        rows = [json.loads(line) for line in
                (result.run / "metrics.jsonl").read_text().splitlines()]
    (last,) = [r for r in rows if r["kind"] == "eval"][-1:]
    return {"reward": values["reward"], "policy": values["policy"],
            "iterations": int(values["updates"]), "train_s": float(last["train_s"]),
            "train_cpu_s": clock.marks[-1]}


def run_task(name: str, seeds: list[int], libs: list[str], store: dict[str, Any],
             log: Any) -> None:
    """Each seed's demonstrations, then each library on them; results into store[name]."""
    from agents.experts.base import make_expert
    from benchmarks.irl_peer import run_mce
    from data.record import record

    task = TASKS[name]
    entry = store.setdefault(name, {})
    with tempfile.TemporaryDirectory(prefix="irl-tabular-") as tmp:
        run, gamma = expert_run(task.env, Path(tmp) / "expert")
        for seed in seeds:
            data = Path(tmp) / f"demos-{seed}"
            record(task.env, make_expert(str(run), task.env), DEMOS, data, seed=seed)
            visits = demonstrations(str(data), task.env, CPU)["visits"].numpy()
            model = Path(tmp) / f"model-{seed}.npz"
            np.savez(model, **fixed_horizon(task.env, visits))  # type: ignore[arg-type]
            lr = kinema_config(task.env, data).lr
            if seed == seeds[0] and "kinema" in libs:  # imports and first calls, left out as
                run_kinema(task, data, seed, steps=2)  # imitation's are (it times train())
            for lib in libs:
                try:
                    out = (run_kinema(task, data, seed) if lib == "kinema" else
                           run_mce(model, task.steps, lr, seed))
                    out = out | judge(task.env, np.array(out["reward"]),
                                      np.array(out["policy"][: tabular.mdp(task.env).n_states]),
                                      gamma)
                except RuntimeError as e:
                    out = {"error": str(e)}
                out |= {"machine": machine(f"torch {torch.__version__}", "1 thread"),
                        "date": datetime.now().isoformat(timespec="seconds")}
                entry.setdefault(f"{lib}-maxent", {})[str(seed)] = out
                log(json.dumps({"task": name, "lib": lib, "seed": seed, **{
                    k: v for k, v in out.items() if k not in ("reward", "policy")}}))


# -- report ---------------------------------------------------------------------------------------
def report(store: dict[str, Any]) -> str:
    """The tabular table: per task and library, medians (and ranges) over the seeds that ran."""
    import statistics

    lines = ["| task | library | value / expert's (median, min–max) | reward correlation "
             "(median) | updates (median) | train CPU s (median) |",
             "|---|---|---:|---:|---:|---:|"]
    ratios: list[str] = []
    for name in TASKS:
        cpu: dict[str, float] = {}
        for lib in ("kinema", "imitation"):
            runs = [r for r in store.get(name, {}).get(f"{lib}-maxent", {}).values()
                    if "error" not in r]
            if not runs:
                continue
            v = [r["value_ratio"] for r in runs]
            cpu[lib] = statistics.median(r["train_cpu_s"] for r in runs)
            lines.append(
                f"| {name} | {lib} | {statistics.median(v):.3f} ({min(v):.3f}–{max(v):.3f}) | "
                f"{statistics.median(r['reward_corr'] for r in runs):.2f} | "
                f"{statistics.median(r['iterations'] for r in runs):.0f} | {cpu[lib]:.2f} |")
        if len(cpu) == 2:
            ratios.append(f"{name}: train CPU s Kinema / imitation "
                          f"{cpu['kinema'] / cpu['imitation']:.2f}x")
    if len(lines) == 2:
        return ""
    text = "\n".join(lines) + (
        f"\n\nTabular MaxEnt IRL (Kinema's maxent-irl) against imitation's MCE-IRL: {DEMOS} "
        "demonstrations of a value-iteration expert per seed, a linear state reward over the "
        "env's features, Adam at the same step size, at most the same updates (each stops "
        "earlier on its own tolerance); the policy is argmax pi_0 of each fitted model. Value: "
        "the policy's exact V(p0) on the true reward at the expert's gamma over the expert's; "
        "correlation: Pearson's r of the learned and the true reward of entering each state. "
        "imitation runs on the same model made fixed-horizon (terminal states lead to an "
        "absorbing state with zero features).")
    return text + ("\n\n" + "\n".join(f"- {r}" for r in ratios) if ratios else "")

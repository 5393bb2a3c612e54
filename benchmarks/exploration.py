"""`kinema bench exploration`: PPO with random network distillation vs PPO without, on mountain
car (the sparse-reward task), the same seeds in the same run.

    kinema bench exploration [--seeds 0,1,2] [--steps 100000] [--markdown BENCHMARKS.md]

Each seed trains PPO with the `mountaincar` preset twice, `--rnd 0` and `--rnd 1` (the paper's
2 : 1 advantage weights, Burda et al. 2019), for the same env-step budget, one torch thread, on
the CPU. Mountain car pays -1 per step and ends an episode only at the goal (else after 200
steps, return -200), so a training episode with a return above -200 reached the goal. Reported
per side: the runs whose training reached the goal at all, the median env steps to the first
goal (at rollout resolution: the first rollout after which an episode of return > -200 is among
the run's recent training returns), the final evaluation return (`episodes` deterministic
episodes, 10 by default) and the fraction of those episodes that reach the goal.
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.model_free.ppo import preset
from agents.runs.evaluation import evaluate
from agents.runs.train import TrainConfig, train
from benchmarks.markdown import machine, publish
from benchmarks.markdown import write_section as write_markdown_section

RESULTS = Path("benchmarks/results/exploration.json")
BEGIN, END = "<!-- bench:exploration begin -->", "<!-- bench:exploration end -->"
TITLE = "Exploration: PPO with and without random network distillation (mountain car)"
TASK, STEPS, SEEDS = "mountaincar", 100_000, (0, 1, 2)
FAIL = -200.0
"""The return of a mountain-car episode that never reaches the goal (200 steps of -1)."""


def one(seed: int, rnd: float, steps: int, root: Path, episodes: int = 10) -> dict[str, Any]:
    """One training run: when its training first reached the goal, and its final evaluation."""
    first: list[int] = []
    evals: list[np.ndarray] = []

    def progress(p: Any) -> None:
        if not first and p.recent_return is not None and p.recent_return > FAIL:
            first.append(p.step)

    def kept_eval(act: Any, env: str, n: int) -> np.ndarray:
        evals.append(evaluate(act, env, n))
        return evals[-1]

    algo = dataclasses.replace(preset(TASK), rnd=rnd)
    t0 = time.perf_counter()
    train(TrainConfig(algo="ppo", env=TASK, steps=steps, seed=seed, eval_every=steps,
                      eval_episodes=episodes, device="cpu", runs_dir=str(root)), algo,
          on_progress=progress,
          evaluator=kept_eval)
    final = evals[-1]
    return {"seed": seed, "rnd": rnd, "goal_at": first[0] if first else None,
            "return": float(final.mean()), "eval_success": float((final > FAIL).mean()),
            "wall_s": time.perf_counter() - t0}


def run(seeds: list[int] | None = None, *, steps: int = STEPS, episodes: int = 10,
        results: Path | None = RESULTS, markdown: Path | None = None,
        log: Any = print) -> dict[str, Any]:
    torch.set_num_threads(1)
    seeds = list(SEEDS) if seeds is None else seeds
    out: dict[str, Any] = {"machine": machine(f"Python {platform.python_version()}",
                                              f"torch {torch.__version__}, 1 thread"),
                           "task": TASK, "steps": steps, "episodes": episodes, "runs": []}
    with tempfile.TemporaryDirectory(prefix="kinema-bench-exploration-") as tmp:
        for seed in seeds:
            for rnd in (0.0, 1.0):
                log(f"ppo --env {TASK} --rnd {rnd:g} --seed {seed} --steps {steps}")
                out["runs"].append(one(seed, rnd, steps, Path(tmp), episodes))
    publish(out, results, markdown, write_section, report)
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: runs that reached the goal, median steps to it, mean final return/success."""
    reached = [r["goal_at"] for r in runs if r["goal_at"] is not None]
    return {"reached": len(reached), "runs": len(runs),
            "median_goal_at": statistics.median(reached) if reached else None,
            "return": statistics.mean(r["return"] for r in runs),
            "eval_success": statistics.mean(r["eval_success"] for r in runs)}


def report(r: dict[str, Any]) -> str:
    """The markdown of one `run`."""
    rows = [f"Command: `kinema bench exploration --steps {r['steps']}` (benchmarks/"
            f"exploration.py): PPO on `{r['task']}` with its preset, `--rnd 0` vs `--rnd 1`, "
            f"{r['steps']:,} env steps per run, seeds "
            f"{', '.join(str(x['seed']) for x in r['runs'] if x['rnd'] == 0)}; final return "
            f"over {r.get('episodes', 10)} deterministic evaluation episodes.", "",
            "| | runs reaching the goal | median env steps to the first goal | final return "
            "(mean) | final episodes at the goal |", "|---|---:|---:|---:|---:|"]
    for rnd, name in ((0.0, "PPO"), (1.0, "PPO + RND")):
        s = summary([x for x in r["runs"] if x["rnd"] == rnd])
        at = "-" if s["median_goal_at"] is None else f"{s['median_goal_at']:,.0f}"
        rows.append(f"| {name} | {s['reached']}/{s['runs']} | {at} | {s['return']:.1f} | "
                    f"{s['eval_success']:.0%} |")
    rows += ["", "| seed | rnd | first goal at | final return | at the goal | wall s |",
             "|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {x['seed']} | {x['rnd']:g} | "
             f"{'-' if x['goal_at'] is None else format(x['goal_at'], ',')} | "
             f"{x['return']:.1f} | {x['eval_success']:.0%} | {x['wall_s']:.1f} |"
             for x in r["runs"]]
    rows += ["", f"Machine: {r['machine']}."]
    return "\n".join(rows)


def write_section(path: Path, body: str) -> None:
    """Replace this benchmark's section of `path` (and nothing else); add it if absent."""
    write_markdown_section(path, BEGIN, END, TITLE, body)


if __name__ == "__main__":
    print(report(run()))

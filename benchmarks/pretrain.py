"""`kinema bench pretrain`: pre-training on demonstrations then fine-tuning with RL, beside BC
alone and SAC from scratch, on the same demonstrations, seeds and env-step budgets, in one run.

    kinema bench pretrain [--seeds 0,1,2] [--steps 5000] [--markdown BENCHMARKS.md]

The demonstrations are `DEMO_EPISODES` episodes of the scripted pendulum expert (seed 0), few
enough that BC alone generalizes poorly from them. Per seed: `kinema train bc` on them
(`BC_UPDATES` updates, its preset, early stopping), SAC from scratch, SAC `--pretrain` and TD3
`--pretrain`, each with its pendulum preset, one torch thread, on the CPU. The RL runs evaluate
(`episodes` deterministic episodes) at every budget in `BUDGETS`; reported per side and budget:
the median evaluation return over seeds, its min and max, and the median train seconds to that
budget (evaluation excluded; a pre-trained run's seconds include its pre-training).
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

from agents.experts.base import make_expert
from agents.imitation.bc import BCConfig
from agents.model_free import sac, td3
from agents.runs.evaluation import evaluate
from agents.runs.train import TrainConfig, train
from benchmarks.markdown import machine, publish
from benchmarks.markdown import write_section as write_markdown_section
from data.record import record

RESULTS = Path("benchmarks/results/pretrain.json")
BEGIN, END = "<!-- bench:pretrain begin -->", "<!-- bench:pretrain end -->"
TITLE = "Pre-training on demonstrations + fine-tuning vs SAC from scratch vs BC (pendulum)"
TASK, SEEDS, BUDGETS, DEMO_EPISODES, BC_UPDATES = "pendulum", (0, 1, 2), (2_000, 5_000), 1, 3_000
SIDES = ("bc", "sac", "sac --pretrain", "td3 --pretrain")


def one(side: str, seed: int, budgets: tuple[int, ...], demos: Path, root: Path,
        episodes: int) -> dict[str, Any]:
    """One run: its evaluation return and train seconds at each budget (BC: at its end)."""
    evals: list[tuple[float, float]] = []  # (return, train seconds so far)
    spent = [0.0]  # seconds spent evaluating
    t0 = time.perf_counter()

    def timed_eval(act: Any, env: str, n: int) -> np.ndarray:
        t = time.perf_counter()
        returns = evaluate(act, env, n)
        evals.append((float(returns.mean()), t - t0 - spent[0]))
        spent[0] += time.perf_counter() - t
        return returns

    algo, _, flag = side.partition(" ")
    steps = BC_UPDATES if algo == "bc" else max(budgets)
    every = steps if algo == "bc" else min(budgets)
    cfg: Any
    if algo == "bc":
        cfg = BCConfig(dataset=str(demos))
    else:
        cfg = (sac if algo == "sac" else td3).preset(TASK)
        if flag:
            cfg = dataclasses.replace(cfg, pretrain=str(demos))
    train(TrainConfig(algo=algo, env=TASK, steps=steps, seed=seed, eval_every=every,
                      eval_episodes=episodes, device="cpu", runs_dir=str(root)), cfg,
          evaluator=timed_eval)
    if algo == "bc":
        return {"side": side, "seed": seed, "at": {str(b): evals[-1] for b in budgets}}
    # evaluations at every multiple of min(budgets) env steps: pick the budgets' ones
    return {"side": side, "seed": seed,
            "at": {str(b): evals[b // every - 1] for b in budgets}}


def run(seeds: list[int] | None = None, *, steps: int | None = None, episodes: int = 10,
        results: Path | None = RESULTS, markdown: Path | None = None,
        log: Any = print) -> dict[str, Any]:
    torch.set_num_threads(1)
    seeds = list(SEEDS) if seeds is None else seeds
    budgets = BUDGETS if steps is None else tuple(b for b in BUDGETS if b < steps) + (steps,)
    out: dict[str, Any] = {"machine": machine(f"Python {platform.python_version()}",
                                              f"torch {torch.__version__}, 1 thread"),
                           "task": TASK, "budgets": list(budgets), "episodes": episodes,
                           "demo_episodes": DEMO_EPISODES, "bc_updates": BC_UPDATES, "runs": []}
    with tempfile.TemporaryDirectory(prefix="kinema-bench-pretrain-") as tmp:
        demos = Path(tmp) / "demos"
        rec = record(TASK, make_expert("scripted", TASK), DEMO_EPISODES, demos)
        out["demo_return"] = rec.summary()["return_mean"]
        for seed in seeds:
            for side in SIDES:
                log(f"{side} --env {TASK} --seed {seed}")
                out["runs"].append(one(side, seed, budgets, demos, Path(tmp), episodes))
    publish(out, results, markdown, write_section, report)
    return out


def summary(runs: list[dict[str, Any]], budget: int) -> dict[str, float]:
    """Median, min and max return over seeds, and median train seconds, at `budget`."""
    ret = [r["at"][str(budget)][0] for r in runs]
    sec = [r["at"][str(budget)][1] for r in runs]
    return {"median": statistics.median(ret), "min": min(ret), "max": max(ret),
            "seconds": statistics.median(sec)}


def report(r: dict[str, Any]) -> str:
    """The markdown of one `run`."""
    seeds = sorted({x["seed"] for x in r["runs"]})
    rows = [f"Command: `kinema bench pretrain` (benchmarks/pretrain.py): `{r['task']}`, "
            f"{r['demo_episodes']} scripted-expert episode(s) as demonstrations (return "
            f"{r['demo_return']:.1f}), seeds {', '.join(map(str, seeds))}, each side with its "
            f"preset; return over {r['episodes']} deterministic evaluation episodes, median "
            f"[min, max] over seeds; BC trains {r['bc_updates']:,} updates at most (early "
            "stopping) and is the same at every budget.", "",
            "| side | env steps | return median [min, max] | train s (median) |",
            "|---|---:|---:|---:|"]
    for budget in r["budgets"]:
        for side in SIDES:
            runs = [x for x in r["runs"] if x["side"] == side]
            if not runs:
                continue
            s = summary(runs, budget)
            steps = "-" if side == "bc" else f"{budget:,}"
            rows.append(f"| {side} | {steps} | {s['median']:.1f} [{s['min']:.1f}, "
                        f"{s['max']:.1f}] | {s['seconds']:.1f} |")
    rows += ["", f"Machine: {r['machine']}."]
    return "\n".join(rows)


def write_section(path: Path, body: str) -> None:
    """Replace this benchmark's section of `path` (and nothing else); add it if absent."""
    write_markdown_section(path, BEGIN, END, TITLE, body)


if __name__ == "__main__":
    print(report(run()))

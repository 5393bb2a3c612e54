"""BC and DAgger per task: expert-normalized score against the number of expert labels.

    python -m benchmarks.imitation [--tasks pendulum,inverted-pendulum,...] [--seeds 0,1]

For each task: record the scripted expert's episodes (seeds 0..), train BC on the first N of
them, and run DAgger with its defaults (1 initial expert episode, then rounds of 1 learner
episode relabelled by the expert, beta_i = I(i = 0)) up to a label budget. Scores are
(R - R_random) / (R_expert - R_random) over 10 evaluation episodes (seeds 10000..10009), as
agents/imitation/scores.py computes them. Prints a markdown table (BENCHMARKS.md, imitation
section) and one JSON line per result.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from agents.experts.base import make_expert
from agents.imitation.bc import BCConfig
from agents.imitation.dagger import DAggerConfig
from agents.runs.train import TrainConfig, train
from data.record import record

TASKS = {
    # task: (BC episode counts, DAgger label budget, updates per fit, hidden)
    "pendulum": ((2, 10), 1200, 1500, (256, 256)),
    "cartpole": ((1, 4), 2000, 1000, (64, 64)),
    "inverted-pendulum": ((1, 4), 4000, 1000, (64, 64)),
    "reacher": ((10, 40), 2000, 1500, (256, 256)),
    "cartpole-swingup": ((2, 8), 4000, 1500, (256, 256)),
}


def _evals(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "eval"]


def bench(task: str, seed: int, root: Path) -> list[dict]:
    counts, budget, updates, hidden = TASKS[task]
    ds = root / f"{task}-demos"
    if not ds.exists():
        record(task, make_expert("scripted", task), max(counts), ds)
    out = []
    for n in counts:
        t0 = time.perf_counter()
        cfg = TrainConfig(algo="bc", env=task, seed=seed, steps=updates, eval_every=updates,
                          runs_dir=str(root / "runs"))
        last = _evals(train(cfg, BCConfig(dataset=str(ds), max_episodes=n, hidden=hidden)).run)[-1]
        out.append({"task": task, "algo": "bc", "seed": seed, "labels": last["labels"],
                    "score": last["normalized_score"], "return": last["return_mean"],
                    "expert": last["expert_return"], "s": time.perf_counter() - t0})
    t0 = time.perf_counter()
    cfg = TrainConfig(algo="dagger", env=task, seed=seed, steps=budget,
                      runs_dir=str(root / "runs"))
    evals = _evals(train(cfg, DAggerConfig(initial_episodes=1, episodes_per_round=1,
                                           updates_per_round=updates, hidden=hidden)).run)
    best = max(evals, key=lambda e: e["normalized_score"])
    out.append({"task": task, "algo": "dagger", "seed": seed, "labels": evals[-1]["labels"],
                "score": evals[-1]["normalized_score"], "best_score": best["normalized_score"],
                "best_at_labels": best["labels"], "return": evals[-1]["return_mean"],
                "expert": evals[-1]["expert_return"], "s": time.perf_counter() - t0})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seeds", default="0")
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in a.tasks.split(","):
            for seed in (int(s) for s in a.seeds.split(",")):
                for r in bench(task, seed, Path(tmp)):
                    print(json.dumps(r), flush=True)
                    rows.append(r)
    print("\n| task | algo | seed | expert labels | normalized score | return | expert return |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['task']} | {r['algo']} | {r['seed']} | {r['labels']:,} | {r['score']:.3f} | "
              f"{r['return']:.1f} | {r['expert']:.1f} |")


if __name__ == "__main__":
    main()

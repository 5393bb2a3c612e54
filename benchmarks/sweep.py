"""`kinema bench sweep`: N trials of PPO on cart-pole through `kinema sweep` (Ray Tune, a local
Ray instance on this machine) beside the same N runs one after another with `kinema train`.

    kinema bench sweep [--trials 8] [--steps 100000] [--markdown BENCHMARKS.md]

Both sides run as a person runs them: separate `python -m kinema` processes, the same options
(seed i for run i, --device cpu, one torch thread), timed on the wall clock from launch to exit.
The sweep reserves one CPU per trial (its default), so on 2 cores two trials run at a time.
Start-up cost is read from the runs themselves: a run's loop starts at its first record's
wall_time - wall_s, so for `kinema train` start-up is launch -> loop start (interpreter,
imports, envs and networks), and for a sweep the first trials' start-up is launch -> loop start
(that and Ray, Tune and the worker processes), the later trials' the time from the loop end
that freed their slot to their own loop start (a reused Ray worker).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.markdown import machine, publish
from benchmarks.markdown import write_section as write_markdown_section

RESULTS = Path("benchmarks/results/sweep.json")
BEGIN, END = "<!-- bench:sweep begin -->", "<!-- bench:sweep end -->"
TITLE = "Sweeps on Ray Tune: a sweep vs the same runs in a row (issue 15)"
GOAL = 0.6
"""Sweep wall time / sequential wall time on 2 CPUs (issue 15)."""
TRIALS, STEPS = 8, 100_000


def _kinema(*args: str, cwd: Path) -> tuple[float, float, dict[str, Any]]:
    """(launch time, exit time, last JSON line) of one `python -m kinema` process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    t0 = time.time()
    done = subprocess.run([sys.executable, "-m", "kinema", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    t1 = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"kinema {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return t0, t1, json.loads(done.stdout.strip().splitlines()[-1])


def _loop(run: Path) -> dict[str, float]:
    """A run's loop start and end (epoch seconds), its loop wall time and its last return."""
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first, last = recs[0], recs[-1]
    evals = [r for r in recs if r.get("kind") == "eval"]
    return {"start": first["wall_time"] - first["wall_s"], "end": last["wall_time"],
            "wall_s": last["wall_s"], "return": evals[-1]["return_mean"]}


def run(*, trials: int = TRIALS, steps: int = STEPS, results: Path | None = RESULTS,
        markdown: Path | None = None, log: Any = print) -> dict[str, Any]:
    common = ["--env", "cartpole", "--steps", str(steps), "--device", "cpu"]
    out: dict[str, Any] = {"machine": machine(f"Python {platform.python_version()}"),
                           "trials": trials, "steps": steps, "load": {}}
    with tempfile.TemporaryDirectory(prefix="kinema-bench-sweep-") as tmp:
        root = Path(tmp)
        seq = []
        out["load"]["sequential"] = [os.getloadavg()[0]]
        for seed in range(trials):
            log(f"kinema train ppo --seed {seed} ({seed + 1}/{trials})")
            t0, t1, res = _kinema("train", "ppo", *common, "--seed", str(seed), "--runs-dir",
                                  str(root / "seq"), "--no-progress", "--json", cwd=root)
            loop = _loop(Path(res["run"]))
            seq.append(loop | {"launch": t0, "exit": t1, "startup_s": loop["start"] - t0})
        out["load"]["sequential"].append(os.getloadavg()[0])
        out["load"]["sweep"] = [os.getloadavg()[0]]
        log(f"kinema sweep ppo --seeds 0-{trials - 1}")
        t0, t1, res = _kinema("sweep", "ppo", *common, "--seeds", f"0-{trials - 1}", "--out",
                              str(root / "sweep"), "--no-progress", "--json", cwd=root)
        out["load"]["sweep"].append(os.getloadavg()[0])
        swept = sorted((_loop(Path(r["run"])) | {"seed": r["seed"]} for r in res["trials"]),
                       key=lambda r: r["start"])
    slots = min(trials, os.cpu_count() or 1)
    later = []
    for r in swept[slots:]:
        freed = [s["end"] for s in swept if s["end"] <= r["start"]]
        if freed:
            later.append(r["start"] - max(freed))
    seq_wall = seq[-1]["exit"] - seq[0]["launch"]
    out |= {
        "sequential": {"wall_s": seq_wall,
                       "startup_s": statistics.median(r["startup_s"] for r in seq),
                       "loop_s": statistics.mean(r["wall_s"] for r in seq)},
        "sweep": {"wall_s": t1 - t0, "slots": slots,
                  "first_startup_s": statistics.median(r["start"] - t0 for r in swept[:slots]),
                  "later_startup_s": statistics.median(later) if later else None,
                  "teardown_s": t1 - max(r["end"] for r in swept),
                  "loop_s": statistics.mean(r["wall_s"] for r in swept)},
        "same_returns": sorted((r["seed"], r["return"]) for r in swept)
        == [(i, r["return"]) for i, r in enumerate(seq)],
    }
    out["ratio"] = out["sweep"]["wall_s"] / seq_wall
    publish(out, results, markdown, write_section, report)
    return out


def report(r: dict[str, Any]) -> str:
    """The markdown of one `run`."""
    s, q = r["sweep"], r["sequential"]
    later = "-" if s["later_startup_s"] is None else f"{s['later_startup_s']:.2f}"
    verdict = "met" if r["ratio"] <= GOAL else "NOT met"
    options = "".join(f" --{k} {r[k]}" for k, d in (("trials", TRIALS), ("steps", STEPS))
                      if r[k] != d)
    load = r.get("load", {})
    loads = "; ".join(f"{side} {v[0]:.1f} -> {v[1]:.1f}" for side, v in load.items())
    return "\n".join([
        f"Command: `kinema bench sweep{options} --markdown BENCHMARKS.md` (benchmarks/sweep.py): "
        f"{r['trials']} runs of PPO on `cartpole`, {r['steps']:,} env steps each (seeds 0-"
        f"{r['trials'] - 1}, `--device cpu`, one torch thread, default evaluation every "
        f"{min(r['steps'] // 20, 100_000):,} steps), once as {r['trials']} `kinema train` "
        f"processes one after another, once as one `kinema sweep` (a local Ray instance, one "
        f"CPU per trial: {s['slots']} at a time). Wall time from launch to exit.", "",
        "| | wall s | vs sequential | start-up per run | mean loop wall s per run |",
        "|---|---:|---:|---:|---:|",
        f"| `kinema train` x {r['trials']}, in a row | {q['wall_s']:.1f} | 1.00 | "
        f"{q['startup_s']:.2f} s (process, imports, envs) | {q['loop_s']:.1f} |",
        f"| `kinema sweep`, {r['trials']} trials | {s['wall_s']:.1f} | {r['ratio']:.2f} | "
        f"first {s['slots']}: {s['first_startup_s']:.2f} s (with Ray and Tune); later: "
        f"{later} s (reused worker) | {s['loop_s']:.1f} |", "",
        f"Goal (sweep / sequential <= {GOAL}): {verdict} ({r['ratio']:.2f}). After the last "
        f"trial the sweep takes {s['teardown_s']:.1f} s more to stop Tune and Ray and print. "
        f"Same final returns per seed on both sides: {'yes' if r['same_returns'] else 'no'} "
        "(runs are deterministic under a seed, so the sweep changes where they run, not what "
        "they learn). Two trials on two cores also share the machine with Ray's own processes, "
        "which is why a trial's loop is slower than a run alone.", "",
        f"Machine: {r['machine']}; 1-minute load average before -> after each side: "
        f"{loads or 'not recorded'} (other processes on the machine slow both sides).",
    ])


def write_section(path: Path, body: str) -> None:
    """Replace this benchmark's section of `path` (and nothing else); add it if absent."""
    write_markdown_section(path, BEGIN, END, TITLE, body)


if __name__ == "__main__":
    print(report(run()))

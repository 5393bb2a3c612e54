"""`kinema bench irl`: Kinema's GAIL and AIRL beside HumanCompatibleAI's `imitation`, same run.

    kinema bench irl [--tasks cartpole,pendulum] [--seeds 0,1,2] [--libs kinema,imitation]

Per task, one expert dataset is recorded once (`kinema collect --expert scripted`, 10 episodes,
seed 0) and both libraries learn from it: Kinema reads it as it is, imitation 1.0.1 (in its own
virtual environment, benchmarks.irl_peer) from the same episodes converted to its Trajectory
arrays. Both train for the same generator env-step budget with the same PPO generator
hyperparameters (Kinema's preset for the env; benchmarks.irl_peer maps them onto SB3's PPO) and
the same discriminator sizes, learning rate, batch and updates per rollout, and both are
evaluated at the same points under the shared protocol (10 deterministic episodes on seeds
10000..10009, evaluation time left out of train seconds). The expert-normalized score
(R - R_random) / (R_expert - R_random) uses one R_random and R_expert per task, computed here
(agents.imitation.scores.reference_returns), for both libraries.

What differs, because the libraries differ (also printed under the table, `DIFFERENCES`).
Results are kept per (task, library, seed) in a JSON file, so subsets can run in turns.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import statistics
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from agents.imitation.scores import expert_normalized_score, reference_returns
from agents.registry import algorithm
from agents.runs.evaluation import evaluate
from agents.runs.train import TrainConfig, train
from benchmarks import irl_tabular
from benchmarks.markdown import machine
from benchmarks.markdown import write_section as write_markdown_section
from benchmarks.rl import CpuClock

RESULTS = Path("benchmarks/results/irl.json")
BEGIN, END = "<!-- kinema bench irl: begin -->", "<!-- kinema bench irl: end -->"
TITLE = "Inverse RL: GAIL and AIRL beside imitation"
LIBS = ("kinema", "imitation")
ALGOS = ("gail", "airl")
DEMO_EPISODES = 10
THRESHOLD = 0.8
"""Steps to this normalized score are reported beside the score at the end of the budget."""


@dataclass(frozen=True)
class IRLTask:
    env: str
    steps: int
    """Generator env steps per run (both libraries): a whole number of PPO rollouts."""
    eval_every: int
    expert_steps: int = 0
    """0: the env's scripted expert; else a PPO run of this many steps (its preset) is the
    expert, as `kinema collect --expert RUN` records it."""


TASKS = {
    "cartpole": IRLTask("cartpole", 25_600, 2_560),
    "pendulum": IRLTask("pendulum", 122_880, 8_192),
    "inverted-pendulum": IRLTask("inverted-pendulum", 102_400, 10_240),
    "halfcheetah": IRLTask("halfcheetah", 491_520, 49_152, expert_steps=200_000),
}
NOT_RUN: dict[str, str] = {}
ALL_TASKS = [*TASKS, *irl_tabular.TASKS]
"""Every task `kinema bench irl` runs: the adversarial ones above, then the tabular ones."""
DIFFERENCES = (
    "imitation's generator sees raw observations (its trainer hands the same env to the "
    "discriminator and the generator, so SB3's VecNormalize cannot normalize the generator's "
    "inputs alone); Kinema's PPO normalizes them (norm_obs)",
    "imitation alternates generator rollout + PPO update, then the discriminator's updates; "
    "Kinema updates the discriminator on the fresh rollout first, then the generator on the "
    "updated reward",
    "AIRL's generator reward: imitation's is f(s, a, s') (its reward_train, no entropy term); "
    "Kinema's is f - alpha log pi with alpha = 1 (discrete) or 0.1 (continuous; the preset)",
    "discriminator inputs: imitation normalizes them with a RunningNorm layer over all batches; "
    "Kinema with the expert data's statistics",
    "Kinema's train seconds include computing the two reference returns at the start "
    "(10 random and 10 expert episodes)",
    "imitation plays the same Gymnasium env (Gymnasium 0.29) with continuous actions in "
    "[-1, 1], clipped, then scaled, as Kinema presents them; its episodes are of variable "
    "length (allow_variable_horizon); imitation's docs warn that a variable horizon leaks "
    "information through episode length and recommend fixed-horizon envs (seals), which would "
    "no longer be Kinema's task",
)


def kinema_config(algo: str, env: str, dataset: Path | str) -> Any:
    """The algorithm's preset for `env`, learning from `dataset`."""
    return dataclasses.replace(algorithm(algo).preset(env), dataset=str(dataset))


def generator_fields(cfg: Any) -> dict[str, Any]:
    """The PPO fields the peer maps onto SB3's PPO."""
    keys = ("num_envs", "num_steps", "lr", "anneal_lr", "gamma", "lam", "num_minibatches",
            "update_epochs", "norm_adv", "clip_coef", "clip_vloss", "ent_coef", "vf_coef",
            "max_grad_norm", "target_kl", "hidden", "activation", "norm_reward", "init_log_std")
    return {k: getattr(cfg, k) for k in keys}


def disc_fields(cfg: Any) -> dict[str, Any]:
    return {"hidden": list(cfg.disc_hidden), "activation": cfg.disc_activation,
            "lr": cfg.disc_lr, "batch_size": cfg.disc_batch_size, "updates": cfg.disc_updates}


def record_demos(task: IRLTask, out: Path) -> dict[str, float]:
    """Record the task's expert dataset into `out` (next to it, the expert's PPO run when the
    task has one); its reference returns {random, expert}."""
    from agents.experts.base import make_expert
    from data.dataset import Dataset
    from data.record import record

    env, expert = task.env, "scripted"
    if task.expert_steps:
        expert = str(train(TrainConfig(algo="ppo", env=env, steps=task.expert_steps, seed=0,
                                       runs_dir=str(out.parent / "expert"))).run)
    record(env, make_expert(expert, env), DEMO_EPISODES, out, seed=0)
    ds = Dataset.open(out)
    return reference_returns(env, ds.metadata.get("expert", {}), ds.returns(), 10)


def summarize(evals: list[list[float]], reference: dict[str, float]) -> dict[str, Any]:
    """evals: [step, return, train wall s, train CPU s] -> the run's row: the last evaluation's
    return and normalized score, the first step reaching THRESHOLD (None if never), seconds."""
    norm = [expert_normalized_score(e[1], reference["random"], reference["expert"])
            for e in evals]
    reached = next((e[0] for e, n in zip(evals, norm, strict=True) if n >= THRESHOLD), None)
    last = evals[-1]
    return {"steps": int(last[0]), "return": float(last[1]), "normalized": norm[-1],
            "best_normalized": max(norm),
            "steps_to_threshold": None if reached is None else int(reached),
            "train_s": float(last[2]), "train_cpu_s": float(last[3]),
            "evals": [[int(e[0]), float(e[1]), float(e[2]), float(e[3])] for e in evals]}


def run_kinema(algo: str, task: IRLTask, dataset: Path, seed: int) -> list[list[float]]:
    clock = CpuClock()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(TrainConfig(algo=algo, env=task.env, steps=task.steps, seed=seed,
                                   eval_every=task.eval_every, eval_episodes=10, runs_dir=tmp),
                       kinema_config(algo, task.env, dataset), evaluator=clock.wrap(evaluate))
        rows = [json.loads(line) for line in
                (result.run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    return [[r["step"], r["return_mean"], r["train_s"], cpu]
            for r, cpu in zip(evals, clock.marks, strict=True)]


def run_peer(algo: str, task: IRLTask, dataset: Path, seed: int) -> tuple[list[list[float]],
                                                                           dict[str, Any]]:
    from benchmarks.irl_peer import run_imitation

    cfg = kinema_config(algo, task.env, dataset)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = run_imitation(algo, task.env, seed, task.steps, task.eval_every, dataset,
                        generator_fields(cfg), disc_fields(cfg))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    process_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    evals = [[*e, c] for e, c in zip(out["evals"], out["evals_cpu_s"], strict=True)]
    return evals, {"process_cpu_s": process_cpu, "versions": out["versions"]}


def run(tasks: list[str], seeds: list[int], libs: list[str], algos: tuple[str, ...] = ALGOS,
        results: Path = RESULTS, markdown: Path | None = None,
        log: Any = print) -> dict[str, Any]:
    unknown = [t for t in tasks if t not in ALL_TASKS] + [x for x in libs if x not in LIBS]
    if unknown:
        raise ValueError(f"unknown tasks or libraries {unknown}; tasks: {', '.join(ALL_TASKS)}; "
                         f"libraries: {', '.join(LIBS)}")
    torch.set_num_threads(1)
    store: dict[str, Any] = json.loads(results.read_text()) if results.exists() else {}
    for name in tasks:
        if name in irl_tabular.TASKS:
            irl_tabular.run_task(name, seeds, libs, store, log)
            results.parent.mkdir(parents=True, exist_ok=True)
            results.write_text(json.dumps(store, indent=1) + "\n")
            continue
        task = TASKS[name]
        with tempfile.TemporaryDirectory(prefix="irl-demos-") as tmp:
            dataset = Path(tmp) / "demos"
            reference = record_demos(task, dataset)
            entry = store.setdefault(name, {})
            entry["reference"] = reference
            log(json.dumps({"task": name, "reference": reference}))
            for seed in seeds:
                for algo in algos:
                    for lib in libs:
                        out = _one(lib, algo, task, dataset, seed, reference)
                        entry.setdefault(f"{lib}-{algo}", {})[str(seed)] = out
                        log(json.dumps({"task": name, "lib": lib, "algo": algo, "seed": seed,
                                        **{k: v for k, v in out.items() if k != "evals"}}))
                        results.parent.mkdir(parents=True, exist_ok=True)
                        results.write_text(json.dumps(store, indent=1) + "\n")
    if markdown is not None:
        write_markdown_section(markdown, BEGIN, END, TITLE, report(store))
    return store


def _one(lib: str, algo: str, task: IRLTask, dataset: Path, seed: int,
         reference: dict[str, float]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    try:
        if lib == "kinema":
            evals = run_kinema(algo, task, dataset, seed)
        else:
            evals, extra = run_peer(algo, task, dataset, seed)
        out = summarize(evals, reference) | extra
    except RuntimeError as e:  # a peer that cannot run here says why, in one line
        out = {"error": str(e)}
    return out | {"machine": _machine(), "date": datetime.now().isoformat(timespec="seconds")}


def _machine() -> str:
    return machine(f"torch {torch.__version__}", f"{torch.get_num_threads()} thread")


# -- report ---------------------------------------------------------------------------------------


def cell_stats(runs: dict[str, Any]) -> dict[str, Any] | None:
    """Medians over the seeds that ran: normalized score (and its min and max), steps to
    THRESHOLD (over the seeds that reached it), train wall and CPU seconds."""
    ok = [r for r in runs.values() if "error" not in r]
    if not ok:
        return None
    norm = [r["normalized"] for r in ok]
    reached = [r["steps_to_threshold"] for r in ok if r["steps_to_threshold"] is not None]
    return {"seeds": len(ok), "normalized": statistics.median(norm), "min": min(norm),
            "max": max(norm), "reached": len(reached),
            "best": statistics.median(r["best_normalized"] for r in ok),
            "steps_to_threshold": statistics.median(reached) if reached else None,
            "train_s": statistics.median(r["train_s"] for r in ok),
            "train_cpu_s": statistics.median(r["train_cpu_s"] for r in ok),
            "steps": statistics.median(r["steps"] for r in ok)}


def report(store: dict[str, Any]) -> str:
    lines = ["| task | algorithm | library | normalized (median, min–max) | best | seeds >= "
             f"{THRESHOLD:g} | steps to {THRESHOLD:g} (median) | env steps | train s | "
             "train CPU s |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    notes: list[str] = []
    ratios: list[str] = []
    for name in TASKS:
        entry = store.get(name)
        if not entry:
            continue
        for algo in ALGOS:
            cells = {}
            for lib in LIBS:
                runs = entry.get(f"{lib}-{algo}", {})
                notes += [f"{name}, {lib} {algo}: {e}" for e in
                          sorted({r["error"] for r in runs.values() if "error" in r})]
                s = cells[lib] = cell_stats(runs)
                if s is None:
                    continue
                to = "—" if s["steps_to_threshold"] is None else f"{s['steps_to_threshold']:,.0f}"
                lines.append(
                    f"| {name} | {algo.upper()} | {lib} | {s['normalized']:.2f} "
                    f"({s['min']:.2f}–{s['max']:.2f}) | {s['best']:.2f} | "
                    f"{s['reached']}/{s['seeds']} | {to} | "
                    f"{s['steps']:,.0f} | {s['train_s']:.1f} | {s['train_cpu_s']:.1f} |")
            k, p = cells.get("kinema"), cells.get("imitation")
            if k is not None and p is not None:
                ratios.append(f"{name} {algo.upper()}: train CPU s Kinema / imitation "
                              f"{k['train_cpu_s'] / p['train_cpu_s']:.2f}x, spread over seeds "
                              f"(max - min normalized) {k['max'] - k['min']:.2f} vs "
                              f"{p['max'] - p['min']:.2f}")
    tabular = irl_tabular.report(store)
    if len(lines) == 2:
        return tabular
    refs = [f"{n}: R_random {store[n]['reference']['random']:.1f}, R_expert "
            f"{store[n]['reference']['expert']:.1f}" for n in TASKS if n in store]
    text = "\n".join(lines) + (
        f"\n\nNormalized = (R - R_random) / (R_expert - R_random) at the end of the budget, "
        f"with one pair of references per task for both libraries ({'; '.join(refs)}); best: "
        f"the highest evaluation of a run, median over seeds; 10 "
        f"deterministic episodes on seeds 10000..10009 at every evaluation. Steps to "
        f"{THRESHOLD:g}: the first evaluation reaching it, median over the seeds that did. Train "
        f"seconds leave evaluation out; CPU seconds are the training process's own "
        f"(time.process_time), as the machine's cores are shared.")
    if ratios:
        text += "\n\n" + "\n".join(f"- {r}" for r in ratios)
    text += "\n\nWhat differs between the two sides:\n\n" + "\n".join(
        f"- {d}" for d in DIFFERENCES)
    missing = [f"{n}: {why}" for n, why in NOT_RUN.items()]
    if missing:
        text += "\n\nNot in this table:\n\n" + "\n".join(f"- {m}" for m in missing)
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    machines = sorted({r["machine"] for t in store.values() if isinstance(t, dict)
                       for lib in t.values() if isinstance(lib, dict)
                       for r in lib.values() if isinstance(r, dict) and "machine" in r})
    return text + (f"\n\n{tabular}" if tabular else "") + f"\n\nMachine: {'; '.join(machines)}."

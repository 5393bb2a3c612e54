"""`kinema bench latent`: Kinema's TD-MPC2-style agent (tdmpc) beside Kinema SAC, same run.

    kinema bench latent [--tasks cartpole-swingup,planning] [--seeds 0,1,2]
                        [--budgets 20000,50000]

Learning: dm-control cartpole-swingup, cheetah-run and walker-walk from states. Every seed
trains `tdmpc` and `sac` from their presets (what `kinema train ALGO --env ENV` uses) for the
largest budget, evaluated with the shared protocol (agents.runs.evaluation.evaluate: 10
deterministic episodes, seeds 10000..10009) every gcd(budgets) env steps; the return at each
budget is the evaluation at that step. Both agents are evaluated at the same points, one after
the other for each seed, so load on the machine hits both alike; train seconds leave evaluation
out (benchmarks.rl's clock). The report gives medians over seeds.

How steps are counted: one env step is one step of the registered env, one control step of
dm-control's physics (1,000 per episode; 10 ms for cart-pole and cheetah, 25 ms for walker), no
action repeat. TD-MPC2 (Hansen, Su, Wang 2024) wraps dm-control in an action repeat of 2 and
counts agent steps (500 per episode), so its "100k steps" are 200k of our env steps. Its
published returns at 100k agent steps (the mean over 3 seeds of results/<task>.csv in the
authors' repository) are 839, 519 and 962 on cartpole-swingup, cheetah-run and walker-walk;
those files hold no point between 0 and 100k, so there is no published figure at our 20k and
50k env steps (10k and 25k of theirs).

Planning: ms per control step of the tdmpc preset's planner on one CPU thread, in torch (the
agent's own `act`, deterministic) and in onnxruntime (the exported planner bundle,
deploy.runtime.OnnxPolicy), beside the env's control period, and the prior-alone bundle's.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

import sim
from agents.registry import algorithm
from agents.runs.evaluation import evaluate
from agents.runs.train import TrainConfig, train
from benchmarks import rl
from benchmarks.markdown import machine
from benchmarks.markdown import write_section as write_markdown_section

RESULTS = Path("benchmarks/results/latent.json")
BEGIN, END = "<!-- kinema bench latent: begin -->", "<!-- kinema bench latent: end -->"
TITLE = "Latent world model: TD-MPC2-style planning beside SAC (issue 12)"
LEARNING = ("cartpole-swingup", "cheetah-run", "walker-walk")
AGENTS = ("tdmpc", "sac")
BUDGETS = (20_000, 50_000)
"""Env steps at which the returns are read (default; `--budgets`)."""
EVAL_EPISODES = 10
"""The shared protocol's episodes per evaluation."""
PUBLISHED_AGENT_STEPS = 100_000
PUBLISHED = {"cartpole-swingup": 839.0, "cheetah-run": 519.0, "walker-walk": 962.0}
"""TD-MPC2's mean return over its 3 seeds at 100k agent steps (action repeat 2: 200k env
steps), from results/<task>.csv of github.com/nicklashansen/tdmpc2."""
ACTION_REPEAT = 2
"""TD-MPC2's action repeat on dm-control."""


# -- learning -------------------------------------------------------------------------------------


def check_budgets(budgets: Sequence[int]) -> tuple[int, ...]:
    """Sorted, distinct, positive budgets; a bad one is named in a one-line error."""
    bad = [b for b in budgets if not (isinstance(b, int) and not isinstance(b, bool) and b >= 1)]
    if bad or not budgets:
        raise ValueError(f"budgets {list(budgets)} must be one or more positive integers "
                         "(env steps), e.g. 20000,50000")
    return tuple(sorted(set(budgets)))


def run_agent(algo: str, env: str, seed: int, budgets: Sequence[int], root: Path, *,
              episodes: int = EVAL_EPISODES, overrides: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """Train `algo` on `env` for max(budgets) env steps, evaluating every gcd(budgets); the
    return at each budget and the (steps, return, train s, train CPU s) of every evaluation."""
    spec = algorithm(algo)
    cfg = dataclasses.replace(spec.preset(env), **(overrides or {}))
    clock = rl.CpuClock()
    every = math.gcd(*budgets)
    result = train(TrainConfig(algo=algo, env=env, steps=max(budgets), seed=seed,
                               eval_every=every, eval_episodes=episodes, runs_dir=str(root)),
                   cfg, evaluator=clock.wrap(evaluate))
    rows = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["return_mean"], r["train_s"], cpu)
             for r, cpu in zip([r for r in rows if r["kind"] == "eval"], clock.marks, strict=True)]
    returns: dict[str, float] = {}
    for b in budgets:  # the first evaluation at or after the budget, within one interval
        at = next((e for e in evals if b <= e[0] < b + every), None)
        if at is None:
            raise RuntimeError(f"{algo} on {env}: no evaluation between {b} and {b + every} "
                               f"env steps (evaluated at {[e[0] for e in evals]})")
        returns[str(b)] = float(at[1])
    plan_ms = [r["plan_ms"] for r in rows if r["kind"] == "train" and "plan_ms" in r]
    out: dict[str, Any] = {"returns": returns, "train_s": evals[-1][2],
                           "train_cpu_s": evals[-1][3], "evals": evals}
    if plan_ms:  # the agent's mean ms per planning call over the run (tdmpc's metric)
        out["plan_ms"] = float(plan_ms[-1])
    return out


def run_learning(env: str, seeds: Sequence[int], budgets: Sequence[int],
                 store: dict[str, Any], log: Any, *, episodes: int = EVAL_EPISODES,
                 overrides: dict[str, dict[str, Any]] | None = None,
                 save: Callable[[], None] = lambda: None) -> None:
    """Both agents for every seed into `store[env][agent][seed]`, `save`d after each run."""
    for seed in seeds:
        for algo in AGENTS:  # interleaved per seed, so load on the machine hits both alike
            with tempfile.TemporaryDirectory() as tmp:
                out = run_agent(algo, env, seed, budgets, Path(tmp), episodes=episodes,
                                overrides=(overrides or {}).get(algo))
            out |= {"episodes": episodes, "machine": _machine(),
                    "date": datetime.now().isoformat(timespec="seconds")}
            store.setdefault(env, {}).setdefault(algo, {})[str(seed)] = out
            log(json.dumps({"task": env, "agent": algo, "seed": seed,
                            **{k: v for k, v in out.items() if k != "evals"}}))
            save()  # a run of hours is kept even if a later one dies


# -- planning cost --------------------------------------------------------------------------------


def time_planner(env: str, *, steps: int = 30, overrides: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """ms per control step (median, p99) of the tdmpc preset's planner on one thread: the
    agent's own deterministic act in torch, the exported planner bundle and the prior-alone
    bundle in onnxruntime, with the weights as initialised (the cost does not depend on
    them): the reward and Q output layers start at zero, so every return ties exactly and the
    planner's index tie-break picks the elites alike in torch and onnxruntime."""
    from agents.latent.export import ExportedLatentMPPI, PriorPolicy
    from agents.latent.tdmpc import TDMPC
    from deploy.export import ExportError, export_bundle
    from deploy.runtime.policy import OnnxPolicy

    torch.set_num_threads(1)
    spec = algorithm("tdmpc")
    cfg = dataclasses.replace(spec.preset(env), **(overrides or {}))
    info = sim.spec(env).info
    torch.manual_seed(0)
    agent = cast(TDMPC, spec.make_agent(cfg, info, torch.device("cpu")))
    e = sim.make(env, seed=0)
    obs = e.reset(seed=0)[0]
    e.close()
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        agent.act(obs[None], deterministic=True)
        times.append(time.perf_counter() - t0)
    out: dict[str, Any] = {"env": env, "rate_hz": info.rate_hz, "torch_ms": _ms(times[2:])}
    low, high = torch.tensor(info.action_low), torch.tensor(info.action_high)
    modules = {"onnx_ms": ExportedLatentMPPI(agent.planner, low, high).eval(),
               "prior_onnx_ms": PriorPolicy(agent.model, low, high).eval()}
    with tempfile.TemporaryDirectory() as tmp:
        for key, module in modules.items():
            t0 = time.perf_counter()
            try:
                export_bundle(module, env=env, out_dir=Path(tmp) / key)
            except ExportError as err:  # recorded, and the other rows still run
                out[key.replace("_ms", "_error")] = str(err)
                continue
            out[key.replace("_ms", "_export_s")] = time.perf_counter() - t0
            policy = OnnxPolicy(Path(tmp) / key)
            times = []
            for _ in range(steps + 2):
                t0 = time.perf_counter()
                policy(obs)
                times.append(time.perf_counter() - t0)
            out[key] = _ms(times[2:])
    return out


def _ms(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    return {"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99))}


def run_planning(envs: Sequence[str], store: dict[str, Any], log: Any, *, steps: int = 30,
                 overrides: dict[str, Any] | None = None) -> None:
    rows = {}
    for env in envs:
        rows[env] = time_planner(env, steps=steps, overrides=overrides)
        log(json.dumps({"planning": env, **rows[env]}))
    store["planning"] = {"rows": rows, "machine": _machine(),
                         "date": datetime.now().isoformat(timespec="seconds")}


# -- results and report ---------------------------------------------------------------------------


def run(tasks: list[str], seeds: list[int], budgets: Sequence[int] = BUDGETS,
        results: Path = RESULTS, markdown: Path | None = None, log: Any = print, *,
        episodes: int = EVAL_EPISODES, overrides: dict[str, dict[str, Any]] | None = None,
        planning_steps: int = 30) -> dict[str, Any]:
    """Run every task asked for (`planning`: the planner's cost on every learning env) and
    store the results in `results`; rewrite this benchmark's section of `markdown` when given.
    `episodes` and `overrides` (agent -> config fields) make small runs (tests)."""
    known = [*LEARNING, "planning"]
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; tasks: {', '.join(known)}")
    budgets = check_budgets(budgets)
    torch.set_num_threads(1)
    store = json.loads(results.read_text()) if results.exists() else {}

    def save() -> None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(store, indent=1) + "\n")

    for name in tasks:
        if name == "planning":
            run_planning(LEARNING, store, log, steps=planning_steps,
                         overrides=(overrides or {}).get("tdmpc"))
        else:
            run_learning(name, seeds, budgets, store, log, episodes=episodes,
                         overrides=overrides, save=save)
        save()
    if markdown is not None:
        write_markdown_section(markdown, BEGIN, END, TITLE, report(store))
    return store


def _machine() -> str:
    return machine(f"torch {torch.__version__}", f"{torch.get_num_threads()} thread")


def _median(runs: dict[str, Any], key: str, budget: str | None = None) -> float | None:
    got = [r["returns"][budget] if budget else r[key] for r in runs.values()
           if budget is None or budget in r["returns"]]
    return float(statistics.median(got)) if got else None


def _cell(x: float | None, fmt: str = ".1f") -> str:
    return "—" if x is None else format(x, fmt)


def report(store: dict[str, Any]) -> str:
    """Markdown: returns at each budget (medians over seeds), the planning table, notes."""
    lines = ["| env | env steps | TD-MPC2 steps (x2 repeat) | seeds | Kinema tdmpc return | "
             "Kinema SAC return | tdmpc - SAC | tdmpc train s | SAC train s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for env in LEARNING:
        runs = store.get(env)
        if not runs:
            continue
        ours, sac = runs.get("tdmpc", {}), runs.get("sac", {})
        seeds = sorted(set(ours) & set(sac), key=int)
        if not seeds:
            continue
        ours = {s: ours[s] for s in seeds}
        sac = {s: sac[s] for s in seeds}
        budgets = sorted({b for r in [*ours.values(), *sac.values()] for b in r["returns"]},
                         key=int)
        for b in budgets:
            t, s = _median(ours, "", b), _median(sac, "", b)
            diff = None if t is None or s is None else t - s
            lines.append(f"| {env} | {int(b):,} | {int(b) // ACTION_REPEAT:,} | {len(seeds)} | "
                         f"{_cell(t)} | {_cell(s)} | **{_cell(diff, '+.1f')}** | "
                         f"{_cell(_median(ours, 'train_s'))} | {_cell(_median(sac, 'train_s'))} |")
    text = "\n".join(lines) if len(lines) > 2 else ""
    if text:
        episodes = sorted({r.get("episodes", EVAL_EPISODES) for env in LEARNING
                           for a in store.get(env, {}).values() for r in a.values()})
        text += ("\n\nMedians over seeds of the mean return of "
                 f"{'/'.join(map(str, episodes))} deterministic evaluation episodes (seeds "
                 "10000..) at each budget, and of the train seconds (evaluation left out) "
                 "for the whole run. Env steps are steps of the registered dm-control env (one "
                 "physics control step, 1,000 per episode, no action repeat); TD-MPC2 counts "
                 f"agent steps with an action repeat of {ACTION_REPEAT}, so its step for ours "
                 "is half. Both agents train from their presets in the same run, one after "
                 "the other per seed.")
    published = ", ".join(f"{env} {v:.0f}" for env, v in PUBLISHED.items())
    text += (("\n\n" if text else "") + "TD-MPC2 published, mean of 3 seeds at "
             f"{PUBLISHED_AGENT_STEPS:,} agent steps = "
             f"{PUBLISHED_AGENT_STEPS * ACTION_REPEAT:,} env steps: {published} "
             "(results/*.csv of the authors' repository; no published point below that).")
    planning = store.get("planning")
    if planning:
        text += "\n\n" + _planning_table(planning)
    machines = sorted({r["machine"] for env in LEARNING for a in store.get(env, {}).values()
                       for r in a.values() if "machine" in r}
                      | ({planning["machine"]} if planning else set()))
    if machines:
        text += f"\n\nMachine: {'; '.join(machines)}."
    return text


def _planning_table(planning: dict[str, Any]) -> str:
    lines = ["| env | control period ms | planner torch p50 / p99 ms | planner onnxruntime "
             "p50 / p99 ms | prior alone onnxruntime p50 / p99 ms | planner export s |",
             "|---|---:|---:|---:|---:|---:|"]
    for env, r in planning["rows"].items():
        cells = [f"{r[k]['p50']:.2f} / {r[k]['p99']:.2f}" if k in r else "—"
                 for k in ("torch_ms", "onnx_ms", "prior_onnx_ms")]
        lines.append(f"| {env} | {1e3 / r['rate_hz']:.0f} | {' | '.join(cells)} | "
                     f"{_cell(r.get('onnx_export_s'))} |")
    realtime = [env for env, r in planning["rows"].items()
                if r.get("onnx_ms", r["torch_ms"])["p99"] <= 1e3 / r["rate_hz"]]
    errors = [f"- {env}: {r[k]}" for env, r in planning["rows"].items()
              for k in ("onnx_error", "prior_onnx_error") if k in r]
    return "\n".join(lines) + (
        "\n\nOne torch / onnxruntime thread, the tdmpc preset's planner with its initial "
        "weights (the cost does not depend on them). Within the control period at p99 (the "
        "exported "
        f"planner where it exported): {', '.join(realtime) or 'none'}.") + (
        "\n\nExports refused:\n" + "\n".join(errors) if errors else "")

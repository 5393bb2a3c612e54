"""`kinema bench mbrl`: PETS beside SAC (Kinema's and Stable-Baselines3's), and planning cost.

    kinema bench mbrl [--tasks pendulum,planning] [--seeds 0,1,2] [--libs kinema,sb3,mbrl-lib]

Learning: env steps and train seconds to a target under the shared evaluation protocol
(agents.runs.evaluation.evaluate, 10 deterministic episodes; benchmarks.rl runs both libraries
the same way), medians over seeds, PETS and SAC side by side in one run on one machine. The
peer that has PETS, mbrl-lib, pins gymnasium 0.26 and runs in a virtual environment of its own
(benchmarks.mbrl_peer), on Gymnasium's Pendulum-v1 with the same settings and protocol.

Planning: ms per planning step of each preset's controller, in torch and in onnxruntime (the
exported bundle, one thread), beside the control period of its env, and the same for the PETS
paper's setting (population 500, horizon 30, 20 particles, 5 iterations, 4x200 members) with
its FLOP count and the fraction of this CPU's measured one-thread matmul rate it reaches.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

import sim
from agents.model_based.mpc import ExportedMPC
from agents.model_based.pets import PETS, PETSConfig, preset
from benchmarks import rl
from benchmarks.markdown import machine
from benchmarks.markdown import write_section as write_markdown_section

RESULTS = Path("benchmarks/results/mbrl.json")
BEGIN, END = "<!-- kinema bench mbrl: begin -->", "<!-- kinema bench mbrl: end -->"
TITLE = "Model-based RL: PETS beside SAC, and the exported planner's cost (issue 10)"
LIBS = ("kinema", "sb3", "mbrl-lib")


@dataclass(frozen=True)
class Learning:
    env: str
    target: float
    pets_steps: int
    sac_steps: int
    eval_every: int


LEARNING = {
    "pendulum": Learning("pendulum", -200, 3_000, 20_000, 100),
    "inverted-pendulum": Learning("inverted-pendulum", 1000, 5_000, 50_000, 250),
    "cartpole-swingup": Learning("cartpole-swingup", 800, 30_000, 300_000, 1_000),
}
PLANNING = ("pendulum", "inverted-pendulum", "cartpole-swingup", "halfcheetah")
PAPER = PETSConfig(hidden=(200, 200, 200, 200), samples=500, horizon=30, particles=20,
                   iterations=5, elites=50)
"""Chua et al. 2018's planner and model (their half-cheetah setting)."""
SVG_STEPS = {"pendulum": 8_000}
"""Budgets of the SVG(H) rows (agents/model_based/svg.py), run as `kinema-svg` with the Kinema
rows and evaluated at the same points."""


def svg_task(spec: Learning) -> rl.Task:
    return rl.Task("svg", spec.env, spec.target, SVG_STEPS[spec.env], spec.eval_every, "SAC")


MBPO_TASKS = {"mbpo-pendulum": ("pendulum", 3_000),
              "mbpo-inverted-pendulum": ("inverted-pendulum", 10_000)}
"""MBPO rows (agents/model_based/mbpo.py): task -> (env, MBPO's budget). Each runs MBPO, Kinema
SAC and SB3 SAC side by side in one run, evaluated at the env's points (LEARNING)."""


def _tasks(spec: Learning) -> dict[str, rl.Task]:
    sac = rl.TASKS.get(f"sac-{spec.env}")
    sac_kwargs = sac.sb3_kwargs if sac is not None else {}
    return {
        "pets": rl.Task("pets", spec.env, spec.target, spec.pets_steps, spec.eval_every, "SAC"),
        # SAC's presets and SB3's (RL-Zoo) hyperparameters as in benchmarks.rl, evaluated at
        # the same points as PETS, so the step counts share one resolution
        "sac": rl.Task("sac", spec.env, spec.target, spec.sac_steps, spec.eval_every, "SAC",
                       sac_kwargs),
    }


def run_learning(name: str, seeds: list[int], libs: list[str], store: dict[str, Any],
                 log: Any) -> None:
    spec = LEARNING[name]
    tasks = _tasks(spec)
    for seed in seeds:
        jobs: list[tuple[str, Any]] = []
        if "kinema" in libs:
            jobs += [("kinema-pets", lambda t=tasks["pets"], s=seed: _kinema(t, s)),
                     ("kinema-sac", lambda t=tasks["sac"], s=seed: _kinema(t, s))]
        if "kinema" in libs and name in SVG_STEPS:
            jobs.append(("kinema-svg", lambda s=seed: _kinema(svg_task(spec), s)))
        if "sb3" in libs:
            jobs.append(("sb3-sac", lambda t=tasks["sac"], s=seed: rl.run_sb3(t, s)))
        if "mbrl-lib" in libs and name == "pendulum":
            jobs.append(("mbrl-lib-pets", lambda s=seed: _mbrl_lib(spec, s)))
        for lib, job in jobs:
            try:
                out = job()
            except RuntimeError as e:  # a peer that cannot run here says why, in one line
                out = {"error": str(e)}
            out |= {"machine": _machine(), "date": datetime.now().isoformat(timespec="seconds")}
            store.setdefault(name, {}).setdefault(lib, {})[str(seed)] = out
            log(json.dumps({"task": name, "lib": lib, "seed": seed,
                            **{k: v for k, v in out.items() if k != "evals"}}))


def run_mbpo(name: str, seeds: list[int], libs: list[str], store: dict[str, Any],
             log: Any) -> None:
    """MBPO, Kinema SAC and SB3 SAC on one env, each seed in turn, in one run."""
    env, budget = MBPO_TASKS[name]
    spec = LEARNING[env]
    sac = _tasks(spec)["sac"]
    mbpo = rl.Task("mbpo", env, spec.target, budget, spec.eval_every, "SAC")
    for seed in seeds:
        jobs: list[tuple[str, Any]] = []
        if "kinema" in libs:
            jobs += [("kinema-mbpo", lambda s=seed: _kinema(mbpo, s)),
                     ("kinema-sac", lambda s=seed: _kinema(sac, s))]
        if "sb3" in libs:
            jobs.append(("sb3-sac", lambda s=seed: rl.run_sb3(sac, s)))
        for lib, job in jobs:
            out = job() | {"machine": _machine(),
                           "date": datetime.now().isoformat(timespec="seconds")}
            store.setdefault(name, {}).setdefault(lib, {})[str(seed)] = out
            log(json.dumps({"task": name, "lib": lib, "seed": seed,
                            **{k: v for k, v in out.items() if k != "evals"}}))


def _kinema(task: rl.Task, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return rl.run_kinema(task, seed, Path(tmp))


def _mbrl_lib(spec: Learning, seed: int) -> dict[str, Any]:
    from benchmarks.mbrl_peer import run_mbrl_lib

    ours = preset(spec.env)  # the same data schedule as our preset
    return run_mbrl_lib(spec.env, seed, spec.pets_steps, spec.eval_every, spec.target,
                        learning_starts=ours.learning_starts, train_every=ours.train_every)


# -- planning cost --------------------------------------------------------------------------------


def flops_per_step(cfg: PETSConfig, obs_dim: int, act_dim: int, reward_head: bool) -> float:
    """Multiply-adds x 2 of the members' matmuls for one planning step (activations, the
    reward and the planner's own arithmetic are left out: they are a few percent)."""
    out = 2 * (obs_dim + int(reward_head))
    dims = [obs_dim + act_dim, *cfg.hidden, out]
    per_row = 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:], strict=True))
    rows = cfg.iterations * cfg.samples * cfg.particles * cfg.horizon
    return float(per_row * rows)


def matmul_rate(n: int = 1024, repeats: int = 10) -> float:
    """This CPU's one-thread float32 matmul rate in FLOP/s (the roofline we compare with)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def _agent(env: str, cfg: PETSConfig) -> PETS:
    """A PETS agent whose model has seen data (random transitions), as export requires."""
    info = sim.spec(env).info
    agent = PETS(cfg, info, torch.device("cpu"))
    e = sim.make(env, seed=0)
    obs, _ = e.reset(seed=0)
    rng = np.random.default_rng(0)
    rows: list[tuple[np.ndarray, ...]] = []
    for _ in range(500):
        act = rng.uniform(-1, 1, info.act_dim).astype(np.float32)
        nxt, r, term, trunc, _ = e.step(act)
        rows.append((obs, act, nxt, np.float32(r)))
        obs = e.reset()[0] if term or trunc else nxt
    e.close()
    o, a, n, r = (torch.as_tensor(np.array(x), dtype=torch.float32)
                  for x in zip(*rows, strict=True))
    agent.model.fit_normalizers(o, a, n, r if agent.model.reward else None)
    return agent


def time_planner(env: str, cfg: PETSConfig, *, steps: int = 30, onnx: bool = True
                 ) -> dict[str, Any]:
    """ms per planning step (median, p99) in torch and in onnxruntime, one thread."""
    from deploy.export import export_bundle
    from deploy.runtime.policy import OnnxPolicy

    torch.set_num_threads(1)
    agent = _agent(env, cfg)
    info = agent.info
    obs = sim.make(env, seed=0).reset(seed=0)[0]
    module = cast(ExportedMPC, agent.inference_module())
    noise_names = module.noise_names
    plan = torch.zeros(1, cfg.horizon, info.act_dim)
    times = []
    with torch.no_grad():
        for _ in range(steps + 2):
            noise = module.controller.draw_noise(1)
            t0 = time.perf_counter()
            _, plan = module(torch.as_tensor(obs[None]), plan, *(noise[n] for n in noise_names))
            times.append(time.perf_counter() - t0)
    out: dict[str, Any] = {"env": env, "rate_hz": info.rate_hz,
                           "flops": flops_per_step(cfg, info.obs_dim, info.act_dim,
                                                   agent.model.reward),
                           "torch_ms": _ms(times[2:])}
    if onnx:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            export_bundle(module, env=env, out_dir=Path(tmp) / "b")
            out["export_s"] = time.perf_counter() - t0
            policy = OnnxPolicy(Path(tmp) / "b")
            times = []
            for _ in range(steps + 2):
                t0 = time.perf_counter()
                policy(obs)
                times.append(time.perf_counter() - t0)
            out["onnx_ms"] = _ms(times[2:])
    return out


def _ms(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    return {"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99))}


def run_planning(store: dict[str, Any], log: Any) -> None:
    rate = matmul_rate()
    rows = {}
    for env in PLANNING:
        if env not in sim.names():
            continue
        rows[env] = time_planner(env, preset(env))
        log(json.dumps({"planning": env, **rows[env]}))
    paper = time_planner("halfcheetah", PAPER, steps=5,
                         onnx=False)  # its unrolled graph (150 model steps) exports for minutes
    rows["halfcheetah (paper)"] = paper
    log(json.dumps({"planning": "paper", **paper}))
    store["planning"] = {"matmul_flops": rate, "rows": rows, "machine": _machine(),
                         "date": datetime.now().isoformat(timespec="seconds")}


# -- results and report ---------------------------------------------------------------------------


def run(tasks: list[str], seeds: list[int], libs: list[str], results: Path = RESULTS,
        markdown: Path | None = None, log: Any = print) -> dict[str, Any]:
    known = [*LEARNING, *MBPO_TASKS, "planning"]
    unknown = [t for t in tasks if t not in known] + [x for x in libs if x not in LIBS]
    if unknown:
        raise ValueError(f"unknown tasks or libraries {unknown}; tasks: {', '.join(known)}; "
                         f"libraries: {', '.join(LIBS)}")
    torch.set_num_threads(1)
    store = json.loads(results.read_text()) if results.exists() else {}
    for name in tasks:
        if name == "planning":
            run_planning(store, log)
        elif name in MBPO_TASKS:
            run_mbpo(name, seeds, libs, store, log)
        else:
            run_learning(name, seeds, libs, store, log)
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(store, indent=1) + "\n")
    if markdown is not None:
        write_markdown_section(markdown, BEGIN, END, TITLE, report(store))
    return store


def _machine() -> str:
    return machine(f"torch {torch.__version__}", f"{torch.get_num_threads()} thread")


def _median_of(runs: dict[str, Any], key: str) -> tuple[float, str, int] | None:
    ok = [r for r in runs.values() if "error" not in r]
    if not ok:
        return None
    mark = "" if all(r["solved"] for r in ok) else " (unsolved seeds)"
    return float(statistics.median(r[key] for r in ok)), mark, len(ok)


def report(store: dict[str, Any]) -> str:
    lines = ["| env | target | PETS steps | Kinema SAC steps | SB3 SAC steps | mbrl-lib PETS "
             "steps | PETS / SAC steps | PETS train s | Kinema SAC train s | SB3 SAC train s "
             "| mbrl-lib PETS train s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for name, spec in LEARNING.items():
        runs = store.get(name)
        if not runs:
            continue
        cells = {}
        for lib in ("kinema-pets", "kinema-sac", "sb3-sac", "mbrl-lib-pets"):
            got = runs.get(lib, {})
            errors = {r["error"] for r in got.values() if "error" in r}
            notes += [f"{name}, {lib}: {e}" for e in sorted(errors)]
            cells[lib] = (_median_of(got, "steps"), _median_of(got, "train_s"))

        pets, sac = cells["kinema-pets"][0], cells["kinema-sac"][0]
        ratio = "—" if pets is None or sac is None else f"**{pets[0] / sac[0]:.2f}x**"
        step_cells = [_steps_cell(cells[lib][0]) for lib in
                      ("kinema-pets", "kinema-sac", "sb3-sac", "mbrl-lib-pets")]
        secs = [_secs_cell(cells[lib][1])
                for lib in ("kinema-pets", "kinema-sac", "sb3-sac", "mbrl-lib-pets")]
        lines.append(f"| {name} | {spec.target:g} | {' | '.join(step_cells)} | {ratio} | "
                     f"{' | '.join(secs)} |")
    text = "\n".join(lines) if len(lines) > 2 else ""
    if text:
        text += ("\n\nMedians over seeds of the env steps (random warm-up included) and train "
                 "seconds (evaluation left out) at the first evaluation reaching the target; "
                 "every library is evaluated at the same points (every `eval_every` steps, 10 "
                 "episodes, seeds 10000..10009). PETS and mbrl-lib's PETS use the same settings "
                 "and data schedule (Kinema's preset); mbrl-lib runs in its own venv on "
                 "Gymnasium 0.26's Pendulum-v1 with the env's cost written on the next state, as "
                 "its reward functions take (action, next state). SAC: Kinema's preset; SB3: "
                 "RL-Zoo's hyperparameters (benchmarks.rl).")
    text += svg_table(store)
    text += mbpo_table(store)
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    planning = store.get("planning")
    if planning:
        text += "\n\n" + _planning_table(planning)
    machines = sorted({r.get("machine", "?") for t in store.values() if isinstance(t, dict)
                       for lib in t.values() if isinstance(lib, dict)
                       for r in lib.values() if isinstance(r, dict) and "machine" in r}
                      | ({planning["machine"]} if planning else set()))
    return text + f"\n\nMachine: {'; '.join(machines)}."


def svg_table(store: dict[str, Any]) -> str:
    """SVG(H) beside Kinema SAC: env steps and train seconds to the target (medians)."""
    lines = ["| env | target | SVG(H) steps | Kinema SAC steps | SVG / SAC steps | SVG train s "
             "| Kinema SAC train s | SVG train CPU s | Kinema SAC train CPU s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, spec in LEARNING.items():
        runs = store.get(name, {})
        if not runs.get("kinema-svg"):
            continue
        svg, sac = (_median_of(runs.get(lib, {}), "steps") for lib in ("kinema-svg", "kinema-sac"))
        ratio = "—" if svg is None or sac is None else f"**{svg[0] / sac[0]:.2f}x**"
        secs = [_secs_cell(_median_of(runs.get(lib, {}), key)) for key in ("train_s",
                "train_cpu_s") for lib in ("kinema-svg", "kinema-sac")]
        lines.append(f"| {name} | {spec.target:g} | {_steps_cell(svg)} | {_steps_cell(sac)} | "
                     f"{ratio} | {' | '.join(secs)} |")
    if len(lines) == 2:
        return ""
    return ("\n\n" + "\n".join(lines) + "\n\nSVG(H): the policy backpropagates the learned "
            "model's H-step return (Heess et al. 2015; svg's preset: SAC's networks, H = 3, a "
            "5-member ensemble of 128x128, refit every 250 env steps), same protocol as above; "
            "CPU seconds are the process's, which a busy machine does not inflate as it does "
            "wall seconds.")


def mbpo_table(store: dict[str, Any]) -> str:
    """MBPO beside Kinema SAC and SB3 SAC (one run): env steps and train seconds to the target,
    and MBPO's wall and CPU milliseconds per env step (medians over seeds)."""
    lines = ["| env | target | MBPO steps | Kinema SAC steps | SB3 SAC steps | MBPO / SAC steps "
             "| MBPO train s | Kinema SAC train s | SB3 SAC train s | MBPO ms per env step "
             "(wall / CPU) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, (env, _) in MBPO_TASKS.items():
        runs = store.get(name, {})
        if not runs.get("kinema-mbpo"):
            continue
        libs = ("kinema-mbpo", "kinema-sac", "sb3-sac")
        steps = [_median_of(runs.get(lib, {}), "steps") for lib in libs]
        mbpo, sac = steps[0], steps[1]
        ratio = "—" if mbpo is None or sac is None else f"**{mbpo[0] / sac[0]:.2f}x**"
        secs = [_secs_cell(_median_of(runs.get(lib, {}), "train_s")) for lib in libs]
        per = [statistics.median(1e3 * r[k] / r["steps"] for r in runs["kinema-mbpo"].values())
               for k in ("train_s", "train_cpu_s")]
        lines.append(f"| {env} | {LEARNING[env].target:g} | "
                     f"{' | '.join(_steps_cell(s) for s in steps)} | {ratio} | "
                     f"{' | '.join(secs)} | {per[0]:.0f} / {per[1]:.0f} |")
    if len(lines) == 2:
        return ""
    return ("\n\n" + "\n".join(lines) + "\n\nMBPO (Janner et al. 2019; mbpo's preset, "
            "agents/model_based/mbpo.py) in the same run as Kinema SAC and SB3 SAC, same protocol "
            "as above (`kinema bench mbrl --tasks mbpo-pendulum`). MBPO's ms per env step "
            "include its G SAC updates per step, the model refits and the rollouts.")


def _steps_cell(s: tuple[float, str, int] | None) -> str:
    return "—" if s is None else f"{s[0]:,.0f}{s[1]} ({s[2]} seeds)"


def _secs_cell(s: tuple[float, str, int] | None) -> str:
    return "—" if s is None else f"{s[0]:.1f}"


def _planning_table(planning: dict[str, Any]) -> str:
    peak = planning["matmul_flops"]
    lines = ["| controller | control period ms | torch p50 / p99 ms | onnxruntime p50 / p99 ms "
             "| GFLOP per step | GFLOP/s (torch) | of the matmul roofline |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in planning["rows"].items():
        t, o = r["torch_ms"], r.get("onnx_ms")
        rate = r["flops"] / (t["p50"] / 1e3)
        ort = "—" if o is None else f"{o['p50']:.1f} / {o['p99']:.1f}"
        lines.append(f"| {name} | {1e3 / r['rate_hz']:.0f} | {t['p50']:.1f} / {t['p99']:.1f} "
                     f"| {ort} | {r['flops'] / 1e9:.2f} | {rate / 1e9:.1f} | "
                     f"{100 * rate / peak:.0f}% |")
    realtime = [name for name, r in planning["rows"].items()
                if (r.get("onnx_ms") or r["torch_ms"])["p99"] <= 1e3 / r["rate_hz"]]
    slow = [name for name in planning["rows"] if name not in realtime]
    return "\n".join(lines) + (
        f"\n\nOne thread; the roofline is this CPU's measured one-thread float32 matmul rate, "
        f"{peak / 1e9:.1f} GFLOP/s (1024x1024). FLOPs count the members' matmuls (iterations x "
        f"population x particles x horizon rows). Within the control period at p99 (the "
        f"exported bundle where there is one): {', '.join(realtime) or 'none'}; not: "
        f"{', '.join(slow) or 'none'}.")


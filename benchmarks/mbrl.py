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

import dataclasses
import json
import tempfile
import time
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
from benchmarks.mbrl_report import report
from benchmarks.mbrl_tasks import (
    LEARNING,
    MBPO_FINAL,
    MBPO_TASKS,
    MVE,
    MVE_TASKS,
    PETS_CPU,
    PETS_FINAL,
    SVG_STEPS,
    Learning,
)

RESULTS = Path("benchmarks/results/mbrl.json")
BEGIN, END = "<!-- kinema bench mbrl: begin -->", "<!-- kinema bench mbrl: end -->"
TITLE = "Model-based RL: PETS beside SAC, and the exported planner's cost (issue 10)"
LIBS = ("kinema", "sb3", "mbrl-lib")


PLANNING = ("pendulum", "inverted-pendulum", "cartpole-swingup", "halfcheetah")
PAPER = PETSConfig(hidden=(200, 200, 200, 200), samples=500, horizon=30, particles=20,
                   iterations=5, elites=50)
"""Chua et al. 2018's planner and model (their half-cheetah setting)."""
def svg_task(spec: Learning) -> rl.Task:
    return rl.Task("svg", spec.env, spec.target, SVG_STEPS[spec.env], spec.eval_every, "SAC")


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


def beside_sac(name: str) -> tuple[str, rl.Task, rl.Task]:
    """Task `name` of issue 11 (or PETS_FINAL's): (its job's name, its Kinema task, the SAC
    task it runs beside)."""
    if name in MBPO_TASKS:
        env, budget = MBPO_TASKS[name]
        spec = LEARNING[env]
        return ("kinema-mbpo", rl.Task("mbpo", env, spec.target, budget, spec.eval_every, "SAC"),
                _tasks(spec)["sac"])
    if name in MBPO_FINAL:
        sac = rl.TASKS[f"sac-{MBPO_FINAL[name]}-30k"]
        return "kinema-mbpo", dataclasses.replace(sac, algo="mbpo", sb3_kwargs={}), sac
    if name in PETS_FINAL:
        env, budget = PETS_FINAL[name]
        sac = dataclasses.replace(rl.TASKS[f"sac-{env}-30k"], budget=budget)
        return "kinema-pets", dataclasses.replace(sac, algo="pets", sb3_kwargs={},
                                                  eval_every=budget, overrides=PETS_CPU), sac
    sac = _tasks(LEARNING[MVE_TASKS[name]])["sac"]
    return "kinema-mve", dataclasses.replace(sac, overrides=MVE), sac


def run_mbpo(name: str, seeds: list[int], libs: list[str], store: dict[str, Any],
             log: Any) -> None:
    """MBPO (or SAC with MVE, or PETS at a fixed budget), Kinema SAC and SB3 SAC on one env,
    each seed in turn, in one run."""
    job_name, ours, sac = beside_sac(name)
    for seed in seeds:
        jobs: list[tuple[str, Any]] = []
        if "kinema" in libs:
            jobs += [(job_name, lambda s=seed: _kinema(ours, s)),
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
    # the planner of the fixed-budget PETS rows (PETS_FINAL), on the same model
    cpu = "halfcheetah (K 100, H 15, P 5)"
    rows[cpu] = time_planner("halfcheetah", dataclasses.replace(preset("halfcheetah"),
                                                                 **PETS_CPU))
    log(json.dumps({"planning": cpu, **rows[cpu]}))
    paper = time_planner("halfcheetah", PAPER, steps=5,
                         onnx=False)  # its unrolled graph (150 model steps) exports for minutes
    rows["halfcheetah (paper)"] = paper
    log(json.dumps({"planning": "paper", **paper}))
    store["planning"] = {"matmul_flops": rate, "rows": rows, "machine": _machine(),
                         "date": datetime.now().isoformat(timespec="seconds")}


# -- results and report ---------------------------------------------------------------------------


def run(tasks: list[str], seeds: list[int], libs: list[str], results: Path = RESULTS,
        markdown: Path | None = None, log: Any = print) -> dict[str, Any]:
    known = [*LEARNING, *MBPO_TASKS, *MBPO_FINAL, *PETS_FINAL, *MVE_TASKS, "planning"]
    unknown = [t for t in tasks if t not in known] + [x for x in libs if x not in LIBS]
    if unknown:
        raise ValueError(f"unknown tasks or libraries {unknown}; tasks: {', '.join(known)}; "
                         f"libraries: {', '.join(LIBS)}")
    torch.set_num_threads(1)
    store = json.loads(results.read_text()) if results.exists() else {}
    for name in tasks:
        if name == "planning":
            run_planning(store, log)
        elif name in {**MBPO_TASKS, **MBPO_FINAL, **PETS_FINAL, **MVE_TASKS}:
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

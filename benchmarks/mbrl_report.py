"""The markdown of `benchmarks.mbrl.run` for BENCHMARKS.md: PETS, SVG(H) and MBPO beside SAC,
and the planning table (its own section only)."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.mbrl_tasks import LEARNING, MBPO_FINAL, MBPO_TASKS, MVE_TASKS, PETS_FINAL


def _median_of(runs: dict[str, Any], key: str) -> tuple[float, str, int] | None:
    ok = [r for r in runs.values() if "error" not in r]
    if not ok:
        return None
    mark = "" if all(r.get("solved", True) for r in ok) else " (unsolved seeds)"
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
    """MBPO, and SAC with MVE, beside Kinema SAC and SB3 SAC (one run each): env steps and
    train seconds to the target, the returns of the fixed-budget rows, and the model-based
    agent's wall and CPU milliseconds per env step (medians over seeds)."""
    mbpo = _to_target_table(store, {n: env for n, (env, _) in MBPO_TASKS.items()},
                            "kinema-mbpo", "MBPO")
    mve = _to_target_table(store, MVE_TASKS, "kinema-mve", "MVE")
    final = _final_table(store, MBPO_FINAL, "kinema-mbpo", "MBPO")
    pets = _final_table(store, {n: env for n, (env, _) in PETS_FINAL.items()}, "kinema-pets",
                        "PETS")
    text = ""
    if pets:
        text += ("\n\n" + pets + "\n\nReturns (10 deterministic episodes) after the env "
                 "steps shown, in one run: PETS from its preset with the smaller planner of "
                 "benchmarks.mbrl_tasks.PETS_CPU (K 100, H 15, P 5), evaluated at the end only; "
                 "Kinema SAC and SB3 SAC as in the MBPO rows below (`kinema bench mbrl --tasks "
                 "pets-halfcheetah-20k`).")
    if mbpo:
        text += ("\n\n" + mbpo + "\n\nMBPO (Janner et al. 2019; mbpo's preset, "
                 "agents/model_based/mbpo.py) in the same run as Kinema SAC and SB3 SAC, same "
                 "protocol as above (`kinema bench mbrl --tasks mbpo-pendulum`). MBPO's ms per "
                 "env step include its G SAC updates per step, the model refits and the "
                 "rollouts.")
    if final:
        text += ("\n\n" + final + "\n\nReturns (10 deterministic episodes) after the env "
                 "steps shown, in one run: MBPO from its preset (the paper's config for the "
                 "robot, sized for CPU), Kinema SAC from its preset and SB3 SAC with RL-Zoo's "
                 "MuJoCo defaults on benchmarks.rl's sac-ENV-30k task (`kinema bench mbrl "
                 "--tasks mbpo-hopper-30k`).")
    if mve:
        text += ("\n\n" + mve + "\n\nMVE: Kinema SAC's preset with model-based value "
                 "expansion (Feinberg et al. 2018; `kinema train sac --mve-horizon 3 "
                 "--model-hidden 200 200`) beside the same preset without it and SB3 SAC, in "
                 "one run, same protocol as above (`kinema bench mbrl --tasks mve-pendulum`).")
    return text


def _to_target_table(store: dict[str, Any], tasks: dict[str, str], job: str,
                     label: str) -> str:
    lines = [f"| env | target | {label} steps | Kinema SAC steps | SB3 SAC steps | {label} / "
             f"SAC steps | {label} train s | Kinema SAC train s | SB3 SAC train s | {label} ms "
             "per env step (wall / CPU) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, env in tasks.items():
        runs = store.get(name, {})
        if not runs.get(job):
            continue
        libs = (job, "kinema-sac", "sb3-sac")
        steps = [_median_of(runs.get(lib, {}), "steps") for lib in libs]
        ours, sac = steps[0], steps[1]
        ratio = "—" if ours is None or sac is None else f"**{ours[0] / sac[0]:.2f}x**"
        secs = [_secs_cell(_median_of(runs.get(lib, {}), "train_s")) for lib in libs]
        lines.append(f"| {env} | {LEARNING[env].target:g} | "
                     f"{' | '.join(_steps_cell(s) for s in steps)} | {ratio} | "
                     f"{' | '.join(secs)} | {_ms_per_step(runs[job])} |")
    return "" if len(lines) == 2 else "\n".join(lines)


def _final_table(store: dict[str, Any], tasks: dict[str, str], job: str, label: str) -> str:
    libs = (job, "kinema-sac", "sb3-sac")
    lines = [f"| env | env steps | {label} return | Kinema SAC return | SB3 SAC return | {label} "
             f"returns per evaluation (seed: steps return) | {label} train CPU s | Kinema SAC "
             f"train CPU s | SB3 SAC train CPU s | {label} ms per env step (wall / CPU) |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for name, env in tasks.items():
        runs = store.get(name, {})
        if not runs.get(job):
            continue
        cells = [_final_cell(runs.get(lib, {})) for lib in libs]
        curve = "; ".join(f"{seed}: " + ", ".join(f"{e[0] // 1000}k {e[1]:.0f}" for e in r["evals"])
                          for seed, r in runs[job].items())
        cpu = [_secs_cell(_median_of(runs.get(lib, {}), "train_cpu_s")) for lib in libs]
        steps = next(iter(runs[job].values()))["steps"]
        lines.append(f"| {env} | {steps:,} | {' | '.join(cells)} | {curve} | {' | '.join(cpu)} | "
                     f"{_ms_per_step(runs[job])} |")
    return "" if len(lines) == 2 else "\n".join(lines)


def _final_cell(runs: dict[str, Any]) -> str:
    returns = [r["return"] for r in runs.values() if "error" not in r]
    if not returns:
        return "—"
    return f"{statistics.median(returns):,.0f} ({_seeds(len(returns))})"


def _ms_per_step(runs: dict[str, Any]) -> str:
    wall, cpu = (statistics.median(1e3 * r[k] / r["steps"] for r in runs.values())
                 for k in ("train_s", "train_cpu_s"))
    return f"{wall:.0f} / {cpu:.0f}"


def _steps_cell(s: tuple[float, str, int] | None) -> str:
    return "—" if s is None else f"{s[0]:,.0f}{s[1]} ({_seeds(s[2])})"


def _seeds(n: int) -> str:
    return "1 seed" if n == 1 else f"{n} seeds"


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


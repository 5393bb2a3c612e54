"""The tables and the figure of `kinema bench rl` (benchmarks/rl.py), built from stored results."""

from __future__ import annotations

import importlib
import statistics
from pathlib import Path
from typing import Any

from benchmarks.markdown import write_section as write_markdown_section
from benchmarks.rl_tasks import LIBS, TASKS, Task

BEGIN, END = "<!-- kinema bench rl: begin -->", "<!-- kinema bench rl: end -->"


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _med(runs: dict[str, Any], seeds: list[str], key: str) -> tuple[float, str]:
    """Median of `key` over seeds, and a mark when some seed missed the target."""
    mark = "" if all(runs[s]["solved"] for s in seeds) else " (unsolved seeds)"
    return _median([runs[s][key] for s in seeds]), mark


def _pair_medians(ours: dict[str, Any], peer: dict[str, Any], seeds: list[str]):
    """((our steps, mark, peer steps, mark), (train s, peer's), (CPU s, peer's)) over seeds."""
    (ks, km), (ss, sm) = _med(ours, seeds, "steps"), _med(peer, seeds, "steps")
    times = [(_med(ours, seeds, key)[0], _med(peer, seeds, key)[0])
             for key in ("train_s", "train_cpu_s")]
    return (ks, km, ss, sm), times[0], times[1]


def report(store: dict[str, Any]) -> str:
    """The markdown table of medians and ratios over the stored seeds."""
    import stable_baselines3

    lines = [
        "| task | target | seeds | Kinema steps | SB3 steps | steps ratio | Kinema train s "
        "| SB3 train s | time ratio | Kinema CPU s | SB3 CPU s | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    speed = []
    for name, task in TASKS.items():
        runs = store.get(name, {})
        if task.final:
            continue
        if task.target is None:
            for lib in LIBS:
                rates = [r["steps_per_s"] for r in runs.get(lib, {}).values()]
                cpu = [r["steps_per_cpu_s"] for r in runs.get(lib, {}).values()]
                if rates:
                    speed.append(f"{name} ({lib}): {_median(rates):.1f} train steps per wall "
                                 f"second, {_median(cpu):.1f} per CPU second (median of "
                                 f"{len(rates)})")
            continue
        ours, peer = runs.get("kinema", {}), runs.get("sb3", {})
        seeds = sorted(set(ours) & set(peer), key=int)
        if not seeds:
            continue

        (ks, km, ss, sm), (kt, st), (kc, sc) = _pair_medians(ours, peer, seeds)
        lines.append(f"| {name} | {task.target:g} | {len(seeds)} | {ks:,.0f}{km} | {ss:,.0f}{sm} "
                     f"| {ks / ss:.2f}x | {kt:.1f} | {st:.1f} | **{kt / st:.2f}x** | {kc:.1f} "
                     f"| {sc:.1f} | **{kc / sc:.2f}x** |")
    text = "\n".join(lines)
    if speed:
        text += "\n\n" + "\n".join(f"- {s}" for s in speed)
    for extra in (sbx_report(store), final_report(store)):
        if extra:
            text += "\n\n" + extra
    machines = sorted({r.get("machine", "?") for t in store.values() for lib in t.values()
                       for r in lib.values()})
    peers = f"Stable-Baselines3 {stable_baselines3.__version__}"
    if any(TASKS[n].sb3_package == "sb3_contrib" for n in store if n in TASKS):
        peers += f", sb3-contrib {importlib.import_module('sb3_contrib').__version__}"
    text += f"\n\n{peers}; machine: {'; '.join(machines)}."
    return text


def sbx_report(store: dict[str, Any]) -> str:
    """The time-to-target rows beside SBX (SB3's algorithms in JAX, its own venv): SBX's steps
    and seconds, and Kinema's time over SBX's, on the seeds both ran."""
    lines = ["| task | target | seeds | Kinema steps | SBX steps | Kinema train s | SBX train s "
             "| time / SBX | Kinema CPU s | SBX CPU s | CPU / SBX |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, task in TASKS.items():
        ours, peer = store.get(name, {}).get("kinema", {}), store.get(name, {}).get("sbx", {})
        seeds = sorted(set(ours) & set(peer), key=int)
        if task.target is None or not seeds:
            continue
        (ks, km, ss, sm), (kt, st), (kc, sc) = _pair_medians(ours, peer, seeds)
        lines.append(f"| {name} | {task.target:g} | {len(seeds)} | {ks:,.0f}{km} | {ss:,.0f}{sm} "
                     f"| {kt:.1f} | {st:.1f} | **{kt / st:.2f}x** | {kc:.1f} | {sc:.1f} "
                     f"| **{kc / sc:.2f}x** |")
    if len(lines) == 2:
        return ""
    return ("Beside SBX (benchmarks/sbx_peer.py: its own venv, the same RL-Zoo settings as the "
            "SB3 column, JAX's compile time counted as train time):\n\n" + "\n".join(lines))


def _spread(xs: list[float]) -> str:
    return f"{_median(xs):,.0f} ({min(xs):,.0f} to {max(xs):,.0f})" if len(xs) > 1 \
        else f"{xs[0]:,.0f}"


def _final_row(name: str, task: Task, runs: dict[str, Any], peers: list[str]) -> list[str] | None:
    libs = [lib for lib in LIBS if runs.get(lib)]
    if "kinema" not in libs or len(libs) < 2:
        return None
    seeds = sorted(set.intersection(*(set(runs[lib]) for lib in libs)), key=int)
    if not seeds:
        return None
    med = {(lib, key): _median([runs[lib][s][key] for s in seeds])
           for lib in libs for key in ("train_s", "train_cpu_s")}
    row = [name, f"{task.steps:,}", str(len(seeds))]
    row += [_spread([runs[lib][s]["return"] for s in seeds]) if lib in libs else "—"
            for lib in ["kinema", *peers]]
    row += [f"{med[lib, 'train_s']:.1f}" if lib in libs else "—" for lib in ["kinema", *peers]]
    for key in ("train_s", "train_cpu_s"):
        row += [f"**{med['kinema', key] / med[p, key]:.2f}x**" if p in libs else "—"
                for p in peers]
    return row


def final_report(store: dict[str, Any]) -> str:
    """The fixed-budget rows: final deterministic return, median (range) over the seeds every
    library ran, and train seconds with Kinema's ratio to each peer."""
    finals = {name: task for name, task in TASKS.items() if task.final}
    libs = [lib for lib in LIBS if lib != "kinema"
            and any(store.get(name, {}).get(lib) for name in finals)]  # the peers that ran
    peers = [LABELS[lib] for lib in libs]
    head = ["task", "budget", "seeds", "Kinema return", *(f"{p} return" for p in peers),
            "Kinema train s", *(f"{p} train s" for p in peers),
            *(f"time / {p}" for p in peers), *(f"CPU / {p}" for p in peers)]
    rows = [row for name, task in finals.items()
            if (row := _final_row(name, task, store.get(name, {}), libs)) is not None]
    if not rows:
        return ""
    table = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    table += ["| " + " | ".join(row) + " |" for row in rows]
    return ("Fixed budgets (issue 17): the deterministic evaluation return (10 episodes) after "
            "the budget, median (range) over seeds; both sides at RL-Zoo's settings for the "
            "robot (Kinema: its presets, agents/model_free/robot_presets.py).\n\n"
            + "\n".join(table))


FIGURES = Path("benchmarks/results/figures")
FIGURE = "rl-time-to-target.png"
FIGURE_SIZE = (10.0, 6.0)
"""Inches at analysis/plot.py's DPI: a PNG of 1000 x 600 pixels."""
LABELS = {"kinema": "Kinema", "sb3": "SB3", "sbx": "SBX"}


def figure(store: dict[str, Any], folder: Path = FIGURES) -> Path:
    """The time-to-target table as a picture, folder/rl-time-to-target.png: per task, the
    median train seconds to the target of each library, and each seed as a point."""
    from analysis.plot import bars

    panels = []
    for name, task in TASKS.items():
        runs = store.get(name, {})
        libs = [lib for lib in LIBS if runs.get(lib)]  # SBX where it ran
        seeds = sorted(set.intersection(*(set(runs[lib]) for lib in libs)), key=int) \
            if {"kinema", "sb3"} <= set(libs) else []
        if task.target is None or not seeds:  # speed and fixed-budget tasks: tables only
            continue
        panels.append((f"{name} (target {task.target:g}, {len(seeds)} seeds)",
                       [(LABELS.get(lib, lib), [runs[lib][s]["train_s"] for s in seeds],
                         [bool(runs[lib][s]["solved"]) for s in seeds]) for lib in libs]))
    return bars(panels, Path(folder) / FIGURE, size=FIGURE_SIZE, ylabel="train seconds",
                title="Train seconds to the target return: median bar, a point per seed "
                      "(hollow: missed the target)")


TITLE = 'Model-free RL beside Stable-Baselines3 (issue 4)'


def write_section(path: Path, body: str) -> None:
    """Replace this benchmark's section of `path` (and nothing else); add it if absent."""
    write_markdown_section(path, BEGIN, END, TITLE, body)

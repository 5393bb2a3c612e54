"""`kinema bench rl`: Kinema's model-free agents beside Stable-Baselines3, same machine, same run.

    kinema bench rl [--tasks sac-pendulum,td3-pendulum] [--seeds 0,1,2] [--libs kinema,sb3]

Every task trains with each library and seed until the shared evaluation protocol
(agents.runs.evaluation.evaluate: 10 deterministic episodes, seeds 10000..10009), run every
`eval_every` env steps, reaches the target, or the budget runs out. Both libraries evaluate at
the same points, after the updates of all env steps so far (Kinema: at an iteration boundary;
SB3: at the start of a rollout), and evaluation time is left out of train seconds. Kinema trains
from its presets (what `kinema train ALGO --env ENV` uses), SB3 from RL-Zoo's hyperparameters
(SB3's defaults where the Zoo has no entry); algorithms SB3 keeps in sb3-contrib (TRPO) come
from there (`Task.sb3_package`). One torch thread for both.

Results are kept per (task, library, seed) in a JSON file, so subsets can run in turns; the
report is built from all stored results, and written into BENCHMARKS.md's section only when
asked (`--markdown BENCHMARKS.md`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sim
from agents.registry import algorithm
from agents.runs.evaluation import evaluate
from agents.runs.train import TrainConfig, train
from benchmarks import sbx_peer
from benchmarks.markdown import machine
from benchmarks.markdown import write_section as write_markdown_section

LIBS = ("kinema", "sb3", "sbx")
"""sbx: SBX (Stable-Baselines in JAX) in its own venv (benchmarks/sbx_peer.py), on the tasks of
its table."""
RESULTS = Path("benchmarks/results/rl.json")
BEGIN, END = "<!-- kinema bench rl: begin -->", "<!-- kinema bench rl: end -->"
SPEED_STEPS = (1_000, 3_000)
"""Speed tasks: random steps before learning, and the step at which the rate is read."""


@dataclass(frozen=True)
class Task:
    algo: str
    env: str
    target: float | None
    """None: a speed task (train steps/s over SPEED_STEPS), not a time-to-target task."""
    budget: int | None
    """Env steps; None: the algorithm's own default budget for the env (its registration)."""
    eval_every: int
    sb3_algo: str
    sb3_kwargs: dict[str, Any] = field(default_factory=dict)
    sb3_n_envs: int = 1
    sb3_source: str = "RL-Zoo"
    sb3_package: str = "stable_baselines3"
    """The module that holds sb3_algo: stable_baselines3, or sb3_contrib (TRPO)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Kinema config fields set over the preset (a variant of a task: prioritized replay)."""
    final: bool = False
    """A fixed-budget task (target None): the deterministic evaluation return after `budget`
    env steps, not the steps to a target."""
    sb3_normalize: bool = False
    """SB3 trains in VecNormalize (observations and rewards), as RL-Zoo's `normalize: true`;
    its evaluation normalizes observations with the training statistics."""

    @property
    def speed(self) -> bool:
        """A speed task: train steps per second, no evaluation return."""
        return self.target is None and not self.final

    @property
    def steps(self) -> int:
        return self.budget or algorithm(self.algo).default_steps(self.env)


def _linear(start: float):
    return lambda progress_remaining: progress_remaining * start


def _zoo_ppo(n_steps: int, batch_size: int, gamma: float, learning_rate: float, ent_coef: float,
             clip_range: float, n_epochs: int, gae_lambda: float, max_grad_norm: float,
             vf_coef: float, zoo_net: bool = True) -> dict[str, Any]:
    """An RL-Zoo ppo.yml MuJoCo entry as SB3 keyword arguments (its policy_kwargs where it has
    them: log_std_init -2, ortho_init False, ReLU, pi = vf = [256, 256])."""
    kwargs: dict[str, Any] = dict(
        n_steps=n_steps, batch_size=batch_size, gamma=gamma, ent_coef=ent_coef,
        learning_rate=learning_rate, clip_range=clip_range, n_epochs=n_epochs,
        gae_lambda=gae_lambda, max_grad_norm=max_grad_norm, vf_coef=vf_coef)
    if zoo_net:
        kwargs["policy_kwargs"] = dict(log_std_init=-2, ortho_init=False,
                                       activation_fn=torch.nn.ReLU,
                                       net_arch=dict(pi=[256, 256], vf=[256, 256]))
    return kwargs


LOCOMOTION_PPO_STEPS, LOCOMOTION_OFF_POLICY_STEPS = 100_000, 30_000
"""Issue 17's budgets: PPO at 100k env steps, SAC and TD3 at 30k."""


_ZOO_PENDULUM_TD3 = dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, noise_std=0.1,
                         train_freq=1, gradient_steps=1, learning_rate=1e-3,
                         policy_kwargs=dict(net_arch=[400, 300]))
TASKS: dict[str, Task] = {
    "ppo-cartpole": Task("ppo", "cartpole", 475, None, 1024, "PPO", dict(
        n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=_linear(1e-3), clip_range=_linear(0.2)), sb3_n_envs=8),
    "sac-pendulum": Task("sac", "pendulum", -200, None, 1000, "SAC", dict(learning_rate=1e-3)),
    "td3-pendulum": Task("td3", "pendulum", -200, None, 1000, "TD3", _ZOO_PENDULUM_TD3),
    "ddpg-pendulum": Task("ddpg", "pendulum", -200, None, 1000, "DDPG", _ZOO_PENDULUM_TD3),
    "sac-inverted-pendulum": Task("sac", "inverted-pendulum", 1000, None, 1000, "SAC", {},
                                  sb3_source="SB3 defaults (no RL-Zoo entry)"),
    "dqn-cartpole": Task("dqn", "cartpole", 475, None, 1024, "DQN", dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
        gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
        exploration_fraction=0.16, exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]))),
    # PER-DQN (Schaul et al. 2016): dqn-cartpole with prioritized replay. SB3 has no PER, so
    # its column is SB3's uniform DQN; PER's own gain is this Kinema column beside dqn-cartpole's.
    "dqn-per-cartpole": Task("dqn", "cartpole", 475, None, 1024, "DQN", dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
        gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
        exploration_fraction=0.16, exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256])), overrides={"prioritized": True}),
    "a2c-cartpole": Task("a2c", "cartpole", 475, None, 2000, "A2C", dict(ent_coef=0.0),
                         sb3_n_envs=8),
    "sac-halfcheetah-speed": Task("sac", "halfcheetah", None, SPEED_STEPS[1], SPEED_STEPS[1],
                                  "SAC", dict(learning_starts=SPEED_STEPS[0]),
                                  sb3_source="RL-Zoo (MuJoCo defaults: SB3's SAC)"),
    "trpo-pendulum": Task("trpo", "pendulum", -200, None, 2048, "TRPO", dict(
        n_steps=1024, gamma=0.9, n_critic_updates=15, use_sde=True, sde_sample_freq=4),
        sb3_n_envs=2, sb3_package="sb3_contrib"),
    "trpo-cartpole": Task("trpo", "cartpole", 475, None, 1024, "TRPO", dict(
        n_steps=512, batch_size=512, cg_damping=1e-3, gae_lambda=0.98, gamma=0.99,
        learning_rate=1e-3, n_critic_updates=20), sb3_n_envs=2, sb3_package="sb3_contrib"),
    # Locomotion at fixed budgets (issue 17): both sides at RL-Zoo's settings for the robot.
    "ppo-halfcheetah-100k": Task("ppo", "halfcheetah", None, LOCOMOTION_PPO_STEPS, 25_000, "PPO",
                                 _zoo_ppo(512, 64, 0.98, 2.0633e-5, 4.01762e-4, 0.1, 20, 0.92,
                                          0.8, 0.58096), final=True, sb3_normalize=True,
                                 sb3_source="RL-Zoo ppo.yml HalfCheetah-v4"),
    "ppo-hopper-100k": Task("ppo", "hopper", None, LOCOMOTION_PPO_STEPS, 25_000, "PPO",
                            _zoo_ppo(512, 32, 0.999, 9.80828e-5, 2.29519e-3, 0.2, 5, 0.99, 0.7,
                                     0.835671), final=True, sb3_normalize=True,
                            sb3_source="RL-Zoo ppo.yml Hopper-v4"),
    "ppo-walker2d-100k": Task("ppo", "walker2d", None, LOCOMOTION_PPO_STEPS, 25_000, "PPO",
                              _zoo_ppo(512, 32, 0.99, 5.05041e-5, 5.85045e-4, 0.1, 20, 0.95, 1.0,
                                       0.871923, zoo_net=False), final=True, sb3_normalize=True,
                              sb3_source="RL-Zoo ppo.yml Walker2d-v4"),
    **{f"{algo}-{env}-30k": Task(algo, env, None, LOCOMOTION_OFF_POLICY_STEPS, 10_000,
                                 algo.upper(), dict(learning_starts=10_000) | (
                                     dict(noise_std=0.1) if algo == "td3" else {}),
                                 final=True, sb3_source=f"RL-Zoo {algo}.yml MuJoCo defaults")
       for algo in ("sac", "td3") for env in ("halfcheetah", "hopper")},
}


# -- one run ------------------------------------------------------------------------------------
class _CpuClock:
    """CPU seconds of this process outside evaluation, at each evaluation.

    Wall seconds are what the issue asks for, but the machine's cores are shared: CPU seconds
    (time.process_time) are what each library itself spent, whatever else ran.
    """

    def __init__(self) -> None:
        self.start, self.eval_cpu = time.process_time(), 0.0
        self.marks: list[float] = []

    def wrap(self, evaluate_fn):
        def timed(*args, **kwargs):
            c0 = time.process_time()
            self.marks.append(c0 - self.start - self.eval_cpu)
            try:
                return evaluate_fn(*args, **kwargs)
            finally:
                self.eval_cpu += time.process_time() - c0

        return timed


def run_kinema(task: Task, seed: int, root: Path) -> dict[str, Any]:
    algo = algorithm(task.algo)
    cfg = dataclasses.replace(algo.preset(task.env), **task.overrides)
    if task.speed:  # the preset's networks, the shared warm-up
        cfg = dataclasses.replace(cfg, learning_starts=SPEED_STEPS[0])
    clock = _CpuClock()
    result = train(TrainConfig(algo=task.algo, env=task.env, steps=task.steps, seed=seed,
                               eval_every=SPEED_STEPS[0] if task.speed else task.eval_every,
                               target_return=task.target,
                               eval_episodes=1 if task.speed else 10,
                               runs_dir=str(root)), cfg, evaluator=clock.wrap(evaluate))
    rows = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["return_mean"], r["train_s"], cpu)
             for r, cpu in zip([r for r in rows if r["kind"] == "eval"], clock.marks, strict=True)]
    return _summary(task, evals)


def _sb3_callback(task: Task) -> Any:
    """SB3 callback: our evaluation at rollout starts (all updates so far done), train time
    without it, stop at the target."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Protocol(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.evals: list[tuple[int, float, float, float]] = []
            self.eval_s, self.done = 0.0, False
            self.next_eval = SPEED_STEPS[0] if task.speed else task.eval_every
            self.policy = lambda o: self.model.predict(o, deterministic=True)[0]
            self.t0 = time.perf_counter()
            self.cpu = _CpuClock()

        def point(self) -> None:
            steps = self.model.num_timesteps
            train_s = time.perf_counter() - self.t0 - self.eval_s
            e0 = time.perf_counter()
            ret = float("nan")
            if not task.speed:
                ret = float(self.cpu.wrap(evaluate)(self.policy, task.env).mean())
            else:
                self.cpu.wrap(lambda: None)()
            self.eval_s += time.perf_counter() - e0
            self.evals.append((steps, ret, train_s, self.cpu.marks[-1]))
            while self.next_eval <= steps:
                self.next_eval += task.eval_every
            self.done = task.target is not None and ret >= task.target

        def _on_rollout_start(self) -> None:
            if self.model.num_timesteps >= self.next_eval:
                self.point()

        def _on_step(self) -> bool:
            return not self.done

    return Protocol()


def run_sb3(task: Task, seed: int) -> dict[str, Any]:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    kwargs = dict(task.sb3_kwargs)
    if "noise_std" in kwargs:
        n = int(np.prod(sim.spec(task.env).info.action_shape))
        sigma = kwargs.pop("noise_std") * np.ones(n)
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n), sigma)
    algo_cls = getattr(importlib.import_module(task.sb3_package), task.sb3_algo)
    cpu = _CpuClock()  # from before the model is built, as for Kinema (train() builds it)
    venv = make_vec_env(lambda: sim.make(task.env), n_envs=task.sb3_n_envs, seed=seed)
    if task.sb3_normalize:
        from stable_baselines3.common.vec_env import VecNormalize

        venv = norm = VecNormalize(venv, gamma=kwargs.get("gamma", 0.99))
    model = algo_cls("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs)
    callback = _sb3_callback(task)
    callback.cpu, callback.t0 = cpu, time.perf_counter()
    if task.sb3_normalize:  # evaluate on raw observations, normalized as in training
        callback.policy = lambda o: model.predict(norm.normalize_obs(o), deterministic=True)[0]
    model.learn(total_timesteps=task.steps, callback=callback)
    if not callback.done and (not callback.evals or callback.evals[-1][0] < model.num_timesteps):
        callback.point()  # the budget is spent: a last evaluation, as Kinema's loop makes
    return _summary(task, callback.evals)


def _summary(task: Task, evals: list[tuple[int, float, float, float]]) -> dict[str, Any]:
    """evals: (env steps, mean return, train wall s, train CPU s) at each evaluation."""
    if task.final:
        steps, ret, train_s, cpu_s = evals[-1]
        return {"steps": steps, "return": ret, "train_s": train_s, "train_cpu_s": cpu_s,
                "evals": evals}
    if task.target is None:
        (s0, _, t0, c0), (s1, _, t1, c1) = evals[0], evals[-1]
        return {"steps_per_s": (s1 - s0) / max(t1 - t0, 1e-9),
                "steps_per_cpu_s": (s1 - s0) / max(c1 - c0, 1e-9), "evals": evals}
    hit = next((e for e in evals if e[1] >= task.target), None)
    last = hit or evals[-1]
    return {"solved": hit is not None, "steps": last[0], "train_s": last[2],
            "train_cpu_s": last[3], "return": last[1], "evals": evals}


# -- many runs, results, report -----------------------------------------------------------------
def run(tasks: list[str], seeds: list[int], libs: list[str], results: Path = RESULTS,
        markdown: Path | None = None, log=print) -> dict[str, Any]:
    """Run every (task, seed, library) asked for and store the results; rewrite this
    benchmark's section of `markdown` when given."""
    unknown = [t for t in tasks if t not in TASKS] + [lib for lib in libs if lib not in LIBS]
    if unknown:
        raise ValueError(f"unknown tasks or libraries {unknown}; tasks: {', '.join(TASKS)}; "
                         f"libraries: {', '.join(LIBS)}")
    torch.set_num_threads(1)
    # One-time imports stay out of the first run's clock, as SB3's import does in run_sb3.
    importlib.import_module("torch.utils.tensorboard")
    # torch imports torch._dynamo when the first optimizer is built (about a CPU second): the
    # first run of the first library would pay it, whichever library that is.
    importlib.import_module("torch._dynamo")

    store = json.loads(results.read_text()) if results.exists() else {}
    for name in tasks:
        task = TASKS[name]
        if task.env not in sim.names():
            log(f"{name}: env {task.env!r} is not registered; skipped")
            continue
        for seed in seeds:
            for lib in libs:  # interleaved, so load on the machine hits both alike
                if lib == "sbx" and name not in sbx_peer.SBX_TASKS:
                    log(f"{name}: SBX has no row for it; skipped")
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    out = (run_kinema(task, seed, Path(tmp)) if lib == "kinema"
                           else run_sb3(task, seed) if lib == "sb3"
                           else _summary(task, [tuple(e) for e in
                                                sbx_peer.run_sbx(name, task, seed)["evals"]]))
                out |= {"machine": _machine(), "date": datetime.now().isoformat(timespec="seconds")}
                store.setdefault(name, {}).setdefault(lib, {})[str(seed)] = out
                log(json.dumps({"task": name, "lib": lib, "seed": seed,
                                **{k: v for k, v in out.items() if k != "evals"}}))
                results.parent.mkdir(parents=True, exist_ok=True)
                results.write_text(json.dumps(store, indent=1) + "\n")
    if markdown is not None:
        write_section(markdown, report(store))
    return store


def _machine() -> str:
    return machine(f"torch {torch.__version__}", f"{torch.get_num_threads()} thread")


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _med(runs: dict[str, Any], seeds: list[str], key: str) -> tuple[float, str]:
    """Median of `key` over seeds, and a mark when some seed missed the target."""
    mark = "" if all(runs[s]["solved"] for s in seeds) else " (unsolved seeds)"
    return _median([runs[s][key] for s in seeds]), mark


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

        (ks, km), (ss, sm) = _med(ours, seeds, "steps"), _med(peer, seeds, "steps")
        (kt, _), (st, _) = _med(ours, seeds, "train_s"), _med(peer, seeds, "train_s")
        (kc, _), (sc, _) = _med(ours, seeds, "train_cpu_s"), _med(peer, seeds, "train_cpu_s")
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
        (ks, km), (ss, sm) = _med(ours, seeds, "steps"), _med(peer, seeds, "steps")
        (kt, _), (st, _) = _med(ours, seeds, "train_s"), _med(peer, seeds, "train_s")
        (kc, _), (sc, _) = _med(ours, seeds, "train_cpu_s"), _med(peer, seeds, "train_cpu_s")
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


def _final_row(name: str, task: Task, runs: dict[str, Any]) -> list[str] | None:
    libs = [lib for lib in LIBS if runs.get(lib)]
    if "kinema" not in libs or len(libs) < 2:
        return None
    seeds = sorted(set.intersection(*(set(runs[lib]) for lib in libs)), key=int)
    if not seeds:
        return None
    med = {(lib, key): _median([runs[lib][s][key] for s in seeds])
           for lib in libs for key in ("train_s", "train_cpu_s")}
    peers = [lib for lib in LIBS if lib != "kinema"]
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
    peers = [LABELS[lib] for lib in LIBS if lib != "kinema"]
    head = ["task", "budget", "seeds", "Kinema return", *(f"{p} return" for p in peers),
            "Kinema train s", *(f"{p} train s" for p in peers),
            *(f"time / {p}" for p in peers), *(f"CPU / {p}" for p in peers)]
    rows = [row for name, task in TASKS.items() if task.final
            and (row := _final_row(name, task, store.get(name, {}))) is not None]
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

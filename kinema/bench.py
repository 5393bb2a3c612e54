"""`kinema bench rl|mbrl|sim|deploy|sweep|exploration|irl|pretrain|latent|dyna-q`:
side-by-side benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kinema.args import positive_int
from kinema.output import err_console


def add_parser(sub: Any) -> argparse.ArgumentParser:
    b = sub.add_parser("bench", help="side-by-side benchmarks against peers (benchmarks/)")
    b.add_argument("name", choices=("rl", "mbrl", "sim", "deploy", "sweep", "exploration",
                                     "irl", "pretrain", "latent", "dyna-q"),
                   help="rl: "
                   "SAC/TD3/DDPG/DQN/PPO/A2C beside Stable-Baselines3 (TRPO: sb3-contrib), time "
                   "and steps to a target "
                   "return; mbrl: PETS beside SAC (Kinema, SB3) and mbrl-lib's PETS, and the "
                   "exported planner's cost per step (tasks: pendulum, inverted-pendulum, "
                   "cartpole-swingup, planning; mbpo-pendulum, mbpo-inverted-pendulum: "
                   "MBPO beside Kinema and SB3 SAC in one run; mbpo-hopper-30k, "
                   "mbpo-halfcheetah-30k: MBPO's return at 30k env steps beside them; "
                   "mve-pendulum: SAC with model-based value expansion beside them); sim: env "
                   "step rates, raw backends vs "
                   "sim.make, and vector-env scaling; deploy: inference (onnxruntime vs "
                   "torch), runner step, 500 Hz jitter, ROS 2 round trip; sweep: PPO runs "
                   "through kinema sweep (Ray Tune) vs the same runs in a row; exploration: "
                   "PPO with and without RND on mountaincar, steps to the goal; irl: GAIL and AIRL "
                   "beside imitation (its own venv), expert-normalized scores (tasks: cartpole, "
                   "pendulum, inverted-pendulum), and tabular maxent-irl beside its MCE-IRL "
                   "(maxent-gridworld-4x4, maxent-gridworld-slippery, maxent-frozenlake); "
                   "--libs kinema, imitation; pretrain: SAC/TD3 --pretrain on "
                   "demonstrations beside SAC from scratch and BC alone (pendulum); latent: "
                   "tdmpc (TD-MPC2) beside SAC, returns at env-step budgets, and the latent "
                   "planner's cost in torch and onnxruntime (tasks: cartpole-swingup, "
                   "cheetah-run, walker-walk, planning); dyna-q: Dyna-Q beside Q-learning, "
                   "real steps to the optimal policy (gridworld-4x4, gridworld-slippery)")
    b.add_argument("--tasks", help="comma-separated tasks (default: all; see benchmarks/rl.py)")
    b.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    b.add_argument("--libs", help="rl: kinema, sb3, sbx (default all; sbx builds its own "
                   "venv); mbrl: kinema, sb3, mbrl-lib (default all three)")
    b.add_argument("--trials", type=positive_int, default=8,
                   help="sweep: trials, seeds 0..N-1 (default 8)")
    b.add_argument("--steps", type=positive_int, default=100_000,
                   help="sweep: env steps per trial; exploration: per run (default 100000)")
    b.add_argument("--budgets", default="20000,50000", metavar="N,...",
                   help="latent: comma-separated env-step budgets at which returns are read "
                   "(default 20000,50000)")
    b.add_argument("--episodes", type=positive_int, default=10,
                   help="latent: evaluation episodes per point (default 10, the shared "
                   "protocol; fewer only for small runs)")
    b.add_argument("--results", type=Path, metavar="FILE.json",
                   help="JSON file of the results (default benchmarks/results/NAME.json; rl "
                   "merges into it)")
    b.add_argument("--markdown", type=Path, metavar="FILE",
                   help="also rewrite this benchmark's section of FILE (e.g. BENCHMARKS.md, "
                   "which is tracked); default: only the JSON and the report printed here")
    b.add_argument("--plot", type=Path, nargs="?", const=Path("benchmarks/results/figures"),
                   metavar="DIR", help="rl: also draw the time-to-target figure from the "
                   "results JSON, DIR/rl-time-to-target.png (default DIR: "
                   "benchmarks/results/figures)")
    b.add_argument("--no-run", action="store_true", help="rl: run nothing; report (and with "
                   "--plot draw) from the results JSON as stored")
    b.set_defaults(handler=main)
    return b


def main(a: argparse.Namespace) -> None:
    if a.plot is not None and a.name != "rl":
        raise ValueError(f"--plot draws only kinema bench rl's figure so far, not {a.name}'s")
    if a.no_run and a.name != "rl":
        raise ValueError(f"--no-run is for kinema bench rl only, not {a.name}")
    if a.name == "deploy":
        from benchmarks import deploy as deploy_bench

        result = deploy_bench.run(results=a.results or deploy_bench.RESULTS,
                                  markdown=a.markdown,
                                  log=lambda m: err_console.print(m, markup=False))
        print(deploy_bench.report(result))
        return
    if a.name == "sweep":
        from benchmarks import sweep as sweep_bench

        result = sweep_bench.run(trials=a.trials, steps=a.steps,
                                 results=a.results or sweep_bench.RESULTS, markdown=a.markdown,
                                 log=lambda m: err_console.print(m, markup=False))
        print(sweep_bench.report(result))
        return
    if a.name == "sim":
        from benchmarks import sim as sim_bench

        print(sim_bench.report(sim_bench.run(results=a.results or sim_bench.RESULTS,
                                             markdown=a.markdown)))
        return
    def names(text: str) -> list[str]:
        return [t.strip() for t in text.split(",") if t.strip()]

    seeds = names(a.seeds)
    if not all(s.lstrip("-").isdigit() for s in seeds):
        raise ValueError(f"--seeds {a.seeds!r} is not a comma-separated list of integers")
    if a.name in ("pretrain", "dyna-q"):  # fixed budgets: pretrain 2k and 5k env steps
        from benchmarks import dyna_q, pretrain

        bench = {"pretrain": pretrain, "dyna-q": dyna_q}[a.name]
        print(bench.report(bench.run(
            [int(s) for s in seeds], results=a.results or bench.RESULTS,
            markdown=a.markdown, log=lambda m: err_console.print(m, markup=False))))
        return
    if a.name == "exploration":
        from benchmarks import exploration

        print(exploration.report(exploration.run(
            [int(s) for s in seeds], steps=a.steps, results=a.results or exploration.RESULTS,
            markdown=a.markdown, log=lambda m: err_console.print(m, markup=False))))
        return
    if a.name == "irl":
        from benchmarks import irl

        print(irl.report(irl.run(
            names(a.tasks) if a.tasks else list(irl.ALL_TASKS), [int(s) for s in seeds],
            names(a.libs or ",".join(irl.LIBS)), results=a.results or irl.RESULTS,
            markdown=a.markdown, log=lambda m: err_console.print(m, markup=False))))
        return
    if a.name == "mbrl":
        from benchmarks import mbrl, mbrl_report

        store = mbrl.run(names(a.tasks) if a.tasks else [*mbrl.LEARNING, "planning"],
                         [int(s) for s in seeds], names(a.libs or ",".join(mbrl.LIBS)),
                         results=a.results or mbrl.RESULTS, markdown=a.markdown,
                         log=lambda m: err_console.print(m, markup=False))
        print(mbrl_report.report(store))
        return
    (_latent if a.name == "latent" else _rl)(a, names, seeds)


def _latent(a: argparse.Namespace, names: Any, seeds: list[str]) -> None:
    from benchmarks import latent

    budgets = names(a.budgets)
    if not budgets or not all(b.isdigit() for b in budgets):
        raise ValueError(f"--budgets {a.budgets!r} is not a comma-separated list of positive "
                         "integers (env steps), e.g. 20000,50000")
    print(latent.report(latent.run(
        names(a.tasks) if a.tasks else [*latent.LEARNING, "planning"], [int(s) for s in seeds],
        [int(b) for b in budgets], results=a.results or latent.RESULTS, markdown=a.markdown,
        log=lambda m: err_console.print(m, markup=False), episodes=a.episodes)))


def _rl(a: argparse.Namespace, names: Any, seeds: list[str]) -> None:
    import json

    from benchmarks import rl

    results = a.results or rl.RESULTS
    if a.no_run:
        if not results.is_file():
            raise ValueError(f"--no-run: {results} does not exist (run kinema bench rl first)")
        if a.markdown is not None:
            rl.write_section(a.markdown, rl.report(json.loads(results.read_text())))
    else:
        rl.run(names(a.tasks) if a.tasks else list(rl.TASKS), [int(s) for s in seeds],
               names(a.libs or ",".join(rl.LIBS)), results=results, markdown=a.markdown)
    store = json.loads(results.read_text())
    print(rl.report(store))
    if a.plot is not None:
        err_console.print(f"figure: {rl.figure(store, a.plot)}", markup=False, highlight=False)

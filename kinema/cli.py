"""`kinema`: list envs, train, evaluate, export and run policies.

Thin by design: each subcommand parses its options and calls one function of sim, agents or
deploy. Errors a person can fix print one sentence and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from kinema.output import emit, emit_json, err_console, training_progress


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: 'kinema train: error: argument --steps: ...'."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an integer; expected a positive integer"
        ) from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not positive; expected a positive integer")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number; expected a number >= 0"
        ) from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{v} is negative; expected a number >= 0")
    return v


def _parser() -> _Parser:
    p = _Parser(prog="kinema", description="Kinema: simulate, train, export and run robot "
                "controllers.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser,
                           metavar="{envs,train,eval,collect,export,run,ros,ros-sim,bench}")

    e = sub.add_parser("envs", help="list registered environments")
    e.add_argument("--tag", help="only envs with this tag (e.g. continuous, cart-pole)")
    e.add_argument("--json", action="store_true", help="print a JSON list instead of a table")

    t = sub.add_parser("train", help="train an agent; ALGO options follow (kinema train ALGO -h)",
                       add_help=False,
                       usage="kinema train [ALGO] --env ENV [options] [ALGO options]"
                       " | kinema train --resume RUN [options]")
    t.add_argument("--env", help="environment name (see kinema envs)")
    t.add_argument("--steps", type=_positive_int, help="env-step budget (default: preset)")
    t.add_argument("--seed", type=int, help="seed of networks, sampling and envs (default 0)")
    t.add_argument("--device", help="auto (CUDA if present), cpu, cuda or cuda:N (default auto)")
    t.add_argument("--resume", type=Path, metavar="RUN",
                   help="continue RUN from its LATEST checkpoint")
    t.add_argument("--eval-every", type=_positive_int, metavar="N",
                   help="evaluate every N env steps (default: steps/20)")
    t.add_argument("--eval-episodes", type=_positive_int, metavar="K",
                   help="deterministic evaluation episodes, seeds 10000.. (default 10)")
    t.add_argument("--target-return", type=float, metavar="R",
                   help="stop at the first evaluation whose mean return reaches R")
    t.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="checkpoint every N env steps (default: at evaluations and the end)")
    t.add_argument("--threads", type=_positive_int, help="torch CPU threads (default 1)")
    t.add_argument("--runs-dir", help="folder of run directories (default runs)")
    t.add_argument("--json", action="store_true", help="print the result as one JSON object")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("-h", "--help", action="store_true", help="show this help (and ALGO's options)")

    v = sub.add_parser("eval", help="evaluate a run's latest checkpoint")
    v.add_argument("run", type=Path, metavar="RUN", help="run directory")
    v.add_argument("--episodes", type=_positive_int, default=10,
                   help="deterministic episodes, seeds 10000.. (default 10)")
    v.add_argument("--json", action="store_true", help="print the result as one JSON object")
    v.add_argument("--video", type=Path, metavar="FILE.mp4",
                   help="also record one deterministic episode (seed 10000) to an mp4")

    c = sub.add_parser("collect", help="record expert demonstrations into a verified dataset",
                       description="Record episodes into DIR/data (Minari's HDF5 layout) with a "
                       "SHA-256 manifest. Teleop keys: Enter start, S stop and keep, Backspace "
                       "discard, Esc quit; action dims on Left/Right, Down/Up, J/L, K/I, F/H, G/T, "
                       "Z/X, C/V; digits pick discrete actions (see agents/teleop.py).")
    c.add_argument("--env", required=True, help="environment name (see kinema envs)")
    c.add_argument("--expert", required=True, metavar="EXPERT",
                   help="scripted, mpc (or mpc:horizon=H,samples=K,iterations=I), teleop, or a "
                   "trained run folder")
    c.add_argument("--episodes", type=_positive_int, required=True, help="episodes to keep")
    c.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset folder")
    c.add_argument("--seed", type=int, default=0,
                   help="episode i is reset with seed + i (default 0)")
    c.add_argument("--append", action="store_true", help="add episodes to an existing dataset")
    c.add_argument("--json", action="store_true", help="print the result as one JSON object")

    x = sub.add_parser("export", help="export a run's policy to an ONNX bundle")
    x.add_argument("run", type=Path, metavar="RUN", help="run directory")
    x.add_argument("--out", type=Path, metavar="BUNDLE", help="bundle folder (default RUN/bundle)")
    x.add_argument("--json", action="store_true", help="print the contract summary as JSON")
    x.add_argument("--quantize", choices=("int8",),
                   help="ship an int8 (dynamic) graph; its error and speed go into the contract")
    x.add_argument("--quantize-bound", type=_nonneg_float, metavar="B",
                   help="refuse int8 above this error (default 0.02 of the action range; "
                   "discrete: 0.01 of actions changed)")
    x.add_argument("--joint-state-map", type=Path, metavar="FILE",
                   help="JSON list mapping sensor_msgs/JointState to the observation, for "
                   "kinema ros --input joint-state")

    r = sub.add_parser("run", help="run a bundle in the real-time runner against a simulator")
    r.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle folder from kinema export")
    r.add_argument("--env", help="simulated robot (default: the env in the bundle's contract)")
    r.add_argument("--rate", type=_nonneg_float, metavar="HZ",
                   help="control rate (default: the contract's; 0 = as fast as possible)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--episodes", type=_positive_int, help="stop after N episodes (default 1)")
    g.add_argument("--steps", type=_positive_int, help="stop after N control steps")
    r.add_argument("--seed", type=int, default=0, help="seed of the simulated robot (default 0)")
    r.add_argument("--realtime", type=int, nargs="?", const=50, metavar="PRIO",
                   help="run the loop under SCHED_FIFO (priority PRIO, default 50; Linux, "
                   "needs root or CAP_SYS_NICE)")
    r.add_argument("--json", action="store_true", help="print the report as one JSON object")

    b = sub.add_parser("bench", help="side-by-side benchmarks against peers (benchmarks/)")
    b.add_argument("name", choices=("rl", "sim", "deploy"), help="rl: SAC/TD3/DDPG/DQN/PPO "
                   "beside Stable-Baselines3, time and steps to a target return; sim: env step "
                   "rates, raw backends vs sim.make, and vector-env scaling; deploy: inference "
                   "(onnxruntime vs torch), runner step, 500 Hz jitter, ROS 2 round trip")
    b.add_argument("--tasks", help="comma-separated tasks (default: all; see benchmarks/rl.py)")
    b.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    b.add_argument("--libs", default="kinema,sb3", help="kinema, sb3 or both (default both)")
    b.add_argument("--results", type=Path, default=Path("benchmarks/results/rl.json"),
                   help="JSON file the results are merged into (default %(default)s)")
    b.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"),
                   help="report file whose section is rewritten (default %(default)s)")
    from kinema import cli_ros

    cli_ros.add_parsers(sub, _positive_int, _positive_float)
    return p


def _positive_float(text: str) -> float:
    v = _nonneg_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("0 is not positive; expected a number > 0")
    return v


# -- commands -------------------------------------------------------------------------------------
def cmd_envs(a: argparse.Namespace) -> None:
    import sim

    rows = []
    for name in sim.names(a.tag):
        s = sim.spec(name)
        info = s.info
        rows.append({"name": name, "backend": s.backend, "tags": list(s.tags),
                     "obs_shape": list(info.obs_shape),
                     "action_shape": list(info.action_shape) if not info.discrete else [],
                     "n_actions": info.n_actions, "dt": info.dt})
    if a.json:
        emit_json(rows)
        return
    from rich.table import Column, Table

    from kinema.output import console

    # A name never wraps or gets cut (it is typed back); narrow terminals fold the rest.
    table = Table(Column("name", no_wrap=True), *(Column(h, overflow="fold") for h in (
        "backend", "tags", "obs", "action", "rate Hz")))
    for r in rows:
        act = f"discrete({r['n_actions']})" if r["n_actions"] else str(tuple(r["action_shape"]))
        table.add_row(r["name"], r["backend"], ", ".join(r["tags"]), str(tuple(r["obs_shape"])),
                      act, f"{1 / r['dt']:g}")
    console.print(table)


_TRAIN_FIELDS = ("env", "steps", "seed", "device", "eval_every", "eval_episodes", "target_return",
                 "checkpoint_every", "threads", "runs_dir")


def cmd_train(a: argparse.Namespace, rest: list[str], parser: _Parser) -> None:
    import tyro

    from agents.registry import algorithm, check_fits, names
    from agents.runs import train as T

    train_parser = parser._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    if a.help:
        train_parser.print_help()
        if a.algo:
            print(f"\n{a.algo} options (defaults shown for --env {a.env or 'cartpole'}):")
            algo = algorithm(a.algo)
            tyro.cli(algo.config_cls, default=algo.preset(a.env or "cartpole"), args=["--help"],
                     prog=f"kinema train {a.algo}")
        else:
            print(f"\nalgorithms: {', '.join(names())}")
        return
    given = {k: getattr(a, k) for k in _TRAIN_FIELDS if getattr(a, k) is not None}
    if a.resume is not None:
        if a.algo is not None:
            given["algo"] = a.algo
        algo_over = _algo_overrides(a.resume, rest)
        total = given.get("steps")
        progress, update = training_progress(total or 0, enabled=not (a.no_progress or a.json))
        with progress:
            result = T.resume(a.resume, train_overrides=given, algo_overrides=algo_over,
                              on_progress=update)
    else:
        if a.algo is None or a.env is None:
            train_parser.error("ALGO and --env are required (or --resume RUN)")
        algo = algorithm(a.algo)
        import sim

        check_fits(algo, a.env, sim.spec(a.env).info)  # before the progress bar draws
        algo_cfg = parse_algo_options(algo.config_cls, algo.preset(a.env), rest,
                                      f"kinema train {a.algo}")
        cfg = T.TrainConfig(algo=a.algo, **given)
        steps = cfg.steps or algo.default_steps(cfg.env)
        progress, update = training_progress(steps, enabled=not (a.no_progress or a.json))
        with progress:
            result = T.train(cfg, algo_cfg, on_progress=update)
    _report_training(result, a.json)


def parse_algo_options(cls: type, default: Any, args: list[str], prog: str) -> Any:
    """The algorithm's config from its options (tyro), with tyro's error box made one line."""
    import contextlib
    import io

    import tyro

    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
            return tyro.cli(cls, default=default, args=args, prog=prog)
    except SystemExit:
        box = " │╭╮╰╯─┃━|+"
        lines = [ln.strip(box) for ln in buf.getvalue().splitlines()]
        lines = [ln for ln in lines if ln.strip("-= ") and "helptext" not in ln]
        raise ValueError(" ".join(" ".join(lines).split())) from None


def _algo_overrides(run: Path, rest: list[str]) -> dict[str, Any]:
    """Algorithm options given with --resume, parsed against the run's saved config."""
    if not rest:
        return {}
    from agents.registry import algorithm
    from agents.runs.config import config_from_dict
    from agents.runs.run import Run

    r = Run.open(run)
    algo = algorithm(r.config["train"]["algo"])
    saved = config_from_dict(algo.config_cls, r.config["algo_config"])
    asked = parse_algo_options(algo.config_cls, saved, rest, "kinema train --resume")
    return {k: v for k, v in dataclasses.asdict(asked).items()
            if v != getattr(saved, k)}


def _report_training(result: Any, as_json: bool) -> None:
    from agents.runs.run import Run

    evals = [r for r in Run.open(result.run).records() if r.get("kind") == "eval"]
    last = evals[-1] if evals else {}
    loop = result.loop
    emit({
        "run": str(result.run),
        "steps": loop.step,
        "train_s": round(loop.train_s, 2),
        "wall_s": round(loop.wall_s, 2),
        "steps_per_s": round(loop.step / max(loop.train_s, 1e-9), 1),
        "return_mean": last.get("return_mean"),
        "return_std": last.get("return_std"),
        "episodes": last.get("episodes"),
        "solved_at": loop.solved_at,
        # imitation runs: expert-normalized score and expert labels (agents/imitation_loops.py)
        **{k: last[k] for k in ("normalized_score", "labels") if k in last},
    }, as_json=as_json, title="training")


def cmd_eval(a: argparse.Namespace) -> None:
    from agents.runs.evaluation import evaluate
    from agents.runs.train import load_agent

    agent, run = load_agent(a.run)
    returns = evaluate(lambda o: agent.act(o, deterministic=True).cpu().numpy(), run.env,
                       a.episodes)
    out = {"run": str(run.path), "env": run.env, "return_mean": float(returns.mean()),
           "return_std": float(returns.std()), "episodes": len(returns)}
    evals = [r for r in run.records() if r.get("kind") == "eval" and "expert_return" in r]
    if evals:  # imitation runs log their reference returns with every evaluation
        from agents.imitation.scores import expert_normalized_score

        ref = evals[-1]
        out["normalized_score"] = expert_normalized_score(out["return_mean"],
                                                          ref["random_return"],
                                                          ref["expert_return"])
    if a.video is not None:
        import numpy as np

        from agents.runs.evaluation import EVAL_SEED
        from sim.video import record_video

        def policy(o: Any) -> Any:
            return np.asarray(agent.act(o[None], deterministic=True).cpu().numpy())[0]

        out["video"] = record_video(run.env, a.video, policy, seed=EVAL_SEED)["path"]
    emit(out, as_json=a.json, title="evaluation")


def cmd_collect(a: argparse.Namespace) -> None:
    import sim
    from agents.experts import teleop
    from agents.experts.base import make_expert
    from data.record import record
    from kinema.output import console

    sim.spec(a.env)
    expert = make_expert(a.expert, a.env)
    if expert.name == "teleop":
        console.print(teleop.__doc__, markup=False)

    def shown(i: int, ret: float) -> None:
        if not a.json:
            err_console.print(f"episode {i}/{a.episodes}: return {ret:.2f}", markup=False)

    result = record(a.env, expert, a.episodes, a.out, seed=a.seed, append=a.append,
                    on_episode=shown)
    emit({"env": a.env, "expert": expert.name, **result.summary()}, as_json=a.json,
         title="collect")


def cmd_export(a: argparse.Namespace) -> None:
    from agents.runs.evaluation import rollout_observations
    from agents.runs.train import load_agent
    from deploy.export import export_bundle

    agent, run = load_agent(a.run)
    out = a.out or run.path / "bundle"
    obs = rollout_observations(lambda o: agent.act(o, deterministic=True).cpu().numpy(), run.env)
    joint_map = None
    if a.joint_state_map is not None:
        import sim
        from kinema.cli_ros import load_joint_state_map

        joint_map = load_joint_state_map(a.joint_state_map, sim.spec(run.env).info.obs_shape[0])
    contract = export_bundle(agent.inference_module(), env=run.env, out_dir=out,
                             source_run=run.path.name, rollout_obs=obs,
                             joint_state_map=joint_map, quantize=a.quantize,
                             quantize_bound=a.quantize_bound)
    emit({"bundle": str(out), "env": contract.env, "obs_dim": contract.obs_dim,
          "act_dim": contract.act_dim, "rate_hz": contract.rate_hz, "opset": contract.opset,
          "parity_max_abs_error": contract.parity_max_abs_error,
          "policy_sha256": contract.policy_sha256}, as_json=a.json, title="export")


def cmd_run(a: argparse.Namespace) -> None:
    from deploy.runtime import run_bundle

    if a.realtime is not None:
        from deploy.runtime.realtime import use_realtime

        use_realtime(a.realtime)
    episodes = None if a.steps else (a.episodes or 1)
    report = run_bundle(a.bundle, env=a.env, rate_hz=a.rate, episodes=episodes, steps=a.steps,
                        seed=a.seed)
    emit(report.to_json(), as_json=a.json, title="real-time run")


def cmd_bench(a: argparse.Namespace) -> None:
    import json

    if a.name == "deploy":
        from benchmarks import deploy as deploy_bench

        result = deploy_bench.run(markdown=a.markdown,
                                  log=lambda m: err_console.print(m, markup=False))
        print(deploy_bench.report(result))
        return
    if a.name == "sim":
        from benchmarks import sim as sim_bench

        print(sim_bench.report(sim_bench.run(markdown=a.markdown)))
        return
    from benchmarks import rl

    def names(text: str) -> list[str]:
        return [t.strip() for t in text.split(",") if t.strip()]

    seeds = names(a.seeds)
    if not all(s.lstrip("-").isdigit() for s in seeds):
        raise ValueError(f"--seeds {a.seeds!r} is not a comma-separated list of integers")
    rl.run(names(a.tasks) if a.tasks else list(rl.TASKS), [int(s) for s in seeds],
           names(a.libs), results=a.results, markdown=a.markdown)
    print(rl.report(json.loads(a.results.read_text())))


_TORCH_FREE = ("run", "ros", "ros-sim")
"""Commands a robot computer runs without the training stack: they must not import agents."""


class _NeverRaised(Exception):
    """Stands in for training-stack errors in commands that never import it."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    algo = None
    if len(argv) > 1 and argv[0] == "train" and not argv[1].startswith("-"):
        algo = argv.pop(1)  # the ALGO positional, taken first so option values never fill it
    args, rest = parser.parse_known_args(argv)
    if args.command == "train":
        args.algo = algo
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command in _TORCH_FREE:
        CheckpointError = RunError = Diverged = _NeverRaised  # noqa: N806
    else:
        from agents.loops.core import Diverged
        from agents.runs.checkpoint import CheckpointError
        from agents.runs.run import RunError
    from deploy.contract import BundleError
    from sim.errors import UnknownNameError

    try:
        if args.command == "envs":
            cmd_envs(args)
        elif args.command == "train":
            cmd_train(args, rest, parser)
        elif args.command == "eval":
            cmd_eval(args)
        elif args.command == "collect":
            cmd_collect(args)
        elif args.command == "export":
            cmd_export(args)
        elif args.command == "run":
            cmd_run(args)
        elif args.command == "bench":
            cmd_bench(args)
        elif args.command in ("ros", "ros-sim"):
            from kinema import cli_ros

            (cli_ros.cmd_ros if args.command == "ros" else cli_ros.cmd_ros_sim)(args)
    except (UnknownNameError, ValueError, CheckpointError, RunError, BundleError,
            FileNotFoundError) as exc:
        err_console.print(f"kinema {args.command}: error: {exc}", markup=False, highlight=False,
                          soft_wrap=True)
        return 2
    except Diverged as exc:
        err_console.print(f"kinema {args.command}: diverged: {exc}", markup=False, highlight=False,
                          soft_wrap=True)
        return 3
    except KeyboardInterrupt:
        err_console.print(f"kinema {args.command}: interrupted; the last complete checkpoint "
                          "is kept", markup=False, highlight=False,
                          soft_wrap=True)
        return 130
    return 0


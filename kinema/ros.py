"""`kinema ros BUNDLE` and `kinema ros-sim ENV`: the ROS 2 subcommands.

Torch-free (kinema/cli.py): these commands import neither torch nor agents, so a robot
computer with the runtime and the `ros` extra runs them without the training stack.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from kinema.args import positive_float, positive_int
from kinema.output import emit, err_console
from kinema.run import FAULT_EXIT, exit_for_stop, seed, table_view

TOPIC_OPTIONS = (
    ("observation", "std_msgs/Float32MultiArray observations"),
    ("joint-states", "sensor_msgs/JointState observations (--input joint-state)"),
    ("command", "std_msgs/Float64MultiArray commands"),
    ("estop", "std_msgs/Bool e-stop (true latches a stop)"),
    ("status", "std_msgs/String JSON status"),
    ("reset", "std_msgs/Empty new-episode signal (the policy's state is reset)"),
)
DEFAULT_TOPICS = {"observation": "/kinema/observation", "joint-states": "/joint_states",
                  "command": "/kinema/command", "estop": "/kinema/estop",
                  "status": "/kinema/status", "reset": "/kinema/reset"}


def add_parser(sub: Any) -> None:
    """Add `ros` and `ros-sim` to the `kinema` subparsers."""
    n = sub.add_parser("ros", help="serve a bundle as a ROS 2 node (needs the ros extra)",
                       description="Subscribe observations, publish commands at the contract's "
                       "rate through the safety layer, honour the e-stop topic, publish JSON "
                       "status. Ctrl-C latches a stop and sends the safe action before exiting.",
                       epilog="exit status: 0 the node stopped on its bound (--steps, "
                       "--duration) or on Ctrl-C/SIGTERM with no fault before; 2 bad input, "
                       f"nothing ran (one line names it); {FAULT_EXIT} a latched fault stop "
                       "came first (the e-stop topic, stale or non-finite observations, "
                       "deadline misses, an observation it could not read, a command it could "
                       "not publish: one line names the reason; the report is still printed)")
    n.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle folder from kinema export")
    _topic_options(n)
    n.add_argument("--input", choices=("array", "joint-state"), default="array",
                   help="observation message: array (Float32MultiArray, contract order) or "
                   "joint-state (JointState through the contract's joint_state_map)")
    n.add_argument("--trigger", choices=("timer", "observation"), default="timer",
                   help="timer: command on a timer at the rate (default); observation: act on "
                   "each observation as it arrives")
    n.add_argument("--rate", type=positive_float, metavar="HZ",
                   help="control rate (default: the contract's)")
    n.add_argument("--watchdog", type=positive_float, metavar="S",
                   help="observations older than S seconds latch a stop (default: 5 periods, "
                   "at least 0.1 s)")
    n.add_argument("--max-misses", type=positive_int, default=3, metavar="N",
                   help="this many deadline misses in a row latch a stop (default 3)")
    n.add_argument("--max-delta", type=positive_float, metavar="D",
                   help="largest change of a continuous command per step, robot units")
    n.add_argument("--realtime", type=int, nargs="?", const=50, metavar="PRIO",
                   help="run under SCHED_FIFO (priority PRIO, default 50; Linux, needs root or "
                   "CAP_SYS_NICE), so other processes cannot delay the control loop")
    n.add_argument("--steps", type=positive_int, help="stop after N policy steps")
    n.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds")
    n.add_argument("--json", action="store_true", help="print the final status as JSON")
    n.set_defaults(handler=cmd_ros)

    s = sub.add_parser("ros-sim", help="play a simulated robot over ROS 2 (needs the ros extra)",
                       description="Publish the env's observations and apply commands at the "
                       "env's control rate; episodes reset automatically and their returns "
                       "are reported.",
                       epilog="exit status: 0 its episodes or duration done, or Ctrl-C/SIGTERM; "
                       f"2 bad input, nothing ran (one line names it); {FAULT_EXIT} the "
                       "simulated robot raised (robot_read_error or robot_send_error, named in "
                       "one line)")
    s.add_argument("env", metavar="ENV", help="environment name (see kinema envs)")
    _topic_options(s, estop=False)
    s.add_argument("--joint-state-map", type=Path, metavar="FILE",
                   help="publish sensor_msgs/JointState through this map (a JSON list, or a "
                   "bundle folder whose contract has one) instead of arrays")
    s.add_argument("--rate", type=positive_float, metavar="HZ",
                   help="simulation rate (default: the env's control rate)")
    s.add_argument("--episodes", type=positive_int, help="stop after N episodes")
    s.add_argument("--lockstep", action="store_true",
                   help="step once per command, at once (a synchronous simulator: a slow "
                   "controller changes the timing, not the episode); default: real time at "
                   "--rate, holding the last command")
    s.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds")
    s.add_argument("--seed", type=seed, default=0,
                   help="seed of the simulated robot, an integer >= 0 (default 0)")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(handler=cmd_ros_sim)


def _topic_options(p: argparse.ArgumentParser, estop: bool = True) -> None:
    for name, what in TOPIC_OPTIONS:
        if not estop and name in ("estop", "status"):
            continue
        p.add_argument(f"--{name}-topic", default=DEFAULT_TOPICS[name], metavar="TOPIC",
                       help=f"{what} (default {DEFAULT_TOPICS[name]})")


def _topics(a: argparse.Namespace) -> Any:
    from deploy.ros import Topics

    given = {name.replace("-", "_"): getattr(a, f"{name.replace('-', '_')}_topic", None)
             for name, _ in TOPIC_OPTIONS}
    return Topics(**{k: v for k, v in given.items() if v is not None})


def cmd_ros(a: argparse.Namespace) -> None:
    from deploy.ros import run_policy_node

    if a.realtime is not None:
        from deploy.runtime.realtime import use_realtime

        use_realtime(a.realtime)  # before rclpy starts its threads, so they inherit it

    def started(node: Any) -> None:
        err_console.print(f"kinema ros: {a.bundle} commands {node.topics.command} at "
                          f"{node.rate_hz:g} Hz; Ctrl-C stops with the safe action",
                          markup=False, highlight=False, soft_wrap=True)

    report = run_policy_node(a.bundle, topics=_topics(a), input=a.input, trigger=a.trigger,
                             rate_hz=a.rate, watchdog_s=a.watchdog, max_delta=a.max_delta,
                             max_misses=a.max_misses, steps=a.steps, duration_s=a.duration,
                             on_start=started)
    emit(report if a.json else table_view(report), as_json=a.json, title="ros node")
    exit_for_stop("ros", report.get("reason"), report.get("fault"), interrupt_ends=True)


def cmd_ros_sim(a: argparse.Namespace) -> None:
    import sim
    from deploy.ros import run_sim_bridge

    sim.spec(a.env)  # an unknown name fails here, with suggestions
    joint_map = None if a.joint_state_map is None else load_joint_state_map(
        a.joint_state_map, math.prod(sim.spec(a.env).info.obs_shape))
    report = run_sim_bridge(a.env, topics=_topics(a), seed=a.seed, rate_hz=a.rate,
                            joint_state_map=joint_map, episodes=a.episodes,
                            duration_s=a.duration, lockstep=a.lockstep)
    emit(report if a.json else table_view(report), as_json=a.json, title="ros sim bridge")
    exit_for_stop("ros-sim", report.get("stop_reason"), report.get("fault"), interrupt_ends=True,
                  after="the simulated robot stopped")


def load_joint_state_map(path: Path, obs_dim: int) -> Any:
    """A joint_state_map from a JSON file (a list of entries) or a bundle folder's contract."""
    from deploy.contract import Contract
    from deploy.joint_state_map import JointStateMapError, parse_joint_state_map

    if path.is_dir():
        fields = Contract.load(path, check_hash=False).joint_state_map
        if fields is None:
            raise ValueError(f"the contract in {str(path)!r} has no joint_state_map")
        data: Any = fields
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{str(path)!r} is not valid JSON ({e})") from None
    try:
        return parse_joint_state_map(data, obs_dim)
    except JointStateMapError as e:
        raise ValueError(f"joint state map {str(path)!r} {e}") from None

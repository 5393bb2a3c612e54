"""Deployment latency: onnxruntime vs torch inference, runner step, loop jitter, ROS 2 round trip.

    kinema bench deploy [--markdown BENCHMARKS.md]     (or: python -m benchmarks.deploy)

The policy is a 256x256 tanh MLP for `halfcheetah` (17 observations, 6 actions) with its
normalizer, clipping and scaling in the graph, exported with `deploy.export`. Inference is one
observation per call on one thread: onnxruntime through `OnnxPolicy` (what the runner calls)
beside the same torch module under `torch.inference_mode`, in alternating rounds so load from
other processes hits both alike. The runner step is `Runner` on a robot that costs nothing
(read returns a fixed observation, send drops the command), so it times exactly the checks,
inference and safety filtering. Jitter is the runner paced at 500 Hz for 10k steps (wake time
minus scheduled time), beside a loop paced by a bare `time.sleep(period)` as a reference. The
ROS 2 round trip runs `kinema ros --trigger observation` as its own process and a Python rclpy
probe here that publishes an observation and waits for the command it causes (ping-pong).
Everything is measured twice: under the default scheduler, and under SCHED_FIFO (`--realtime`,
as a robot computer runs its controller) when the OS allows it. Every percentile is over single
calls; the machine's load average is recorded with them.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.markdown import machine, publish
from benchmarks.markdown import write_section as write_markdown_section

RESULTS = Path("benchmarks/results/deploy.json")
BEGIN, END = "<!-- bench:deploy begin -->", "<!-- bench:deploy end -->"
ENV = "halfcheetah"
HIDDEN = (256, 256)
TARGETS_US = {"inference_p99": 40.0, "runner_step_p99": 100.0, "jitter_p99": 500.0,
              "ros_round_trip_p99": 2000.0}
"""The issue's targets on the development machine (idle), in microseconds."""


class NullRobot:
    """Read returns a fixed observation stamped now; send drops the command."""

    def __init__(self, obs_dim: int) -> None:
        self._obs = np.zeros(obs_dim, np.float32)
        self.sent = 0

    def read(self) -> tuple[np.ndarray, float]:
        return self._obs, time.monotonic()

    def send(self, action: np.ndarray) -> None:
        self.sent += 1

    def safe_stop(self) -> None:
        pass


def export_mlp(out: Path, seed: int = 0) -> Any:
    """The benchmark policy: normalizer (fitted) -> 256x256 tanh MLP -> clip -> scale."""
    import torch

    import sim
    from deploy.export import export_bundle
    from models.export_heads import ScaledActionHead
    from models.mlp import mlp
    from models.normalizer import RunningNorm

    torch.manual_seed(seed)
    info = sim.spec(ENV).info
    obs_dim, act_dim = info.obs_shape[0], int(np.prod(info.action_shape))
    norm = RunningNorm((obs_dim,))
    norm.update(torch.randn(1000, obs_dim))
    module = ScaledActionHead(norm, mlp(obs_dim, HIDDEN, act_dim, activation="tanh"),
                            torch.tensor(info.action_low), torch.tensor(info.action_high))
    export_bundle(module, env=ENV, out_dir=out)
    return module.eval()


def _pct(seconds: np.ndarray | list[float]) -> dict[str, float]:
    x = np.asarray(seconds, np.float64) * 1e6
    return {"p50_us": float(np.percentile(x, 50)), "p99_us": float(np.percentile(x, 99)),
            "max_us": float(x.max())}


def inference(bundle: Path, module: Any, *, calls: int = 20_000, rounds: int = 10
              ) -> dict[str, Any]:
    """Per-call latency of OnnxPolicy (1 thread) and of the torch module (1 thread)."""
    import torch

    from deploy.runtime import OnnxPolicy
    from deploy.runtime.stats import time_calls

    torch.set_num_threads(1)
    policy = OnnxPolicy(bundle, threads=1)
    obs = np.random.default_rng(0).normal(0, 1, policy.obs_dim).astype(np.float32)

    def torch_call(o: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(o).unsqueeze(0)).numpy()[0]

    ort_t: list[np.ndarray] = []
    torch_t: list[np.ndarray] = []
    per = calls // rounds
    for r in range(rounds):  # alternate who goes first, so drift in load is shared
        pair: list[tuple[list[np.ndarray], Callable[[np.ndarray], Any]]] = [
            (ort_t, policy), (torch_t, torch_call)]
        for sink, fn in pair if r % 2 == 0 else pair[::-1]:
            sink.append(time_calls(fn, obs, per, warmup=200))
    ort_all, torch_all = np.concatenate(ort_t), np.concatenate(torch_t)
    out: dict[str, Any] = {"onnxruntime": _pct(ort_all), "torch": _pct(torch_all)}
    out["torch_over_onnxruntime_p50"] = out["torch"]["p50_us"] / out["onnxruntime"]["p50_us"]
    out["cold"] = _cold(policy, torch_call, obs, calls=max(20, calls // 100))
    return out


def _cold(policy: Callable[[np.ndarray], Any], torch_call: Callable[[np.ndarray], Any],
          obs: np.ndarray, *, calls: int, gap_s: float = 0.02) -> dict[str, Any]:
    """Each call after sleeping `gap_s` (a 50 Hz loop's idle time): by then the caches may hold
    other processes' and the kernel's data, which is what a slow-rate loop really sees."""
    ort_t, torch_t = np.empty(calls), np.empty(calls)
    clock = time.perf_counter
    for i in range(calls):
        for sink, fn in ((ort_t, policy), (torch_t, torch_call)):
            time.sleep(gap_s)
            t0 = clock()
            fn(obs)
            sink[i] = clock() - t0
    return {"gap_s": gap_s, "onnxruntime": _pct(ort_t), "torch": _pct(torch_t)}


def int8(bundle: Path, *, calls: int = 5000) -> dict[str, Any]:
    """`--quantize int8` on the same graph: its error against the float graph (1000 random
    observations, in units of the action range) and both graphs' per-call time."""
    from deploy.quantize import p50_us, quantize_int8, session

    blob = (bundle / "policy.onnx").read_bytes()
    q = quantize_int8(blob)
    obs = np.random.default_rng(0).normal(0, 1, (1000, 17)).astype(np.float32)
    want = session(blob).run(["action"], {"obs": obs})[0]
    got = session(q).run(["action"], {"obs": obs})[0]
    span = 2.0  # halfcheetah's actions are in [-1, 1]
    return {"max_error_over_range": float(np.max(np.abs(got - want)) / span),
            "float_p50_us": p50_us(blob, obs[:1], calls),
            "int8_p50_us": p50_us(q, obs[:1], calls)}


def runner_step(bundle: Path, *, steps: int = 20_000) -> dict[str, Any]:
    """Runner.run unpaced on NullRobot: one step = read, checks, inference, safety, send."""
    from deploy.runtime import OnnxPolicy, Runner, SafetyLayer

    policy = OnnxPolicy(bundle)
    layer = SafetyLayer(policy.contract, max_delta=0.5, watchdog_s=0.1)
    report = Runner(policy, NullRobot(policy.obs_dim), layer, rate_hz=0).run(steps=steps)
    return {"steps": report.steps, "step_p50_us": report.latency_p50_us,
            "step_p99_us": report.latency_p99_us, "inference_p50_us": report.inference_p50_us,
            "inference_p99_us": report.inference_p99_us, "stop_reason": report.stop_reason}


def jitter(bundle: Path, *, rate_hz: float = 500.0, steps: int = 10_000,
           naive_steps: int = 2000) -> dict[str, Any]:
    """The runner paced at `rate_hz`, and a bare-sleep loop at the same rate for reference."""
    from deploy.runtime import OnnxPolicy, Runner, SafetyLayer

    policy = OnnxPolicy(bundle)
    # max_misses above `steps`: measure every miss instead of stopping at the third.
    layer = SafetyLayer(policy.contract, watchdog_s=0.1, max_misses=steps + 1)
    load = os.getloadavg()[0]
    report = Runner(policy, NullRobot(policy.obs_dim), layer, rate_hz=rate_hz).run(steps=steps)
    out: dict[str, Any] = {
        "rate_hz": rate_hz, "steps": report.steps, "jitter_p99_us": report.jitter_p99_us,
        "deadline_misses": report.deadline_misses, "step_p99_us": report.latency_p99_us,
        "wall_s": report.wall_s, "ideal_s": steps / rate_hz, "load_before": load,
        "load_after": os.getloadavg()[0]}
    out["naive_sleep"] = _naive_sleep(policy, policy.obs_dim, rate_hz, naive_steps)
    return out


def _naive_sleep(policy: Callable[[np.ndarray], Any], obs_dim: int, rate_hz: float, steps: int
                 ) -> dict[str, Any]:
    """`act; sleep(period)`: the loop the runner replaces. Its lateness grows every step."""
    period = 1.0 / rate_hz
    obs = np.zeros(obs_dim, np.float32)
    start = time.perf_counter()
    late = np.empty(steps)
    for k in range(steps):
        late[k] = time.perf_counter() - (start + k * period)
        policy(obs)
        time.sleep(period)
    wall = time.perf_counter() - start
    return {"steps": steps, "wall_s": wall, "ideal_s": steps * period,
            "drift_ms": (wall - steps * period) * 1e3,
            "lateness_p99_us": float(np.percentile(late, 99) * 1e6)}


def ros_round_trip(bundle: Path, *, samples: int = 2000, warmup: int = 100,
                   domain_id: int | None = None, realtime: bool = False) -> dict[str, Any]:
    """Observation published here -> command received here, through `kinema ros` (its own
    process, observation trigger) over loopback DDS, one observation in flight at a time."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Float32MultiArray, Float64MultiArray, String

    from deploy.ros import localhost_env, ros_context

    domain = domain_id if domain_id is not None else 1 + os.getpid() % 100
    env = localhost_env(domain)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinema", "ros", str(bundle), "--trigger", "observation",
         "--rate", "500", "--watchdog", "2", "--duration", "120", "--json",
         *(["--realtime"] if realtime else [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    saved = {k: os.environ.get(k) for k in ("ROS_LOCALHOST_ONLY", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    os.environ.update({k: env[k] for k in saved})  # the probe stays on loopback too
    times: list[float] = []
    lost = 0
    try:
        with ros_context(domain) as ctx:
            node = rclpy.create_node("kinema_bench_probe", context=ctx)
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            got: list[float] = []
            statuses: list[str] = []
            node.create_subscription(Float64MultiArray, "/kinema/command",
                                     lambda m: got.append(time.perf_counter()), reliable)
            node.create_subscription(String, "/kinema/status",
                                     lambda m: statuses.append(m.data), reliable)
            pub = node.create_publisher(Float32MultiArray, "/kinema/observation", reliable)
            ex = SingleThreadedExecutor(context=ctx)
            ex.add_node(node)
            obs = Float32MultiArray(data=[0.0] * 17)
            end = time.monotonic() + 30  # discovery and the node's start-up
            while not got and time.monotonic() < end:
                pub.publish(obs)
                ex.spin_once(timeout_sec=0.05)
            if not got:
                raise RuntimeError("the ROS node never answered; is the ros extra installed?")
            for i in range(warmup + samples):
                ex.spin_once(timeout_sec=0.002)  # drain
                n = len(got)
                t0 = time.perf_counter()
                pub.publish(obs)
                deadline = time.monotonic() + 0.5
                while len(got) == n and time.monotonic() < deadline:
                    ex.spin_once(timeout_sec=0.1)
                if len(got) == n:
                    lost += 1
                elif i >= warmup:
                    times.append(got[n] - t0)
            last_status = json.loads(statuses[-1]) if statuses else {}
            ex.shutdown(timeout_sec=0)
            node.destroy_node()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.send_signal(signal.SIGINT)  # the node's clean shutdown
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by its handle
            proc.communicate()
    out = {"samples": len(times), "lost": lost, **_pct(times),
           "node_step_p50_us": last_status.get("latency_p50_us"),
           "node_step_p99_us": last_status.get("latency_p99_us"),
           "node_state": last_status.get("state"), "node_reason": last_status.get("reason")}
    return out


MODES = ("default", "fifo")


@contextmanager
def scheduling(mode: str) -> Iterator[None]:
    """Run the block under `mode`: "default" (SCHED_OTHER) or "fifo" (SCHED_FIFO 50)."""
    from deploy.runtime.realtime import use_realtime

    if mode == "default":
        yield
        return
    use_realtime(50)
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def measure(bundle: Path, module: Any, mode: str, *, scale: int, ros: bool,
            log: Callable[[str], None]) -> dict[str, Any]:
    """Every measurement under one scheduling mode."""
    out: dict[str, Any] = {}
    with scheduling(mode):
        log(f"[{mode}] inference: onnxruntime vs torch, one observation, one thread")
        out["inference"] = inference(bundle, module, calls=20_000 // scale)
        log(f"[{mode}] runner step on a null robot")
        out["runner"] = runner_step(bundle, steps=20_000 // scale)
        log(f"[{mode}] jitter at 500 Hz")
        out["jitter"] = jitter(bundle, steps=10_000 // scale, naive_steps=2000 // scale)
        if ros:
            log(f"[{mode}] ROS 2 round trip")
            out["ros"] = ros_round_trip(bundle, samples=2000 // scale,
                                        realtime=mode == "fifo")
    return out


def _refused(mode: str) -> str | None:
    """Why the OS refuses `mode`, or None when it can be used."""
    try:
        with scheduling(mode):
            return None
    except ValueError as e:
        return str(e)


def run(*, quick: bool = False, ros: bool = True, modes: tuple[str, ...] = MODES,
        results: Path | None = RESULTS, markdown: Path | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure everything under each of `modes` (`quick`: 10x fewer samples, for tests); write
    JSON to `results` and this benchmark's section of `markdown` when given. A mode the OS
    refuses (SCHED_FIFO without privileges) is recorded with the reason instead."""
    scale = 10 if quick else 1
    out: dict[str, Any] = {"machine": _machine(), "cpus": os.cpu_count(),
                           "load_start": os.getloadavg()[0],
                           "env": ENV, "hidden": list(HIDDEN), "targets_us": TARGETS_US,
                           "quick": quick, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="kinema-bench-deploy-") as tmp:
        bundle = Path(tmp) / "bundle"
        module = export_mlp(bundle)
        log("int8 quantization of the same graph")
        out["int8"] = int8(bundle, calls=5000 // scale)
        for mode in modes:
            refused = _refused(mode)
            out["modes"][mode] = {"skipped": refused} if refused else measure(
                bundle, module, mode, scale=scale, ros=ros, log=log)
    out["load_end"] = os.getloadavg()[0]
    publish(out, results, markdown, write_section, report, indent=2)
    return out


def _machine() -> str:
    import onnxruntime
    import torch

    return machine(f"Python {platform.python_version()}",
                   f"onnxruntime {onnxruntime.__version__}", f"torch {torch.__version__}")


def report(r: dict[str, Any]) -> str:
    """The markdown of one `run`."""
    from benchmarks.deploy_report import markdown

    return markdown(r)


TITLE = 'Deployment latency (issue 5)'


def write_section(path: Path, body: str) -> None:
    """Replace this benchmark's section of `path` (and nothing else); add it if absent."""
    write_markdown_section(path, BEGIN, END, TITLE, body)


if __name__ == "__main__":
    print(report(run()))

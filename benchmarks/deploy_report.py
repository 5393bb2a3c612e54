"""The markdown of `benchmarks.deploy.run` for BENCHMARKS.md (its own section only)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

NAMES = {"default": "default scheduler", "fifo": "SCHED_FIFO (--realtime)"}


def _us(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _met(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return "-"
    return "yes" if value <= target else "**no**"


Row = tuple[str, Callable[[dict[str, Any]], tuple[float | None, float | None]], float | None]


def _rows(t: dict[str, float]) -> list[Row]:
    return [
        ("inference, onnxruntime (OnnxPolicy, 1 thread)",
         lambda m: (m["inference"]["onnxruntime"]["p50_us"],
                    m["inference"]["onnxruntime"]["p99_us"]), t["inference_p99"]),
        ("inference, torch module (1 thread, inference_mode)",
         lambda m: (m["inference"]["torch"]["p50_us"], m["inference"]["torch"]["p99_us"]),
         None),
        ("inference, onnxruntime, each call after a 20 ms sleep (cold caches)",
         lambda m: (m["inference"]["cold"]["onnxruntime"]["p50_us"],
                    m["inference"]["cold"]["onnxruntime"]["p99_us"]), None),
        ("inference, torch, each call after a 20 ms sleep (cold caches)",
         lambda m: (m["inference"]["cold"]["torch"]["p50_us"],
                    m["inference"]["cold"]["torch"]["p99_us"]), None),
        ("runner step: read, checks, inference, safety, send",
         lambda m: (m["runner"]["step_p50_us"], m["runner"]["step_p99_us"]),
         t["runner_step_p99"]),
        ("loop jitter at 500 Hz (wake - schedule)",
         lambda m: (None, m["jitter"]["jitter_p99_us"]), t["jitter_p99"]),
        ("ROS 2 round trip: observation published -> command received",
         lambda m: (m["ros"]["p50_us"], m["ros"]["p99_us"]) if "ros" in m else (None, None),
         t["ros_round_trip_p99"]),
    ]


def markdown(r: dict[str, Any]) -> str:
    modes = {k: v for k, v in r["modes"].items() if "skipped" not in v}
    head = "| measure | target p99 |"
    rule = "|---|---:|"
    for mode in modes:
        head += f" {NAMES[mode]} p50 | p99 | met |"
        rule += "---:|---:|:---:|"
    lines = [
        "Command: `kinema bench deploy` (benchmarks/deploy.py). Policy: 256x256 tanh MLP for "
        f"`{r['env']}` (17 observations, 6 actions) with normalizer, clip and scaling in the "
        "graph; one observation per call; microseconds. Machine: " + r["machine"] + ".",
        "",
        _load(r, modes),
        "",
        "Inference rows are back-to-back calls (hot caches) unless marked cold: a cold call "
        "follows a 20 ms sleep, as in a 50 Hz loop, by which time the core has run other work "
        "(other processes, the kernel) and the policy's weights and code may have left the "
        "caches. The runner at 500 Hz busy-waits the last 200 us before each deadline, and its "
        "steps measure close to the hot numbers; the ROS node wakes from rclpy's wait, and its "
        "steps are cold.",
        "",
        head,
        rule,
    ]
    for name, get, target in _rows(r["targets_us"]):
        row = f"| {name} | {_us(target)} |"
        for m in modes.values():
            p50, p99 = get(m)
            row += f" {_us(p50)} | {_us(p99)} | {_met(p99, target)} |"
        lines.append(row)
    lines.append("")
    if "int8" in r:
        q = r["int8"]
        lines.append(
            f"- `--quantize int8` (onnxruntime dynamic quantization) of this graph: max error "
            f"{q['max_error_over_range']:.2%} of the action range, p50 {_us(q['int8_p50_us'])} "
            f"us per call vs {_us(q['float_p50_us'])} us for the float graph "
            f"({q['int8_p50_us'] / q['float_p50_us']:.2f}x; hot, default scheduler). At batch "
            "1 the activations are quantized on every call, which eats into what the int8 "
            "matrix products save.")
    for mode, m in r["modes"].items():
        if "skipped" in m:
            lines.append(f"- {NAMES[mode]}: not measured ({m['skipped']}).")
            continue
        lines += _notes(NAMES[mode], m)
    return "\n".join(lines)


def _cpus(r: dict[str, Any]) -> int | None:
    """The core count of the run (older results have it only in the machine line)."""
    if r.get("cpus"):
        return int(r["cpus"])
    found = re.search(r"(\d+) CPU cores", r.get("machine", ""))
    return int(found.group(1)) if found else None


def _load(r: dict[str, Any], modes: dict[str, Any]) -> str:
    """What the recorded load averages say about the run: measured, not assumed."""
    jitter = {NAMES[k]: m["jitter"]["load_before"] for k, m in modes.items()}
    text = (f"Load average (1 min): {r['load_start']:.2f} at the start, {r['load_end']:.2f} at "
            "the end" + "".join(f", {v:.2f} before the {k} jitter run" for k, v in jitter.items()))
    cpus = _cpus(r)
    if cpus is None:
        text += " (the core count was not recorded)."
    else:
        peak = max([r["load_start"], r["load_end"], *jitter.values()])
        other = max(peak - 1.0, 0.0)  # this benchmark itself keeps up to about one core busy
        text += (f", on {cpus} CPU cores: at the peak ({peak:.2f}) other processes wanted "
                 f"about {other:.1f} cores beside this benchmark's own (up to about 1).")
        text += (" So the tails (p99) are those of a loaded machine, not of the idle one the "
                 "targets are set for." if other >= cpus / 2 else
                 " So the machine was close to the idle one the targets are set for.")
    if len(modes) > 1:
        text += (" SCHED_FIFO is what a robot computer uses for its controller; on a loaded "
                 "machine it decides whether the loop keeps its deadlines (compare the groups "
                 "of columns).")
    return text


def _notes(name: str, m: dict[str, Any]) -> list[str]:
    inf, run, jit = m["inference"], m["runner"], m["jitter"]
    naive = jit["naive_sleep"]
    out = [
        f"- {name}: torch takes {inf['torch_over_onnxruntime_p50']:.1f}x onnxruntime's time "
        f"per call (p50). Inference inside the runner step: p50 {_us(run['inference_p50_us'])}, "
        f"p99 {_us(run['inference_p99_us'])}. Jitter run: {jit['deadline_misses']} deadline "
        f"misses in {jit['steps']:,} steps (load {jit['load_before']:.2f}); it took "
        f"{jit['wall_s']:.3f} s for an ideal {jit['ideal_s']:.3f} s (a miss skips to the next "
        "tick of the fixed grid, so misses cost whole periods but never drift). The same rate "
        f"paced by `act(); time.sleep(period)`: {naive['steps']:,} steps took "
        f"{naive['wall_s']:.3f} s for {naive['ideal_s']:.3f} s ({naive['drift_ms']:.0f} ms of "
        "drift, growing every step).",
    ]
    ros = m.get("ros")
    if ros:
        out.append(
            f"  ROS 2: {ros['samples']:,} round trips ({ros['lost']} lost) between an rclpy "
            "probe here and `kinema ros --trigger observation` in its own process (Fast DDS "
            f"over loopback); inside the node a step (checks, inference, publish) took p50 "
            f"{_us(ros['node_step_p50_us'])}, p99 {_us(ros['node_step_p99_us'])}. With the "
            "default timer trigger a command also waits up to half a period for its tick (by "
            "design: it is computed on the freshest observation).")
    return out

"""The markdown of `benchmarks.deploy.run` for BENCHMARKS.md (its own section only)."""

from __future__ import annotations

from typing import Any


def _us(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _met(value: float | None, target: float) -> str:
    if value is None:
        return "-"
    return "yes" if value <= target else "**no**"


def markdown(r: dict[str, Any]) -> str:
    t = r["targets_us"]
    inf, run, jit = r["inference"], r["runner"], r["jitter"]
    ros = r.get("ros")
    rows = [
        ("inference, onnxruntime (OnnxPolicy, 1 thread)", inf["onnxruntime"]["p50_us"],
         inf["onnxruntime"]["p99_us"], t["inference_p99"]),
        ("inference, torch module (1 thread, inference_mode)", inf["torch"]["p50_us"],
         inf["torch"]["p99_us"], None),
        ("runner step: read, checks, inference, safety, send", run["step_p50_us"],
         run["step_p99_us"], t["runner_step_p99"]),
        (f"loop jitter at {jit['rate_hz']:g} Hz, {jit['steps']:,} steps (wake - schedule)",
         None, jit["jitter_p99_us"], t["jitter_p99"]),
    ]
    if ros:
        rows.append(("ROS 2 round trip: observation published -> command received",
                     ros["p50_us"], ros["p99_us"], t["ros_round_trip_p99"]))
    lines = [
        "Command: `kinema bench deploy` (benchmarks/deploy.py). Policy: 256x256 tanh MLP for "
        f"`{r['env']}` (17 observations, 6 actions) with normalizer, clip and scaling in the "
        "graph; one observation per call. Machine: " + r["machine"] + ".",
        "",
        f"Load average (1 min) at start {r['load_start']:.2f}, during the jitter run "
        f"{jit['load_before']:.2f} -> {jit['load_after']:.2f}, at end {r['load_end']:.2f}: "
        "other engineers' training runs shared the 2 cores, so the tails (p99) here are those "
        "of a loaded machine, not of the idle one the targets are set for.",
        "",
        "| measure | p50 us | p99 us | target p99 us | met |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name, p50, p99, target in rows:
        lines.append(f"| {name} | {_us(p50)} | {_us(p99)} | "
                     f"{'-' if target is None else _us(target)} | "
                     f"{'-' if target is None else _met(p99, target)} |")
    naive = jit["naive_sleep"]
    lines += [
        "",
        f"- torch / onnxruntime per-call time (p50): {inf['torch_over_onnxruntime_p50']:.1f}x.",
        f"- Runner inference alone inside the step: p50 {_us(run['inference_p50_us'])} us, "
        f"p99 {_us(run['inference_p99_us'])} us.",
        f"- Jitter run: {jit['deadline_misses']} deadline misses in {jit['steps']:,} steps; "
        f"wall {jit['wall_s']:.3f} s for an ideal {jit['ideal_s']:.3f} s (absolute schedule: "
        "no drift).",
        f"- Reference, `act(); time.sleep(period)` at the same rate: {naive['steps']:,} steps "
        f"took {naive['wall_s']:.3f} s for {naive['ideal_s']:.3f} s (drift "
        f"{naive['drift_ms']:.0f} ms, growing every step).",
    ]
    if ros:
        lines.append(
            f"- ROS 2: {ros['samples']:,} round trips ({ros['lost']} lost) between this "
            "process (rclpy probe) and `kinema ros --trigger observation` (its own process, "
            "Fast DDS over loopback); inside the node the step (checks, inference, publish) "
            f"took p50 {_us(ros['node_step_p50_us'])} us, p99 {_us(ros['node_step_p99_us'])} "
            "us. With the default timer trigger a command also waits up to half a period for "
            "its tick (by design: it is computed on the freshest observation).")
    return "\n".join(lines)

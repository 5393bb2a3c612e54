"""Run the policy node or the sim bridge as a process: bounded, and clean on Ctrl-C.

What `kinema ros` and `kinema ros-sim` call. Both run until Ctrl-C/SIGTERM, or until their
bound (`duration_s`, the node's `steps`, the bridge's `episodes`), and return a report dict.
The node's shutdown always goes: latch the stop, publish the safe action, keep publishing it
for `linger_s` (several periods, so a subscriber that drops one sample still gets it), then
shut down.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from deploy.ros.context import ros_context, spin_until, stop_on_signals
from deploy.ros.node import PolicyNode
from deploy.ros.sim_bridge import SimBridge
from deploy.runtime.policy import OnnxPolicy

INTERRUPTED = "interrupted"
COMPLETED = "completed"


def run_policy_node(
    bundle: str | os.PathLike[str],
    *,
    steps: int | None = None,
    duration_s: float | None = None,
    linger_s: float = 0.2,
    on_start: Callable[[PolicyNode], None] | None = None,
    **node_options: Any,
) -> dict[str, Any]:
    """Serve `bundle` on ROS 2 until Ctrl-C, `steps` policy steps or `duration_s` seconds.

    `node_options` are PolicyNode's (topics, input, trigger, rate_hz, watchdog_s, max_delta,
    max_misses, ...), with its defaults. `on_start(node)` is called once the node is up (the
    CLI prints where it publishes).
    """
    if duration_s is not None and not duration_s > 0:
        raise ValueError(f"duration {duration_s} s; expected a positive number of seconds")
    policy = OnnxPolicy(bundle)  # load and verify before touching the network
    start = time.monotonic()
    with stop_on_signals() as flag, ros_context() as ctx:
        node = PolicyNode(policy, policy.contract, context=ctx, max_steps=steps, **node_options)
        try:
            node.publish_status()
            if on_start is not None:
                on_start(node)
            with _gc_frozen():
                spin_until(node, lambda: bool(flag) or node.finished, timeout_s=duration_s)
                node.stop(INTERRUPTED if flag else COMPLETED)
                # Keep sending the safe action for a few periods (the tick timer repeats it).
                spin_until(node, lambda: False, timeout_s=max(linger_s, 2 * node.period))
            node.stop(INTERRUPTED if flag else COMPLETED)  # the very last command: safe
            node.publish_status()
            report = node.status()
        finally:
            node.destroy_node()
    report.update(bundle=str(bundle), signal=flag.signal, wall_s=time.monotonic() - start)
    return report


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Everything allocated so far (rclpy, onnxruntime, numpy: tens of thousands of objects)
    moves out of the garbage collector's reach while the loop runs: a full collection over
    them takes ~20 ms, ten periods at 500 Hz, on the thread that sends the commands."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_sim_bridge(
    env: str,
    *,
    episodes: int | None = None,
    duration_s: float | None = None,
    **bridge_options: Any,
) -> dict[str, Any]:
    """Play `env` as the robot until Ctrl-C, `episodes` episodes or `duration_s` seconds.

    `bridge_options` are SimBridge's (topics, seed, rate_hz, joint_state_map, ...), with its
    defaults.
    """
    if duration_s is not None and not duration_s > 0:
        raise ValueError(f"duration {duration_s} s; expected a positive number of seconds")
    with stop_on_signals() as flag, ros_context() as ctx:
        bridge = SimBridge(env, context=ctx, max_episodes=episodes, **bridge_options)
        try:
            spin_until(bridge, lambda: bool(flag) or bridge.done, timeout_s=duration_s)
            report = bridge.report()
        finally:
            bridge.close()
            bridge.destroy_node()
    report.update(signal=flag.signal, stop_reason=bridge.stop_reason or (
        INTERRUPTED if flag else COMPLETED))
    return report

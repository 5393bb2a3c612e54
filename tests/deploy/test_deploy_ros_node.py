"""The ROS 2 policy node in-process (real rclpy, loopback DDS): states, status, and every fault
latching the safe action while commands keep coming, never a non-finite one."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy.contract import Contract
from deploy.runtime import OnnxPolicy

rclpy = pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")

from deploy.ros import PolicyNode, Topics  # noqa: E402  (needs rclpy)

SAFE, ACT = 0.25, 0.5  # the constant graph commands ACT until a stop, then SAFE


def _node(probe: Any, policy: Callable[[np.ndarray], np.ndarray], contract: Contract,
          **kw: Any) -> PolicyNode:
    # max_misses high: a loaded test machine may stall 30 ms; only the overrun case tests it.
    kw = {"rate_hz": 100.0, "watchdog_s": 1.0, "warmup_steps": 0, "max_misses": 1000, **kw}
    node = PolicyNode(policy, contract, context=probe.node.context, **kw)
    probe.add(node)
    return node


def _feed(probe: Any, obs: list[float], seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probe.publish_obs(obs)
        probe.spin(0.01)


def _stopped(probe: Any, reason: str) -> Callable[[], bool]:
    return lambda: probe.last_status().get("state") == "stopped" and (
        probe.last_status().get("reason") == reason)


def test_deploy_ros_node_waits_then_runs_the_policy(ros_probe: Any, pendulum_bundle: Path) -> None:
    policy = OnnxPolicy(pendulum_bundle)
    node = _node(ros_probe, policy, policy.contract)
    try:
        ros_probe.spin(0.3)
        assert ros_probe.last_status()["state"] == "waiting" and ros_probe.commands == []
        obs = [0.6, 0.8, -0.5]
        _feed(ros_probe, obs, 0.6)
        status = ros_probe.last_status()
        assert status["state"] == "running" and status["reason"] is None, status
        assert status["steps"] >= 20 and status["latency_p99_us"] >= status["latency_p50_us"] > 0
        assert 0 < status["inference_p50_us"] < status["latency_p50_us"]
        expected = policy(np.array(obs, np.float32)).astype(np.float64)
        assert len(ros_probe.commands) >= 20
        for c in ros_probe.commands:
            np.testing.assert_allclose(c, expected, rtol=1e-6)
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("nan_obs", "nonfinite_obs"),
        ("inf_obs", "nonfinite_obs"),
        ("short_obs", "bad_shape"),
        ("nan_model", "nonfinite_action"),
        ("stale", "stale_obs"),
        ("estop", "estop"),
        ("overrun", "deadline_misses"),
    ],
)
def test_deploy_ros_node_faults_latch_and_keep_sending_the_safe_action(
    ros_probe: Any, graph_bundle: Callable[..., Path], case: str, reason: str
) -> None:
    bundle = graph_bundle(value=float("nan") if case == "nan_model" else ACT,
                          safe_action=(SAFE,))
    policy = OnnxPolicy(bundle)
    slow: list[bool] = []

    def call(obs: np.ndarray) -> np.ndarray:
        if slow:
            time.sleep(0.015)  # 15 ms of a 10 ms period
        return policy(obs)

    node = _node(ros_probe, call, policy.contract, watchdog_s=0.1 if case == "stale" else 1.0,
                 max_misses=3 if case == "overrun" else 1000)
    try:
        good = [0.0, 1.0, 0.0]
        bad = {"nan_obs": [0.0, float("nan"), 0.0], "inf_obs": [float("inf"), 0.0, 0.0],
               "short_obs": [0.0, 1.0]}.get(case, good)
        _feed(ros_probe, good, 0.2)
        if case == "nan_model":
            assert _stopped(ros_probe, reason)()
        else:
            assert ros_probe.last_status()["state"] == "running", ros_probe.last_status()
            assert ros_probe.commands and np.all(np.concatenate(ros_probe.commands) == ACT)
        if case == "estop":
            ros_probe.estop()
        if case == "overrun":
            slow.append(True)
        if case == "stale":
            ok = ros_probe.wait_for(_stopped(ros_probe, reason), timeout=3.0)
        else:
            end = time.monotonic() + 3.0
            while not (ok := _stopped(ros_probe, reason)()) and time.monotonic() < end:
                _feed(ros_probe, bad, 0.02)
        assert ok, ros_probe.last_status()
        assert node.safety.reason == reason
        n = len(ros_probe.commands)
        _feed(ros_probe, good, 0.3)  # good data after a latch changes nothing
        after = ros_probe.commands[n:]
        assert len(after) >= 10, "a stopped node keeps publishing"
        assert np.all(np.concatenate(after) == SAFE)
        assert ros_probe.last_status()["state"] == "stopped"
        sent = np.concatenate(ros_probe.commands)
        assert np.all(np.isfinite(sent)) and set(np.unique(sent)) <= {ACT, SAFE}
    finally:
        node.destroy_node()


def test_deploy_ros_node_reads_joint_states_through_the_map(
    ros_probe: Any, bundle_copy: Path
) -> None:
    contract = Contract.load(bundle_copy)
    mapped = dataclasses.replace(contract, joint_state_map=(
        {"joint": "pole", "field": "position", "transform": "cos"},
        {"joint": "pole", "field": "position", "transform": "sin"},
        {"joint": "pole", "field": "velocity"},
    ))
    mapped.save(bundle_copy)
    policy = OnnxPolicy(bundle_copy)
    node = _node(ros_probe, policy, policy.contract, input="joint-state")
    try:
        theta, omega = 0.7, -1.5
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            # Two publishers' worth: the pole, and an unrelated joint in its own message.
            ros_probe.publish_joint_state(["pole", "wheel"], position=[theta, 3.0],
                                          velocity=[omega, 9.0])
            ros_probe.publish_joint_state(["gripper"], position=[0.1])
            ros_probe.spin(0.01)
        assert ros_probe.last_status()["state"] == "running", ros_probe.last_status()
        expected = policy(np.array([np.cos(theta), np.sin(theta), omega], np.float32))
        assert len(ros_probe.commands) >= 20
        np.testing.assert_allclose(ros_probe.commands[-1], expected, rtol=1e-6)
    finally:
        node.destroy_node()


def test_deploy_ros_node_refuses_joint_state_input_without_a_map(
    ros_probe: Any, pendulum_bundle: Path
) -> None:
    policy = OnnxPolicy(pendulum_bundle)
    with pytest.raises(ValueError, match="needs a joint_state_map"):
        PolicyNode(policy, policy.contract, context=ros_probe.node.context, input="joint-state")


def test_deploy_ros_topics_are_validated() -> None:
    with pytest.raises(ValueError, match="command topic 'kinema cmd' is not a valid"):
        Topics(command="kinema cmd")
    assert Topics(command="/robot/forward_controller/commands").command.endswith("commands")

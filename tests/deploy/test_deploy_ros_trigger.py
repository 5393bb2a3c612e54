"""Over real rclpy: `--trigger observation` (one command per observation, computed on it; the
guard timer only watches silence), in-process and as the two-process loop with the trained
cart-pole policy; and the header-stamp watchdog (a JointState whose stamp is older than the
watchdog latches a stale stop, however often it arrives)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy.contract import Contract
from deploy.runtime import OnnxPolicy

pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")

from deploy.ros import PolicyNode  # noqa: E402  (needs rclpy)

PENDULUM_MAP = (
    {"joint": "pole", "field": "position", "transform": "cos"},
    {"joint": "pole", "field": "position", "transform": "sin"},
    {"joint": "pole", "field": "velocity"},
)


def test_deploy_ros_observation_trigger_commands_each_observation(
    ros_probe: Any, pendulum_bundle: Path
) -> None:
    policy = OnnxPolicy(pendulum_bundle)
    node = PolicyNode(policy, policy.contract, context=ros_probe.node.context,
                      trigger="observation", rate_hz=50.0, watchdog_s=0.3, warmup_steps=0,
                      max_misses=1000)
    ros_probe.add(node)
    try:
        ros_probe.spin(0.5)  # discovery; nothing observed yet: nothing commanded
        assert ros_probe.commands == [] and ros_probe.last_status()["state"] == "waiting"
        rng = np.random.default_rng(0)
        for _ in range(15):
            obs = rng.uniform(-1, 1, 3).astype(np.float32)
            n = len(ros_probe.commands)
            ros_probe.publish_obs(obs.tolist())
            assert ros_probe.wait_for(lambda n=n: len(ros_probe.commands) > n, 2.0)
            np.testing.assert_allclose(ros_probe.commands[n], policy(obs), rtol=1e-6)
            ros_probe.spin(0.005)
            assert len(ros_probe.commands) == n + 1, "one command per observation"
        status = ros_probe.last_status()
        assert status["trigger"] == "observation" and status["state"] == "running"
        # Silent, within the watchdog: the guard timer does not command on old data...
        n = len(ros_probe.commands)
        ros_probe.spin(0.15)
        assert len(ros_probe.commands) == n and node.safety.reason is None
        # ...past it, it latches the stale stop and repeats the safe action every period.
        assert ros_probe.wait_for(lambda: ros_probe.last_status().get("reason") == "stale_obs",
                                  3.0)
        n = len(ros_probe.commands)
        ros_probe.spin(0.3)
        after = ros_probe.commands[n:]
        assert len(after) >= 8 and np.all(np.concatenate(after) == 0.0)
    finally:
        node.destroy_node()


def test_deploy_ros_header_stamp_older_than_the_watchdog_latches_stale(
    ros_probe: Any, bundle_copy: Path
) -> None:
    from builtin_interfaces.msg import Time
    from rclpy.duration import Duration
    from std_msgs.msg import Header

    dataclasses.replace(Contract.load(bundle_copy), joint_state_map=PENDULUM_MAP).save(
        bundle_copy)
    policy = OnnxPolicy(bundle_copy)
    node = PolicyNode(policy, policy.contract, context=ros_probe.node.context,
                      input="joint-state", rate_hz=100.0, watchdog_s=0.25, warmup_steps=0,
                      max_misses=1000)
    ros_probe.add(node)
    clock = ros_probe.node.get_clock()

    def publish(age_s: float, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            stamp = (clock.now() - Duration(seconds=age_s)).to_msg()
            ros_probe.publish_joint_state(["pole"], position=[0.4], velocity=[0.2],
                                          header=Header(stamp=Time(sec=stamp.sec,
                                                                   nanosec=stamp.nanosec)))
            ros_probe.spin(0.01)

    try:
        publish(age_s=0.05, seconds=0.8)  # fresh by its stamp (50 ms in flight): runs
        status = ros_probe.last_status()
        assert status["state"] == "running" and status["reason"] is None, status
        assert status["steps"] >= 20
        fresh = len(ros_probe.commands)
        # Same rate, but the driver republishes a measurement a second old: stale.
        publish(age_s=1.0, seconds=0.5)
        assert ros_probe.wait_for(lambda: ros_probe.last_status().get("reason") == "stale_obs",
                                  3.0), ros_probe.last_status()
        assert node.safety.reason == "stale_obs" and node.observations > fresh
        n = len(ros_probe.commands)
        publish(age_s=0.0, seconds=0.3)  # fresh again: a latched stop stays latched
        after = ros_probe.commands[n:]
        assert len(after) >= 10 and np.all(np.concatenate(after) == 0.0)
        assert ros_probe.last_status()["state"] == "stopped"
    finally:
        node.destroy_node()


def test_deploy_ros_two_processes_with_the_observation_trigger(
    trained_cartpole_bundle: Path, kinema_proc: Any, ros_probe: Any
) -> None:
    """`kinema ros --trigger observation` + `kinema ros-sim --lockstep`: one command per
    observation, from the policy; when the sim is gone the watchdog latches, and the exit says
    so. In lockstep the sim steps on each command, so the episode is the policy's whatever the
    scheduling of three processes on a loaded 2-core box (real time at the sim's own rate is
    the timer-trigger loop test's business: a 200 ms stall there drops the pole)."""
    node = kinema_proc("ros", str(trained_cartpole_bundle), "--trigger", "observation",
                       "--watchdog", "0.5", "--max-misses", "25", "--duration", "60", "--json")
    sim = kinema_proc("ros-sim", "cartpole", "--episodes", "1", "--seed", "3", "--lockstep",
                      "--duration", "60", "--json")
    assert ros_probe.wait_for(lambda: sim.popen.poll() is not None, 50), sim.err_lines
    rc, bridge = sim.finish(timeout=5)
    assert rc == 0, sim.err_lines
    # The sim is gone: no observation within the watchdog latches the stale stop.
    stale = ros_probe.wait_for(lambda: ros_probe.last_status().get("reason") == "stale_obs", 5)
    n = len(ros_probe.commands)
    ros_probe.spin(0.3)
    safe_after = len(ros_probe.commands) - n
    node.sigint()
    code, report = node.finish(timeout=15)
    both = f"bridge {bridge}, node {report}"
    # The policy, not chance, drives the pole (random pushes last ~20 steps), one command a step.
    assert bridge["episodes"] == 1 and bridge["returns"][0] >= 100, both
    assert bridge["lockstep"] and bridge["bad_commands"] == bridge["held_commands"] == 0, both
    assert bridge["commands_received"] >= bridge["steps"], both
    assert stale and safe_after >= 10, both  # the safe action, every period
    assert code == 4 and node.err_lines[-1].startswith("kinema ros: stopped: stale_obs"), (
        node.err_lines)
    assert report["trigger"] == "observation" and report["reason"] == "stale_obs"
    # One step per observation that arrived while running (the first of them starts it).
    assert report["steps"] >= 100 and report["observations"] - report["steps"] <= 2, both
    assert report["deadline_misses"] <= 0.1 * report["steps"], both
    sent = np.concatenate(ros_probe.commands)
    assert np.all(np.isfinite(sent)) and set(np.unique(sent)) <= {0.0, 1.0}

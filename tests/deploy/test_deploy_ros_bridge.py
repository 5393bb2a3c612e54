"""The sim bridge in-process: it waits for the first command, applies commands at its rate,
publishes JointState through a map, and refuses bad commands without stepping on them."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import sim
from deploy.joint_state_map import JointStateAssembler, parse_joint_state_map

pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")

from deploy.ros import SimBridge  # noqa: E402  (needs rclpy)

CARTPOLE_MAP = parse_joint_state_map([
    {"joint": "cart", "field": "position"}, {"joint": "cart", "field": "velocity"},
    {"joint": "pole", "field": "position"}, {"joint": "pole", "field": "velocity"},
], 4)


def _publish_commands(probe: Any, value: list[float], seconds: float) -> None:
    from std_msgs.msg import Float64MultiArray

    pub = probe.node.create_publisher(Float64MultiArray, "/kinema/command", 10)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pub.publish(Float64MultiArray(data=value))
        probe.spin(0.01)
    probe.node.destroy_publisher(pub)


def test_deploy_sim_bridge_publishes_joint_states_and_applies_commands(ros_probe: Any) -> None:
    bridge = SimBridge("cartpole", context=ros_probe.node.context, seed=4, rate_hz=100.0,
                       joint_state_map=CARTPOLE_MAP, log_episodes=False)
    ros_probe.add(bridge)
    try:
        ros_probe.spin(0.3)  # no command yet: the env waits on its first state
        assert bridge.robot.steps == 0 and len(ros_probe.joint_states) >= 5
        first = sim.make("cartpole", seed=4).reset(seed=4)[0]
        a = JointStateAssembler(CARTPOLE_MAP)
        msg = ros_probe.joint_states[-1]
        a.update(msg.name, {"position": msg.position, "velocity": msg.velocity}, 0.0)
        np.testing.assert_allclose(a.observation()[0], first, rtol=1e-6)

        _publish_commands(ros_probe, [7.0], 0.2)  # index 7 of 2 actions: refused, not stepped
        assert bridge.bad_commands > 0 and bridge.robot.steps == 0
        _publish_commands(ros_probe, [1.0], 0.3)
        r = bridge.report()
        assert r["steps"] >= 10 and r["last_command"] == [1.0]
        assert r["steps"] <= 0.3 * 100 + 5  # paced at its rate, not at the command rate
    finally:
        bridge.destroy_node()
        bridge.close()


def test_deploy_sim_bridge_lockstep_steps_once_per_command_and_republishes_when_silent(
    ros_probe: Any,
) -> None:
    from std_msgs.msg import Float64MultiArray

    bridge = SimBridge("cartpole", context=ros_probe.node.context, seed=4, rate_hz=100.0,
                       lockstep=True, log_episodes=False)
    ros_probe.add(bridge)
    pub = ros_probe.node.create_publisher(Float64MultiArray, "/kinema/command", 10)
    try:
        ros_probe.spin(0.2)  # no command yet: the first state, every period, no step
        assert bridge.robot.steps == 0 and bridge.republished == 0
        expected = sim.make("cartpole", seed=4)
        expected.reset(seed=4)
        for i in range(8):  # slower than the rate: lockstep waits for each command
            pub.publish(Float64MultiArray(data=[float(i % 2)]))
            assert ros_probe.wait_for(lambda i=i: bridge.robot.steps == i + 1, 2.0), i
            ros_probe.spin(0.02)
            expected.step(i % 2)
        assert bridge.held_commands == 0 and bridge.robot.steps == 8
        obs = bridge.robot.read()[0]
        np.testing.assert_allclose(obs, expected.unwrapped.state, rtol=1e-6)
        ros_probe.spin(0.3)  # silence: the latest observation again, no step taken
        assert bridge.robot.steps == 8 and bridge.republished >= 3
        pub.publish(Float64MultiArray(data=[7.0]))  # refused, not stepped
        ros_probe.spin(0.05)
        assert bridge.bad_commands == 1 and bridge.robot.steps == 8
        assert bridge.report()["lockstep"] is True
    finally:
        ros_probe.node.destroy_publisher(pub)
        bridge.destroy_node()
        bridge.close()


def test_deploy_sim_bridge_announces_each_new_episode_on_the_reset_topic(ros_probe: Any) -> None:
    """A stateful policy node resets its warm start on this signal, so the bridge must send it
    once per new episode, and never within one."""
    from std_msgs.msg import Float64MultiArray

    bridge = SimBridge("cartpole", context=ros_probe.node.context, seed=0, rate_hz=100.0,
                       lockstep=True, log_episodes=False)
    ros_probe.add(bridge)
    pub = ros_probe.node.create_publisher(Float64MultiArray, "/kinema/command", 10)
    try:
        ros_probe.spin(0.05)
        while bridge.robot.episodes == 0:  # always push right: the pole falls within ~40 steps
            n = bridge.robot.steps
            assert n < 200 and ros_probe.resets == 0, (n, ros_probe.resets)
            pub.publish(Float64MultiArray(data=[1.0]))
            assert ros_probe.wait_for(lambda n=n: bridge.robot.steps == n + 1, 2.0), n
        assert ros_probe.wait_for(lambda: ros_probe.resets == 1, 2.0)
        ros_probe.spin(0.05)
        assert ros_probe.resets == 1 and bridge.robot.episodes == 1
    finally:
        ros_probe.node.destroy_publisher(pub)
        bridge.destroy_node()
        bridge.close()

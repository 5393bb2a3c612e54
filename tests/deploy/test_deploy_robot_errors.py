"""A robot whose own read() or send() raises: the runner latches a stop with the reason
(robot_read_error, robot_send_error) and the error, sends the safe action once where the send
path may still work (after a read error), calls safe_stop(), and `kinema run` reports it in one
line with exit 4. The ROS node does the same for what it can detect of its topics."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy.runtime import OnnxPolicy, Runner, SafetyLayer, SimRobot

SAFE = -0.75
GOOD_OBS = np.array([1.0, 0.0, 0.0], np.float32)


class FailingRobot:
    """Reads and sends work until read number `read_fails` / send number `send_fails`
    raises OSError; `stop_fails` makes safe_stop() raise too."""

    def __init__(self, read_fails: int | None = None, send_fails: int | None = None,
                 stop_fails: bool = False) -> None:
        self.read_fails, self.send_fails, self.stop_fails = read_fails, send_fails, stop_fails
        self.reads = self.send_calls = 0
        self.sent: list[float] = []
        self.stopped = False

    def read(self) -> tuple[np.ndarray, float]:
        self.reads += 1
        if self.reads == self.read_fails:
            raise OSError("bus timeout on the encoder board")
        return GOOD_OBS, time.monotonic()

    def send(self, action: np.ndarray) -> None:
        assert not self.stopped, "a command after safe_stop()"
        self.send_calls += 1
        if self.send_calls == self.send_fails:
            raise OSError("CAN bus off")
        self.sent.append(float(action[0]))

    def safe_stop(self) -> None:
        self.stopped = True
        if self.stop_fails:
            raise RuntimeError("brake relay did not answer")


@pytest.fixture
def policy(graph_bundle: Callable[..., Path]) -> OnnxPolicy:
    return OnnxPolicy(graph_bundle(value=0.5, safe_action=(SAFE,)))


@pytest.mark.bad_input
def test_deploy_runner_read_error_latches_and_sends_the_safe_action_once(
    policy: OnnxPolicy,
) -> None:
    robot = FailingRobot(read_fails=4)
    report = Runner(policy, robot, SafetyLayer(policy.contract), rate_hz=0).run(steps=50)
    assert report.stop_reason == "robot_read_error"
    assert report.fault == "OSError: bus timeout on the encoder board"
    assert robot.sent == [0.5, 0.5, 0.5, SAFE] and robot.stopped  # safe once, then safe_stop
    assert report.steps == 3


@pytest.mark.bad_input
def test_deploy_runner_send_error_latches_and_does_not_trust_send_again(
    policy: OnnxPolicy,
) -> None:
    robot = FailingRobot(send_fails=3)
    report = Runner(policy, robot, SafetyLayer(policy.contract), rate_hz=0).run(steps=50)
    assert report.stop_reason == "robot_send_error" and report.fault == "OSError: CAN bus off"
    assert robot.send_calls == 3 and robot.sent == [0.5, 0.5] and robot.stopped
    assert report.steps == 2  # the failed step is not a step the robot took


@pytest.mark.bad_input
def test_deploy_runner_safe_stop_error_is_recorded_not_raised(policy: OnnxPolicy) -> None:
    robot = FailingRobot(read_fails=2, stop_fails=True)
    report = Runner(policy, robot, SafetyLayer(policy.contract), rate_hz=0).run(steps=50)
    assert report.stop_reason == "robot_read_error" and robot.sent == [0.5, SAFE]
    assert report.fault is not None and "safe_stop() failed (RuntimeError: brake relay" in (
        report.fault)
    done = Runner(policy, FailingRobot(stop_fails=True), SafetyLayer(policy.contract),
                  rate_hz=0).run(steps=3)
    assert done.stop_reason == "robot_stop_error"  # a completed run whose stop failed


@pytest.mark.bad_input
@pytest.mark.parametrize(("method", "reason", "after"), [
    ("read", "robot_read_error", "the safe action was commanded"),
    ("send", "robot_send_error", "no command could be sent after it"),
])
def test_deploy_cli_run_robot_error_is_one_line_and_exit_4(
    pendulum_bundle: Path, exit_code: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, method: str,
    reason: str, after: str,
) -> None:
    real = getattr(SimRobot, method)

    def failing(self: SimRobot, *args: Any) -> Any:
        if self.steps == 7:
            raise OSError("driver gone")
        return real(self, *args)

    monkeypatch.setattr(SimRobot, method, failing)
    assert exit_code(["run", str(pendulum_bundle), "--steps", "50", "--rate", "0",
                      "--json"]) == 4
    out, err = capsys.readouterr()
    report = json.loads(out.strip().splitlines()[-1])
    assert report["stop_reason"] == reason and report["fault"] == "OSError: driver gone"
    assert report["steps"] == 7
    what = {"read": "reading the robot's observation failed",
            "send": "sending the command to the robot failed"}[method]
    assert err.strip() == f"kinema run: stopped: {reason} ({what}: OSError: driver gone); {after}"


# -- the ROS node -------------------------------------------------------------------------------
def _ros_node(probe: Any, bundle: Path, **kw: Any) -> Any:
    pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")
    from deploy.ros import PolicyNode

    policy = OnnxPolicy(bundle)
    node = PolicyNode(policy, policy.contract, context=probe.node.context, rate_hz=100.0,
                      watchdog_s=1.0, warmup_steps=0, max_misses=1000, **kw)
    probe.add(node)
    return node


def _feed(probe: Any, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probe.publish_obs([1.0, 0.0, 0.0])
        probe.spin(0.01)


@pytest.mark.bad_input
def test_deploy_ros_node_unreadable_observation_latches_robot_read_error(
    ros_probe: Any, graph_bundle: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import deploy.ros.node as node_module

    node = _ros_node(ros_probe, graph_bundle(value=0.5, safe_action=(SAFE,)))
    try:
        _feed(ros_probe, 0.3)
        assert ros_probe.last_status()["state"] == "running", ros_probe.last_status()

        def unreadable(msg: Any) -> np.ndarray:
            raise ValueError("message layout the node cannot read")

        monkeypatch.setattr(node_module, "obs_of", unreadable)
        end = time.monotonic() + 5
        while ros_probe.last_status().get("reason") != "robot_read_error" and (
                time.monotonic() < end):
            _feed(ros_probe, 0.02)
        status = ros_probe.last_status()
        assert status["state"] == "stopped"
        assert status["fault"] == "ValueError: message layout the node cannot read"
        n = len(ros_probe.commands)
        _feed(ros_probe, 0.3)
        after = ros_probe.commands[n:]
        assert len(after) >= 10 and np.all(np.concatenate(after) == SAFE)  # still commanding
    finally:
        node.destroy_node()


@pytest.mark.bad_input
def test_deploy_ros_node_publish_error_latches_robot_send_error_and_finishes(
    ros_probe: Any, graph_bundle: Callable[..., Path],
) -> None:
    node = _ros_node(ros_probe, graph_bundle(value=0.5, safe_action=(SAFE,)))
    try:
        _feed(ros_probe, 0.3)
        assert node.steps > 0 and not node.finished
        calls: list[int] = []

        class Broken:
            def publish(self, msg: Any) -> None:
                calls.append(1)
                raise RuntimeError("publisher's context is invalid")

        node._cmd = Broken()
        _feed(ros_probe, 0.2)
        assert node.safety.reason == "robot_send_error" and node.finished
        assert node.safety.fault == "RuntimeError: publisher's context is invalid"
        assert calls == [1]  # not used again, not even for the safe action
        assert ros_probe.wait_for(
            lambda: ros_probe.last_status().get("reason") == "robot_send_error", 3)
    finally:
        node.destroy_node()


@pytest.mark.bad_input
def test_deploy_cli_ros_read_error_is_one_line_and_exit_4(
    ros_probe: Any, graph_bundle: Callable[..., Path], exit_code: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`kinema ros` in this process, the probe feeding it from a thread of its own."""
    import deploy.ros.node as node_module

    bundle = graph_bundle(value=0.5, safe_action=(SAFE,))
    real = node_module.obs_of
    reads: list[int] = []

    def failing(msg: Any) -> np.ndarray:
        reads.append(1)
        if len(reads) > 20:
            raise ValueError("garbled observation")
        return real(msg)

    monkeypatch.setattr(node_module, "obs_of", failing)
    done = threading.Event()

    def feed() -> None:
        while not done.is_set():
            ros_probe.publish_obs([1.0, 0.0, 0.0])
            ros_probe.spin(0.01)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        code = exit_code(["ros", str(bundle), "--rate", "100", "--watchdog", "1",
                          "--max-misses", "1000", "--duration", "2.5", "--json"])
    finally:
        done.set()
        feeder.join(timeout=5)
    out, err = capsys.readouterr()
    assert code == 4, (code, out, err)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["reason"] == "robot_read_error" and report["fault"] == (
        "ValueError: garbled observation")
    assert err.strip().splitlines()[-1] == (
        "kinema ros: stopped: robot_read_error (reading the robot's observation failed: "
        "ValueError: garbled observation); the safe action was commanded")
    assert ros_probe.commands and np.array_equal(ros_probe.commands[-1], [SAFE])


@pytest.mark.bad_input
@pytest.mark.parametrize(("method", "reason"), [("read", "robot_read_error"),
                                                ("send", "robot_send_error")])
def test_deploy_cli_ros_sim_robot_error_is_one_line_and_exit_4(
    ros_domain: int, exit_code: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, method: str, reason: str,
) -> None:
    """The sim bridge is the robot's side of the ROS loop: its robot failing ends it cleanly."""
    def failing(self: SimRobot, *args: Any) -> Any:
        raise OSError("simulator crashed")

    monkeypatch.setattr(SimRobot, method, failing)
    if method == "send":  # the bridge steps only once a command came: give it one
        import deploy.ros.sim_bridge as bridge_module

        real_init = bridge_module.SimBridge.__init__

        def init(self: Any, *args: Any, **kw: Any) -> None:
            real_init(self, *args, **kw)
            self._command, self._fresh = np.zeros(1), True

        monkeypatch.setattr(bridge_module.SimBridge, "__init__", init)
    start = time.monotonic()
    assert exit_code(["ros-sim", "pendulum", "--duration", "20", "--json"]) == 4
    assert time.monotonic() - start < 15  # it ended on the failure, not on its duration
    out, err = capsys.readouterr()
    report = json.loads(out.strip().splitlines()[-1])
    assert report["stop_reason"] == reason and report["fault"] == "OSError: simulator crashed"
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"kinema ros-sim: stopped: {reason} (") and line.endswith(
        "OSError: simulator crashed); the simulated robot stopped"), line

"""Every fault the runner can meet ends the same way: a latched stop whose reason names the
fault, the safe action as the last command, `safe_stop()` called, and no non-finite command
ever sent. Same for Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from deploy.runtime import OnnxPolicy, Runner, SafetyLayer

SAFE = -0.75
GOOD_OBS = np.array([1.0, 0.0, 0.0], np.float32)


class ScriptedRobot:
    """A robot whose k-th observation is `obs(k)`, stamped `age(k)` seconds in the past."""

    def __init__(self, obs: Callable[[int], np.ndarray] = lambda k: GOOD_OBS,
                 age: Callable[[int], float] = lambda k: 0.0) -> None:
        self._obs, self._age = obs, age
        self.reads = 0
        self.sent: list[np.ndarray] = []
        self.stopped = False

    def read(self) -> tuple[np.ndarray, float]:
        k = self.reads
        self.reads += 1
        return self._obs(k), time.monotonic() - self._age(k)

    def send(self, action: np.ndarray) -> None:
        assert not self.stopped, "a command after safe_stop()"
        self.sent.append(np.array(action, copy=True))

    def safe_stop(self) -> None:
        self.stopped = True


def _bad_after(k0: int, value: float) -> Callable[[int], np.ndarray]:
    return lambda k: GOOD_OBS if k < k0 else np.array([1.0, value, 0.0], np.float32)


@pytest.fixture
def policy(graph_bundle: Callable[..., Path]) -> OnnxPolicy:
    return OnnxPolicy(graph_bundle(value=0.5, safe_action=(SAFE,)))


def _check_fail_safe(robot: ScriptedRobot, reason: str, report_reason: str) -> None:
    assert report_reason == reason and robot.stopped
    sent = np.concatenate(robot.sent)
    assert np.all(np.isfinite(sent)), "a non-finite command was sent"
    assert sent[-1] == SAFE, "the last command must be the safe action"


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_deploy_runner_nonfinite_observation(policy: OnnxPolicy, value: float) -> None:
    robot = ScriptedRobot(obs=_bad_after(5, value))
    report = Runner(policy, robot, SafetyLayer(policy.contract), rate_hz=0).run(steps=50)
    _check_fail_safe(robot, "nonfinite_obs", report.stop_reason)
    assert report.steps == 6 and [a[0] for a in robot.sent[:5]] == [0.5] * 5


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_deploy_runner_nonfinite_model_output(
    graph_bundle: Callable[..., Path], value: float
) -> None:
    policy = OnnxPolicy(graph_bundle(value=value, safe_action=(SAFE,)))
    robot = ScriptedRobot()
    report = Runner(policy, robot, SafetyLayer(policy.contract), rate_hz=0).run(steps=50)
    _check_fail_safe(robot, "nonfinite_action", report.stop_reason)
    assert report.steps == 1 and len(robot.sent) == 1


def test_deploy_runner_stale_observation(policy: OnnxPolicy) -> None:
    robot = ScriptedRobot(age=lambda k: 0.0 if k < 5 else 1.0)
    layer = SafetyLayer(policy.contract, watchdog_s=0.5)
    report = Runner(policy, robot, layer, rate_hz=0).run(steps=50)
    _check_fail_safe(robot, "stale_obs", report.stop_reason)


def test_deploy_runner_estop_between_steps(policy: OnnxPolicy) -> None:
    """An e-stop that lands between steps (another thread) still ends in the safe action."""
    layer = SafetyLayer(policy.contract)
    robot = ScriptedRobot()
    real_send = robot.send

    def send(action: np.ndarray) -> None:
        real_send(action)
        if len(robot.sent) == 4:
            layer.estop()  # after the 4th command went out with the policy's action

    robot.send = send  # type: ignore[method-assign]
    report = Runner(policy, robot, layer, rate_hz=0).run(steps=50)
    _check_fail_safe(robot, "estop", report.stop_reason)
    assert [a[0] for a in robot.sent] == [0.5, 0.5, 0.5, 0.5, SAFE]


def test_deploy_runner_overruns(policy: OnnxPolicy) -> None:
    def slow(obs: np.ndarray) -> np.ndarray:
        time.sleep(0.012)  # longer than the 10 ms period
        return policy(obs)

    robot = ScriptedRobot()
    layer = SafetyLayer(policy.contract, max_misses=3)
    report = Runner(slow, robot, layer, rate_hz=100).run(steps=50)
    _check_fail_safe(robot, "deadline_misses", report.stop_reason)
    assert report.deadline_misses == 3 and report.steps == 3
    assert [a[0] for a in robot.sent] == [0.5, 0.5, 0.5, SAFE]


def test_deploy_runner_warmup_forgives_only_the_first_misses(policy: OnnxPolicy) -> None:
    calls: list[int] = []

    def first_slow(obs: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) <= 4:
            time.sleep(0.012)
        return policy(obs)

    robot = ScriptedRobot()
    layer = SafetyLayer(policy.contract, max_misses=3, warmup_steps=5)
    report = Runner(first_slow, robot, layer, rate_hz=100).run(steps=12)
    assert report.stop_reason == "completed" and report.deadline_misses >= 3
    assert robot.sent[-1][0] == 0.5  # a completed run is not a stop: no safe action appended


def test_deploy_runner_ctrl_c_sends_the_safe_action(policy: OnnxPolicy) -> None:
    def interrupted(obs: np.ndarray) -> np.ndarray:
        if robot.reads == 3:
            raise KeyboardInterrupt  # as SIGINT would, mid-step
        return policy(obs)

    robot = ScriptedRobot()
    report = Runner(interrupted, robot, SafetyLayer(policy.contract), rate_hz=0).run(steps=50)
    assert report.stop_reason == "interrupted" and robot.stopped
    assert [a[0] for a in robot.sent] == [0.5, 0.5, SAFE]


"""The fixed-rate runner on SimRobot: step counts, episodes, absolute schedule, JSON report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import sim
from deploy.runtime import OnnxPolicy, Runner, SafetyLayer, SimRobot, run_bundle

REPORT_KEYS = {
    "returns", "return_mean", "return_std", "episodes", "steps", "latency_p50_us",
    "latency_p99_us", "inference_p50_us", "inference_p99_us", "jitter_p99_us", "deadline_misses",
    "stop_reason", "fault", "wall_s",
}


def test_unpaced_run_reports_the_steps_it_ran(pendulum_bundle: Path) -> None:
    policy = OnnxPolicy(pendulum_bundle)
    robot = SimRobot("pendulum", seed=0)
    report = Runner(policy, robot, SafetyLayer(policy.contract), rate_hz=0).run(steps=250)
    assert report.steps == 250 and robot.steps == 250
    assert report.stop_reason == "completed" and report.deadline_misses == 0
    assert report.episodes == 1 and len(report.returns) == 1  # pendulum episodes are 200 steps
    assert report.jitter_p99_us is None
    assert 0 < report.latency_p50_us <= report.latency_p99_us
    # inference is part of the step: never slower than the step that contains it
    assert report.inference_p50_us is not None and report.inference_p99_us is not None
    assert 0 < report.inference_p50_us <= report.inference_p99_us
    assert report.inference_p50_us < report.latency_p50_us
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert set(data) == REPORT_KEYS and data["steps"] == 250


def test_episodes_and_returns(cartpole_bundle: Path) -> None:
    report = run_bundle(cartpole_bundle, "cartpole", rate_hz=0, episodes=3)
    assert report.episodes == 3 and len(report.returns) == 3
    assert sum(report.returns) == report.steps  # cartpole pays 1 per step
    assert report.return_mean == pytest.approx(np.mean(report.returns))
    assert report.return_std == pytest.approx(np.std(report.returns))


def test_absolute_schedule_does_not_drift(pendulum_bundle: Path) -> None:
    policy = OnnxPolicy(pendulum_bundle)

    def slow(obs: np.ndarray) -> np.ndarray:
        time.sleep(0.002)  # 2 ms of a 5 ms period: sleeping a period after each step would drift
        return policy(obs)

    robot = SimRobot("pendulum", seed=0)
    layer = SafetyLayer(policy.contract, max_misses=1000)  # a loaded CI box may miss a few
    report = Runner(slow, robot, layer, rate_hz=200).run(steps=100)
    assert report.steps == 100 and report.stop_reason == "completed"
    # Ticks 0..99 at 5 ms: the last starts at 0.495 s. A relative sleep would need >= 0.7 s.
    assert 0.49 <= report.wall_s < 0.62
    assert report.jitter_p99_us is not None and report.jitter_p99_us >= 0


def test_sim_robot_maps_robot_units_back_to_the_env() -> None:
    robot = SimRobot("pendulum", seed=7)
    env = sim.make("pendulum", seed=7)
    for torque, normalized in ((2.0, 1.0), (-1.0, -0.5), (0.5, 0.25)):
        robot.send(np.array([torque], np.float32))
        expected, *_ = env.step(np.array([normalized], np.float32))
        np.testing.assert_allclose(robot.read()[0], expected, atol=1e-6)


def test_sim_robot_rounds_discrete_commands() -> None:
    robot = SimRobot("cartpole", seed=3)
    env = sim.make("cartpole", seed=3)
    for command, index in ((0.6, 1), (0.2, 0), (1.0, 1)):
        robot.send(np.array([command], np.float32))
        expected, *_ = env.step(index)
        np.testing.assert_array_equal(robot.read()[0], expected)


def test_run_bundle_refuses_a_mismatched_env(pendulum_bundle: Path) -> None:
    with pytest.raises(ValueError, match=r"bundle \(made for 'pendulum'\) needs \(3,\)"):
        run_bundle(pendulum_bundle, "cartpole", rate_hz=0, steps=5)


def test_run_bundle_defaults_to_one_episode_at_rate_zero(pendulum_bundle: Path) -> None:
    report = run_bundle(pendulum_bundle, "pendulum", rate_hz=0)
    assert report.episodes == 1 and report.steps == 200


def test_bad_rate_is_refused(pendulum_bundle: Path) -> None:
    policy = OnnxPolicy(pendulum_bundle)
    with pytest.raises(ValueError, match="rate_hz is -1"):
        Runner(policy, SimRobot("pendulum"), SafetyLayer(policy.contract), rate_hz=-1)

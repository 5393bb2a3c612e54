"""The safety layer fails closed: every fault latches the safe action, nothing non-finite leaves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from deploy.contract import Contract
from deploy.runtime import OnnxPolicy, Runner, SafetyLayer, SimRobot

SAFE = np.array([0.25], np.float32)


@pytest.fixture
def contract(contract_for: Callable[..., Contract]) -> Contract:
    return contract_for(b"graph", safe_action=(0.25,))


def _const(value: float | list[float]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda obs: np.asarray(value if isinstance(value, list) else [value], np.float32)


OK_OBS = np.zeros(3, np.float32)


def _assert_latched(layer: SafetyLayer, reason: str) -> None:
    assert layer.latched and layer.reason == reason
    for _ in range(3):  # latched: the safe action forever, even for good inputs
        out = layer.act(_const(1.0), OK_OBS, stamp=0.0, now=0.0)
        np.testing.assert_array_equal(out, SAFE)


@pytest.mark.parametrize(
    ("obs", "policy", "reason"),
    [
        (np.array([0.0, np.nan, 0.0]), _const(1.0), "nonfinite_obs"),
        (np.array([0.0, np.inf, 0.0]), _const(1.0), "nonfinite_obs"),
        (OK_OBS, _const(float("nan")), "nonfinite_action"),
        (OK_OBS, _const(float("-inf")), "nonfinite_action"),
        (np.zeros(4), _const(1.0), "bad_shape"),
        (OK_OBS, _const([1.0, 1.0]), "bad_shape"),
        (OK_OBS, lambda obs: 1 / 0, "policy_error"),
    ],
)
def test_faults_latch_the_safe_action(
    contract: Contract, obs: np.ndarray, policy: Callable, reason: str
) -> None:
    layer = SafetyLayer(contract)
    out = layer.act(policy, obs, stamp=0.0, now=0.0)
    np.testing.assert_array_equal(out, SAFE)
    _assert_latched(layer, reason)
    layer.reset()
    assert not layer.latched
    assert layer.act(_const(1.0), OK_OBS, stamp=0.0, now=0.0)[0] == 1.0


def test_stale_observation_latches(contract: Contract) -> None:
    layer = SafetyLayer(contract, watchdog_s=0.1)
    assert layer.act(_const(1.0), OK_OBS, stamp=10.0, now=10.05)[0] == 1.0
    np.testing.assert_array_equal(layer.act(_const(1.0), OK_OBS, stamp=10.0, now=10.2), SAFE)
    _assert_latched(layer, "stale_obs")


def test_estop_latches(contract: Contract) -> None:
    layer = SafetyLayer(contract)
    layer.estop()
    _assert_latched(layer, "estop")


def test_only_repeated_deadline_misses_latch(contract: Contract) -> None:
    layer = SafetyLayer(contract, max_misses=3)
    for missed in (True, True, False, True, True):
        layer.deadline(missed)
    assert not layer.latched
    layer.deadline(True)
    _assert_latched(layer, "deadline_misses")


def test_actions_are_clipped_and_rate_limited(contract: Contract) -> None:
    layer = SafetyLayer(contract, max_delta=0.5)
    outs = [layer.act(_const(100.0), OK_OBS, 0.0, 0.0)[0] for _ in range(5)]
    assert outs == pytest.approx([0.75, 1.25, 1.75, 2.0, 2.0])  # ramps from the safe 0.25
    assert layer.act(_const(-100.0), OK_OBS, 0.0, 0.0)[0] == pytest.approx(1.5)


def test_discrete_actions_are_rounded_to_valid_indices(
    contract_for: Callable[..., Contract],
) -> None:
    c = contract_for(b"g", discrete=True, n_actions=3, action_low=(0.0,), action_high=(2.0,))
    layer = SafetyLayer(c)
    outs = [layer.filter(np.array([v]))[0] for v in (0.6, 1.4, 7.0, -3.0)]
    assert outs == [1.0, 1.0, 2.0, 0.0]


def test_never_emits_nonfinite_or_out_of_bounds(contract: Contract) -> None:
    rng = np.random.default_rng(0)
    specials = [np.nan, np.inf, -np.inf, 1e30, -1e30]
    layer = SafetyLayer(contract, max_delta=0.3, watchdog_s=1.0)
    for i in range(300):
        if i % 40 == 0:
            layer.reset()
        obs = rng.normal(0, 1, int(rng.choice([3, 3, 3, 2]))).astype(np.float32)
        if rng.random() < 0.1:
            obs[0] = rng.choice(specials)
        act = rng.normal(0, 5, int(rng.choice([1, 1, 1, 2])))
        if rng.random() < 0.1:
            act[0] = rng.choice(specials)
        out = layer.act(_const(list(act)), obs, stamp=0.0, now=float(rng.uniform(0, 1.2)))
        assert out.shape == (1,) and np.all(np.isfinite(out))
        assert -2.0 <= out[0] <= 2.0
        if layer.latched:
            np.testing.assert_array_equal(out, SAFE)


class _OldStampRobot:
    """A robot whose observations stop updating after 3 reads (a dead sensor driver)."""

    def __init__(self) -> None:
        self.sent: list[np.ndarray] = []
        self.stopped = False
        self._reads = 0

    def read(self) -> tuple[np.ndarray, float]:
        import time

        self._reads += 1
        age = 0.0 if self._reads <= 3 else 5.0
        return OK_OBS.copy(), time.monotonic() - age

    def send(self, action: np.ndarray) -> None:
        self.sent.append(action)

    def safe_stop(self) -> None:
        self.stopped = True


def test_runner_stops_on_stale_observations(contract: Contract) -> None:
    robot = _OldStampRobot()
    report = Runner(_const(1.0), robot, SafetyLayer(contract, watchdog_s=0.5), rate_hz=0).run(
        steps=50
    )
    assert report.stop_reason == "stale_obs" and report.steps == 4 and robot.stopped
    assert [a[0] for a in robot.sent] == [1.0, 1.0, 1.0, 0.25]


def test_runner_stops_on_repeated_deadline_misses(contract: Contract) -> None:
    import time

    def slow(obs: np.ndarray) -> np.ndarray:
        time.sleep(0.012)  # longer than the 10 ms period
        return np.ones(1, np.float32)

    robot = _OldStampRobot()
    layer = SafetyLayer(contract, max_misses=3)
    report = Runner(slow, robot, layer, rate_hz=100).run(steps=50)
    assert report.stop_reason == "deadline_misses" and report.deadline_misses == 3
    assert report.steps == 3 and robot.stopped


def test_runner_stops_on_estop(contract: Contract) -> None:
    layer = SafetyLayer(contract)
    calls = []

    def policy(obs: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 5:
            layer.estop()  # as an e-stop topic callback would, mid-step
        return np.ones(1, np.float32)

    robot = _OldStampRobot()
    report = Runner(policy, robot, layer, rate_hz=0).run(steps=50)
    assert report.stop_reason == "estop" and report.steps == 5 and robot.stopped
    assert robot.sent[-1][0] == 0.25


def test_nan_graph_on_sim_robot_latches(graph_bundle: Callable[..., Path]) -> None:
    policy = OnnxPolicy(graph_bundle(value=float("nan")))
    robot = SimRobot("pendulum", seed=0)
    report = Runner(policy, robot, SafetyLayer(policy.contract), rate_hz=0).run(steps=20)
    assert report.stop_reason == "nonfinite_action" and report.steps == 1
    assert robot.stopped and robot.steps == 1  # one step, with the safe action

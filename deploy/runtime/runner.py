"""The fixed-rate control loop: read, act through the safety layer, send, on a fixed grid.

Step k is scheduled at start + k * period (an absolute schedule), so sleeping late once does
not push every later step back, as `sleep(period)` after each step would. The loop sleeps until
~200 us before a deadline and busy-waits the rest, because OS sleeps overshoot by tens to
hundreds of microseconds. A step that finishes after the next deadline is a deadline miss; the
loop then skips to the next tick still ahead (keeping the grid) and tells the safety layer,
which latches a stop after `max_misses` in a row. A run that ends in a latched stop or on
Ctrl-C sends the safe action as its last command (unless the last step already sent it), and
whatever ends the run, the robot's `safe_stop()` is called. A robot whose `read()` or `send()`
raises latches a stop too (`robot_read_error`, `robot_send_error`, the error kept as the
report's `fault`): after a read error the safe action is still sent once, after a send error
the send path is not trusted again; `safe_stop()` follows either way.

A policy with a `reset()` (OnnxPolicy: a stateful bundle's carried state back to its initial
values) is reset at every episode start: when a run starts, and after each episode a robot
that counts episodes (`EpisodicRobot`) finishes, between steps, outside the timed step.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from deploy.contract import Contract
from deploy.runtime.policy import OnnxPolicy
from deploy.runtime.robot import EpisodicRobot, Robot, SimRobot
from deploy.runtime.safety import (
    ROBOT_READ_ERROR,
    ROBOT_SEND_ERROR,
    ROBOT_STOP_ERROR,
    SafetyLayer,
    fault_text,
)
from deploy.runtime.stats import percentile_us

COMPLETED = "completed"
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RunReport:
    """What a run did; the keys match every `kinema ... --json` output."""

    returns: list[float]
    """Returns of the episodes finished during the run."""
    return_mean: float | None
    return_std: float | None
    episodes: int
    steps: int
    latency_p50_us: float | None
    """Compute latency per step: observation read -> action sent."""
    latency_p99_us: float | None
    inference_p50_us: float | None
    """Policy inference alone (onnxruntime call), without the robot I/O and safety checks."""
    inference_p99_us: float | None
    jitter_p99_us: float | None
    """Actual wake time - scheduled time; None when the loop is unpaced (rate 0)."""
    deadline_misses: int
    stop_reason: str
    """"completed", "interrupted", or the safety layer's latch reason (safety.REASONS)."""
    fault: str | None
    """The error behind the stop (`Type: message`: a robot or policy that raised), else None."""
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what `kinema run --json` prints): plain floats, ints, None."""
        return asdict(self)


class Runner:
    """Runs `policy` on `robot` through `safety` at `rate_hz` (0: as fast as possible)."""

    def __init__(
        self,
        policy: Callable[[np.ndarray], np.ndarray],
        robot: Robot,
        safety: SafetyLayer,
        rate_hz: float,
        spin_s: float = 200e-6,
    ) -> None:
        """spin_s: busy-wait this long before each deadline (longer on hosts whose sleeps
        overshoot more; costs one core)."""
        if not (math.isfinite(rate_hz) and rate_hz >= 0):
            raise ValueError(f"rate_hz is {rate_hz}; expected a finite rate >= 0 (0 runs unpaced)")
        if not spin_s >= 0:
            raise ValueError(f"spin_s is {spin_s}; expected seconds >= 0")
        self.policy = policy
        self.robot = robot
        self.safety = safety
        self.period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self.spin_s = spin_s
        self._notes: list[str] = []  # what failed while stopping, after the first fault

    def _read(self) -> tuple[np.ndarray, float] | None:
        """The robot's observation and stamp, or None (and a latched stop) when it raised."""
        try:
            obs, stamp = self.robot.read()
        except Exception as e:  # a driver error must stop the robot, not crash past the stop
            self.safety.estop(ROBOT_READ_ERROR, e)
            return None
        return obs, stamp

    def _send(self, action: np.ndarray) -> bool:
        """Send `action`; False (and a latched stop) when the robot's send raised."""
        try:
            self.robot.send(action)
        except Exception as e:
            self.safety.estop(ROBOT_SEND_ERROR, e)
            return False
        return True

    def _stop_robot(self, *, safe_first: bool) -> None:
        """End of a run: the safe action first when the last command was not already it (a
        latched stop or Ctrl-C) and the send path still works, then the robot's own safe stop,
        whatever happens. Their errors are recorded, never raised past the stop."""
        try:
            if safe_first:
                try:
                    self.robot.send(self.safety.safe_action)
                except Exception as e:
                    self._notes.append(f"the safe action could not be sent ({fault_text(e)})")
        finally:
            try:
                self.robot.safe_stop()
            except Exception as e:
                self.safety.estop(ROBOT_STOP_ERROR, e)
                if self.safety.reason != ROBOT_STOP_ERROR:
                    self._notes.append(f"safe_stop() failed ({fault_text(e)})")

    def run(self, steps: int | None = None, episodes: int | None = None) -> RunReport:
        """Run until `steps` steps or `episodes` finished episodes (whichever comes first),
        a latched stop, or Ctrl-C; with neither limit, until a stop."""
        for name, value in (("steps", steps), ("episodes", episodes)):
            if value is not None and value < 1:
                raise ValueError(f"{name} is {value}; expected 1 or more")
        returns = self.robot.returns if isinstance(self.robot, EpisodicRobot) else None
        if episodes is not None and returns is None:
            raise ValueError("episodes needs a robot that counts episodes (a SimRobot); "
                             "give steps instead")
        returns = [] if returns is None else returns
        first_return = len(returns)
        loop = _Loop(self.period, self.policy)
        reset: Callable[[], None] = getattr(self.policy, "reset", None) or _nothing
        finished = len(returns)
        self._notes = []
        stop_reason = COMPLETED
        start = time.perf_counter()
        try:
            reset()  # an episode starts with the run
            while (steps is None or len(loop.latencies) < steps) and (
                episodes is None or len(returns) - first_return < episodes
            ):
                if not self._step(loop, start):
                    break
                if len(returns) != finished:  # the robot started a new episode
                    finished = len(returns)
                    reset()
        except KeyboardInterrupt:
            stop_reason = INTERRUPTED
        finally:
            self._stop_robot(safe_first=not loop.sent_safe and not loop.send_failed and (
                self.safety.latched or stop_reason == INTERRUPTED))
        wall = time.perf_counter() - start
        if self.safety.reason is not None:
            stop_reason = self.safety.reason
        faults = [f for f in (self.safety.fault, *self._notes) if f]
        return _report(returns[first_return:], loop, stop_reason, "; ".join(faults) or None,
                       wall)

    def _step(self, loop: _Loop, start: float) -> bool:
        """One step on the grid; False when the run must stop (a latched stop)."""
        safety, period = self.safety, loop.period
        if period:
            deadline = start + loop.tick * period
            loop.jitters.append(_sleep_until(deadline, self.spin_s) - deadline)
        if safety.latched:  # an e-stop arrived between steps
            return False
        t0 = time.perf_counter()
        read = self._read()
        if read is None:
            return False
        action = safety.act(loop.policy, read[0], read[1])
        loop.sent_safe = safety.latched  # latched within act: `action` is the safe action
        if not self._send(action):
            loop.sent_safe, loop.send_failed = False, True
            return False
        t1 = time.perf_counter()
        loop.latencies.append(t1 - t0)
        if period:
            loop.tick += 1
            missed = t1 > start + loop.tick * period
            if missed:
                loop.misses += 1
                loop.tick = math.ceil((t1 - start) / period)  # next tick still ahead
            safety.deadline(missed)
        return not safety.latched


class _Loop:
    """One run's bookkeeping: the grid position and what was measured."""

    def __init__(self, period: float, policy: Callable[[np.ndarray], np.ndarray]) -> None:
        self.period = period
        self.inferences: list[float] = []
        self.policy = _timed(policy, self.inferences)
        self.latencies: list[float] = []
        self.jitters: list[float] = []
        self.misses = 0
        self.tick = 0
        self.sent_safe = False  # was the last command sent the safe action of a latched stop?
        self.send_failed = False  # the robot's send raised: the send path is not trusted


def run_bundle(
    bundle_dir: str | os.PathLike[str],
    env: str | None = None,
    rate_hz: float | None = None,
    episodes: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    max_delta: float | None = None,
    watchdog_s: float | None = None,
) -> RunReport:
    """Play a bundle on `SimRobot(env)` at the contract's rate unless `rate_hz` is given.

    `env` defaults to the env the bundle was trained on (the contract's).
    With neither `episodes` nor `steps`, one episode. The env must match the bundle's
    observation and action sizes, and its action bounds must contain the contract's (the
    contract promises the robot takes every command within them); its name may differ (a
    randomized variant, say).
    """
    policy = OnnxPolicy(bundle_dir)
    c = policy.contract
    env = c.env if env is None else env
    robot = SimRobot(env, seed=seed)
    try:
        _check_robot_fits(c, robot)
        if episodes is None and steps is None:
            episodes = 1
        # Warm-up: the first steps' deadline misses (first calls allocate) are not faults.
        safety = SafetyLayer(c, max_delta=max_delta, watchdog_s=watchdog_s, warmup_steps=5)
        runner = Runner(policy, robot, safety, c.rate_hz if rate_hz is None else rate_hz)
        return runner.run(steps=steps, episodes=episodes)
    finally:
        robot.close()


def _check_robot_fits(c: Contract, robot: SimRobot) -> None:
    """The env takes what the contract promises: its sizes, its kind, and bounds that contain
    the contract's (narrower contract bounds are fine: those commands are the robot's too)."""
    info, env = robot.info, robot.env_name
    wanted = c.obs_shape or (c.obs_dim,)  # frames: the robot reads them flattened
    if tuple(info.obs_shape) != tuple(wanted) or robot.act_dim != c.act_dim or (
        info.discrete != c.discrete
    ):
        kind = "discrete" if c.discrete else "continuous"
        raise ValueError(f"env {env!r} has observations {info.obs_shape} and "
                         f"{robot.act_dim} action(s); the bundle (made for {c.env!r}) needs "
                         f"{tuple(wanted)} and {c.act_dim} {kind} action(s)")
    low, high = robot.action_bounds
    tol = 1e-9 * np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
    wide = (np.asarray(c.action_low) < low - tol) | (np.asarray(c.action_high) > high + tol)
    if np.any(wide):
        dims = ", ".join(c.action_names[i] for i in np.flatnonzero(wide))
        raise ValueError(f"the bundle's action bounds {list(c.action_low)}..{list(c.action_high)} "
                         f"are wider than env {env!r}'s {low.tolist()}..{high.tolist()} ({dims}): "
                         "the contract promises commands this robot cannot take; run it against "
                         f"an env whose bounds contain the contract's, or export it for {env!r}")


def _nothing() -> None:
    """The reset of a policy that carries nothing between calls."""


def _timed(
    policy: Callable[[np.ndarray], np.ndarray], sink: list[float]
) -> Callable[[np.ndarray], np.ndarray]:
    """`policy`, appending each call's duration to `sink` (a call that raises is not timed:
    the safety layer latches on it and the step's latency records it)."""
    clock = time.perf_counter

    def call(obs: np.ndarray) -> np.ndarray:
        t0 = clock()
        out = policy(obs)
        sink.append(clock() - t0)
        return out

    return call


def _sleep_until(deadline: float, spin_s: float) -> float:
    """Sleep, then busy-wait the last `spin_s`; returns the wake time (perf_counter)."""
    remaining = deadline - time.perf_counter()
    if remaining > spin_s:
        time.sleep(remaining - spin_s)
    now = time.perf_counter()
    while now < deadline:
        now = time.perf_counter()
    return now


def _report(
    returns: list[float], loop: _Loop, stop_reason: str, fault: str | None, wall: float
) -> RunReport:
    pct_us = percentile_us
    return RunReport(
        returns=[float(r) for r in returns],
        return_mean=float(np.mean(returns)) if returns else None,
        return_std=float(np.std(returns)) if returns else None,
        episodes=len(returns),
        steps=len(loop.latencies),
        latency_p50_us=pct_us(loop.latencies, 50),
        latency_p99_us=pct_us(loop.latencies, 99),
        inference_p50_us=pct_us(loop.inferences, 50),
        inference_p99_us=pct_us(loop.inferences, 99),
        jitter_p99_us=pct_us(loop.jitters, 99),
        deadline_misses=loop.misses,
        stop_reason=stop_reason,
        fault=fault,
        wall_s=wall,
    )

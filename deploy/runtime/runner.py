"""The fixed-rate control loop: read, act through the safety layer, send, on a fixed grid.

Step k is scheduled at start + k * period (an absolute schedule), so sleeping late once does
not push every later step back, as `sleep(period)` after each step would. The loop sleeps until
~200 us before a deadline and busy-waits the rest, because OS sleeps overshoot by tens to
hundreds of microseconds. A step that finishes after the next deadline is a deadline miss; the
loop then skips to the next tick still ahead (keeping the grid) and tells the safety layer,
which latches a stop after `max_misses` in a row. A run that ends in a latched stop or on
Ctrl-C sends the safe action as its last command (unless the last step already sent it), and
whatever ends the run, the robot's `safe_stop()` is called.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from deploy.runtime.policy import OnnxPolicy
from deploy.runtime.robot import EpisodicRobot, Robot, SimRobot
from deploy.runtime.safety import SafetyLayer
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
    """"completed", "interrupted", or the safety layer's latch reason."""
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
            raise ValueError(f"rate_hz is {rate_hz}; expected a rate >= 0 (0 runs unpaced)")
        if not spin_s >= 0:
            raise ValueError(f"spin_s is {spin_s}; expected seconds >= 0")
        self.policy = policy
        self.robot = robot
        self.safety = safety
        self.period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self.spin_s = spin_s

    def _stop_robot(self, *, safe_first: bool) -> None:
        """End of a run: the safe action first when the last command was not already it (a
        latched stop or Ctrl-C), then the robot's own safe stop, whatever happens."""
        try:
            if safe_first:
                self.robot.send(self.safety.safe_action)
        finally:
            self.robot.safe_stop()

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
        latencies: list[float] = []
        inferences: list[float] = []
        jitters: list[float] = []
        misses = 0
        stop_reason = COMPLETED
        robot, safety, period = self.robot, self.safety, self.period
        policy = _timed(self.policy, inferences)

        sent_safe = False  # was the last command sent the safe action of a latched stop?
        start = time.perf_counter()
        tick = 0
        try:
            while (steps is None or len(latencies) < steps) and (
                episodes is None or len(returns) - first_return < episodes
            ):
                if period:
                    deadline = start + tick * period
                    jitters.append(_sleep_until(deadline, self.spin_s) - deadline)
                if safety.latched:  # an e-stop arrived between steps
                    break
                t0 = time.perf_counter()
                obs, stamp = robot.read()
                action = safety.act(policy, obs, stamp)
                sent_safe = safety.latched  # latched within act: `action` is the safe action
                robot.send(action)
                t1 = time.perf_counter()
                latencies.append(t1 - t0)
                if period:
                    tick += 1
                    missed = t1 > start + tick * period
                    if missed:
                        misses += 1
                        tick = math.ceil((t1 - start) / period)  # next tick still ahead
                    safety.deadline(missed)
                if safety.latched:
                    break
        except KeyboardInterrupt:
            stop_reason = INTERRUPTED
        finally:
            self._stop_robot(safe_first=not sent_safe and (
                safety.latched or stop_reason == INTERRUPTED))
        wall = time.perf_counter() - start
        if safety.reason is not None:
            stop_reason = safety.reason
        return _report(returns[first_return:], latencies, inferences, jitters, misses,
                       stop_reason, wall)


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
    observation and action sizes; its name may differ (a randomized variant, say).
    """
    policy = OnnxPolicy(bundle_dir)
    c = policy.contract
    env = c.env if env is None else env
    robot = SimRobot(env, seed=seed)
    try:
        info = robot.info
        if info.obs_shape != (c.obs_dim,) or robot.act_dim != c.act_dim or (
            info.discrete != c.discrete
        ):
            kind = "discrete" if c.discrete else "continuous"
            raise ValueError(f"env {env!r} has observations {info.obs_shape} and "
                             f"{robot.act_dim} action(s); the bundle (made for {c.env!r}) needs "
                             f"({c.obs_dim},) and {c.act_dim} {kind} action(s)")
        if episodes is None and steps is None:
            episodes = 1
        # Warm-up: the first steps' deadline misses (first calls allocate) are not faults.
        safety = SafetyLayer(c, max_delta=max_delta, watchdog_s=watchdog_s, warmup_steps=5)
        runner = Runner(policy, robot, safety, c.rate_hz if rate_hz is None else rate_hz)
        return runner.run(steps=steps, episodes=episodes)
    finally:
        robot.close()


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
    returns: list[float],
    latencies: list[float],
    inferences: list[float],
    jitters: list[float],
    misses: int,
    stop_reason: str,
    wall: float,
) -> RunReport:
    pct_us = percentile_us
    return RunReport(
        returns=[float(r) for r in returns],
        return_mean=float(np.mean(returns)) if returns else None,
        return_std=float(np.std(returns)) if returns else None,
        episodes=len(returns),
        steps=len(latencies),
        latency_p50_us=pct_us(latencies, 50),
        latency_p99_us=pct_us(latencies, 99),
        inference_p50_us=pct_us(inferences, 50),
        inference_p99_us=pct_us(inferences, 99),
        jitter_p99_us=pct_us(jitters, 99),
        deadline_misses=misses,
        stop_reason=stop_reason,
        wall_s=wall,
    )

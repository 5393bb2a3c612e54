"""The safety layer between a policy and a robot: it fails closed.

Every observation is checked (shape, finite, fresh) before the policy sees it, and every action
(shape, finite) before the robot does; actions are clipped to the contract's bounds and, when
asked, their change per step is limited. Anything wrong latches a stop: from then on the layer
outputs the contract's `safe_action` until `reset()`, so one bad value never becomes a command
and a fault cannot un-trip itself. The first cause is kept as `reason`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from deploy.contract import Contract

NONFINITE_OBS = "nonfinite_obs"
NONFINITE_ACTION = "nonfinite_action"
BAD_SHAPE = "bad_shape"
STALE_OBS = "stale_obs"
DEADLINE_MISSES = "deadline_misses"
ESTOP = "estop"
POLICY_ERROR = "policy_error"
ROBOT_READ_ERROR = "robot_read_error"
ROBOT_SEND_ERROR = "robot_send_error"
ROBOT_STOP_ERROR = "robot_stop_error"
REASONS = (NONFINITE_OBS, NONFINITE_ACTION, BAD_SHAPE, STALE_OBS, DEADLINE_MISSES, ESTOP,
           POLICY_ERROR, ROBOT_READ_ERROR, ROBOT_SEND_ERROR, ROBOT_STOP_ERROR)
"""Why a stop latched: every latch reason the safety layer, the runner and the ROS node use."""
REASON_TEXT = {
    NONFINITE_OBS: "an observation was not finite",
    NONFINITE_ACTION: "the policy returned a non-finite action",
    BAD_SHAPE: "an observation or action had the wrong size",
    STALE_OBS: "the observation was older than the watchdog",
    DEADLINE_MISSES: "too many deadline misses in a row",
    ESTOP: "the e-stop was triggered",
    POLICY_ERROR: "the policy raised an error",
    ROBOT_READ_ERROR: "reading the robot's observation failed",
    ROBOT_SEND_ERROR: "sending the command to the robot failed",
    ROBOT_STOP_ERROR: "the robot's safe_stop() failed",
}
"""One phrase per reason, for the one line a command prints when a run ends in a stop."""


def describe_stop(reason: str, fault: str | None = None) -> str:
    """'stale_obs (the observation was older than the watchdog)', with the fault's own
    message when there is one: what `kinema run` and `kinema ros` print when a stop latched."""
    text = REASON_TEXT.get(reason, "a latched stop")
    if fault:
        text = f"{text}: {fault}"
    return f"{reason} ({text})"


class SafetyLayer:
    """Checks, clips and rate-limits actions; latches the safe action on any fault.

    max_delta: largest change of each action dimension per step, robot units (continuous only).
    watchdog_s: an observation older than this (by its timestamp) is stale.
    max_misses: this many consecutive deadline misses latch a stop.
    warmup_steps: deadline misses of the first this many steps are not held against the loop
        (first inference calls allocate, a ROS node's first publishes wait on discovery);
        every other check is armed from the first step.
    """

    def __init__(
        self,
        contract: Contract,
        max_delta: float | Sequence[float] | None = None,
        watchdog_s: float | None = None,
        max_misses: int = 3,
        warmup_steps: int = 0,
    ) -> None:
        if max_delta is not None:
            if contract.discrete:
                raise ValueError("max_delta limits a continuous action; this contract is discrete")
            delta = np.broadcast_to(np.asarray(max_delta, np.float64), (contract.act_dim,))
            if not np.all(np.isfinite(delta) & (delta > 0)):
                raise ValueError(f"max_delta {max_delta} must be positive finite number(s)")
        if watchdog_s is not None and not (math.isfinite(watchdog_s) and watchdog_s > 0):
            raise ValueError(f"watchdog_s is {watchdog_s}; expected a positive number of seconds")
        if max_misses < 1:
            raise ValueError(f"max_misses is {max_misses}; expected 1 or more")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps is {warmup_steps}; expected 0 or more")
        self.warmup_steps = warmup_steps
        self.contract = contract
        self.max_delta: np.ndarray | None = None if max_delta is None else delta.copy()
        self.watchdog_s = watchdog_s
        self.max_misses = max_misses
        self._low = np.asarray(contract.action_low, np.float64)
        self._high = np.asarray(contract.action_high, np.float64)
        self._safe = np.asarray(contract.safe_action, np.float32)
        self.reason: str | None = None
        self.fault: str | None = None
        """The error behind the latched stop (`Type: message`), when one raised; else None."""
        self.reset()

    @property
    def latched(self) -> bool:
        return self.reason is not None

    @property
    def safe_action(self) -> np.ndarray:
        return self._safe.copy()

    def reset(self) -> None:
        """Clear a latched stop; the next action is rate-limited from the safe action."""
        self.reason = None
        self.fault = None
        self.misses = 0
        self._deadlines = 0  # deadlines seen since reset, for the warm-up
        self._last = self._safe.astype(np.float64)

    def estop(self, reason: str = ESTOP, fault: BaseException | str | None = None) -> None:
        """Latch a stop on request (an e-stop button or topic), or for a fault seen outside the
        layer (a robot whose read or send raised: `fault`); safe to call from any thread."""
        self._latch(reason, fault)

    def act(
        self,
        policy: Callable[[np.ndarray], np.ndarray],
        obs: np.ndarray,
        stamp: float,
        now: float | None = None,
    ) -> np.ndarray:
        """Checked observation -> policy -> filtered action; the safe action when latched."""
        checked = self.check_obs(obs, stamp, now)
        if checked is None:
            return self.safe_action
        try:
            raw = policy(checked)
        except Exception as e:  # a failing policy must stop the robot, not crash past the stop
            self._latch(POLICY_ERROR, e)
            return self.safe_action
        return self.filter(raw)

    def check_obs(
        self, obs: np.ndarray, stamp: float, now: float | None = None
    ) -> np.ndarray | None:
        """The observation as float32 [obs_dim], or None (and a latch) when it is unusable."""
        if self.latched:
            return None
        x, fault = self._inspect_obs(obs, stamp, now)
        if fault is not None:
            self._latch(fault)
            return None
        return x

    def _inspect_obs(
        self, obs: np.ndarray, stamp: float, now: float | None
    ) -> tuple[np.ndarray | None, str | None]:
        try:
            x = np.asarray(obs, np.float32)
        except (TypeError, ValueError):
            return None, BAD_SHAPE
        if x.shape != (self.contract.obs_dim,):
            return None, BAD_SHAPE
        if not np.isfinite(x).all():  # the method: a third of np.all's dispatch cost
            return None, NONFINITE_OBS
        if self.watchdog_s is not None:
            age = (time.monotonic() if now is None else now) - stamp
            if not age <= self.watchdog_s:  # also true for a NaN timestamp
                return None, STALE_OBS
        return x, None

    def filter(self, action: np.ndarray) -> np.ndarray:
        """A finite action within bounds, rate-limited; the safe action when latched."""
        if self.latched:
            return self.safe_action
        try:
            a = np.asarray(action, np.float64)
        except (TypeError, ValueError):
            self._latch(BAD_SHAPE)
            return self.safe_action
        if a.shape != (self.contract.act_dim,):
            self._latch(BAD_SHAPE)
            return self.safe_action
        if not np.isfinite(a).all():
            self._latch(NONFINITE_ACTION)
            return self.safe_action
        if self.contract.discrete:
            a = np.rint(a)  # an index: nearest, then within [0, n - 1] below
        # minimum/maximum rather than np.clip: the same result at half the per-call overhead,
        # which matters in a loop that budgets 100 us per step.
        a = np.minimum(np.maximum(a, self._low), self._high)
        if self.max_delta is not None:
            step = np.minimum(np.maximum(a - self._last, -self.max_delta), self.max_delta)
            a = self._last + step
        self._last = a
        return a.astype(np.float32)

    def deadline(self, missed: bool) -> None:
        """Record one step's deadline; `max_misses` misses in a row latch a stop."""
        self._deadlines += 1
        if self._deadlines <= self.warmup_steps:
            return
        self.misses = self.misses + 1 if missed else 0
        if self.misses >= self.max_misses:
            self._latch(DEADLINE_MISSES)

    def _latch(self, reason: str, fault: BaseException | str | None = None) -> None:
        if self.reason is None:  # keep the first cause: later faults are its consequences
            self.fault = None if fault is None else fault_text(fault)
            self.reason = reason


def fault_text(fault: BaseException | str, limit: int = 300) -> str:
    """An exception as one short line: `OSError: bus timeout`."""
    text = fault if isinstance(fault, str) else f"{type(fault).__name__}: {fault}".rstrip(": ")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""The policy as a ROS 2 node: observations in, commands out at the contract's rate, fail-safe.

One thread runs every callback (observation, e-stop, timers), so the safety layer needs no
locks and an e-stop is applied before the next command is computed. States: `waiting` until a
complete observation arrives, `running`, then `stopped` once the safety layer latches (a fault,
the e-stop topic, Ctrl-C or the end of a bounded run). A stopped node keeps publishing the
safe action every period, as a forward controller would otherwise hold the last command.

Timer trigger (default): the command timer starts half a period after the first observation,
so with a sensor publishing at the same rate each command is computed on a fresh observation
and reaches the robot well before its next update, whatever the two clocks' phase. Observation
trigger: each observation is acted on at once (lowest latency); the timer then only guards:
restarted by every observation, it fires after a period without one (so silence is checked
against the watchdog) and, once stopped, every period to repeat the safe action.

The node is the robot's side of the loop here, so what would be a driver's read or send error
is what it can detect of its topics: an observation message it cannot convert latches
`robot_read_error` (and the safe action is still published), a publish that raises latches
`robot_send_error` (the command publisher is not used again and the node finishes). The hot
path allocates little: one preallocated command message whose buffer is written in place,
observations converted by numpy without Python loops, and status percentiles from a
histogram (stats.LatencyWindow) at the status timer's own period.
"""

from __future__ import annotations

import array
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.node import Node
from rclpy.timer import Timer
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Empty, Float32MultiArray, Float64MultiArray, String

from deploy.contract import Contract
from deploy.joint_state_map import JointStateAssembler
from deploy.ros.context import timer_callback
from deploy.ros.topics import (
    ESTOP_QOS,
    JOINT_STATE_QOS,
    PUBLISH_QOS,
    RESET_QOS,
    SENSOR_QOS,
    STATUS_QOS,
    Topics,
    obs_of,
    status_msg,
)
from deploy.runtime.safety import ESTOP, ROBOT_READ_ERROR, ROBOT_SEND_ERROR, SafetyLayer
from deploy.runtime.stats import LatencyWindow

INPUTS = ("array", "joint-state")
TRIGGERS = ("timer", "observation")
WINDOW = 65536
"""Percentiles in the status cover the last this many steps (22 min at 50 Hz)."""


class PolicyNode(Node):
    """Runs `policy` (obs [obs_dim] -> action [act_dim], e.g. OnnxPolicy) under `contract`."""

    def __init__(
        self,
        policy: Callable[[np.ndarray], np.ndarray],
        contract: Contract,
        *,
        context: Context,
        topics: Topics | None = None,
        input: str = "array",
        trigger: str = "timer",
        rate_hz: float | None = None,
        watchdog_s: float | None = None,
        max_delta: float | None = None,
        max_misses: int = 3,
        warmup_steps: int = 5,
        status_period_s: float = 0.1,
        max_steps: int | None = None,
        name: str = "kinema_policy",
    ) -> None:
        if input not in INPUTS:
            raise ValueError(f"input {input!r} is not one of {', '.join(INPUTS)}")
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger {trigger!r} is not one of {', '.join(TRIGGERS)}")
        if input == "joint-state" and contract.joint_state_map is None:
            raise ValueError("input joint-state needs a joint_state_map in the bundle's contract "
                             "(kinema export --joint-state-map FILE); use input array")
        rate = contract.rate_hz if rate_hz is None else rate_hz
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate {rate} Hz; expected a positive control rate")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps is {max_steps}; expected 1 or more")
        super().__init__(name, context=context)
        self.policy, self.contract, self.topics = policy, contract, topics or Topics()
        self.input, self.trigger, self.rate_hz, self.period = input, trigger, rate, 1.0 / rate
        # Default watchdog: 5 periods, at least 0.1 s, so one late DDS sample is not a fault.
        self.safety = SafetyLayer(
            contract, max_delta=max_delta, max_misses=max_misses, warmup_steps=warmup_steps,
            watchdog_s=watchdog_s if watchdog_s is not None else max(5 * self.period, 0.1),
        )
        self.max_steps = max_steps
        self.steps = self.deadline_misses = self.safe_commands = self.observations = 0
        self.status_errors = self.resets = 0
        self.latency = LatencyWindow(WINDOW)
        self.inference = LatencyWindow(WINDOW)
        self.jitter = LatencyWindow(WINDOW)
        self._latest: tuple[np.ndarray, float] | None = None
        self._assembler = (JointStateAssembler(contract.joint_state_map)
                           if input == "joint-state" and contract.joint_state_map else None)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._timer: Timer | None = None
        self._starter: Timer | None = None
        self._t0 = 0.0
        self._tick: int | None = None
        self._state = "waiting"
        self._send_failed = False
        # One command message, reused: its array.array buffer is written in place through a
        # numpy view, and publish() serializes it before returning.
        self._cmd_msg = Float64MultiArray()
        self._cmd_msg.data = array.array("d", bytes(8 * contract.act_dim))
        self._cmd_view = np.frombuffer(self._cmd_msg.data, np.float64)

        t = self.topics
        self._cmd = self.create_publisher(Float64MultiArray, t.command, PUBLISH_QOS)
        self._status = self.create_publisher(String, t.status, STATUS_QOS)
        # Created before the observation subscription: the single-threaded executor takes ready
        # callbacks in creation order, so a reset published before the new episode's first
        # observation is applied before that observation is acted on.
        self.create_subscription(Empty, t.reset, self._on_reset, RESET_QOS)
        if input == "array":
            self.create_subscription(Float32MultiArray, t.observation, self._on_array, SENSOR_QOS)
        else:
            self.create_subscription(JointState, t.joint_states, self._on_joint_state,
                                     JOINT_STATE_QOS)
        self.create_subscription(Bool, t.estop, self._on_estop, ESTOP_QOS)
        self.create_timer(status_period_s, timer_callback(self.publish_status), clock=self._steady)
        if trigger == "observation":
            self._start_timer()

    # -- state ------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return "stopped" if self.safety.latched else self._state

    @property
    def finished(self) -> bool:
        """A bounded run (max_steps) has done its steps, or commands can no longer be sent."""
        return self._send_failed or self.max_steps is not None and self.steps >= self.max_steps

    def status(self) -> dict[str, Any]:
        """What /kinema/status carries (latencies in microseconds, over the last WINDOW steps,
        within 0.5%: stats.LatencyWindow)."""
        lat50, lat99 = self.latency.percentiles_us((50, 99))
        inf50, inf99 = self.inference.percentiles_us((50, 99))
        return {
            "state": self.state, "reason": self.safety.reason, "fault": self.safety.fault,
            "steps": self.steps, "deadline_misses": self.deadline_misses,
            "latency_p50_us": lat50, "latency_p99_us": lat99,
            "inference_p50_us": inf50, "inference_p99_us": inf99,
            "jitter_p99_us": self.jitter.p_us(99), "safe_commands": self.safe_commands,
            "observations": self.observations, "status_errors": self.status_errors,
            "rate_hz": self.rate_hz, "trigger": self.trigger, "resets": self.resets,
        }

    def publish_status(self) -> None:
        try:
            self._status.publish(status_msg(self.status()))
        except Exception:  # status is advisory: failing to publish it must not stop commands
            self.status_errors += 1

    def stop(self, reason: str, fault: BaseException | str | None = None) -> None:
        """Latch a stop (the first reason is kept) and send the safe action now."""
        was = self.safety.latched
        self.safety.estop(reason, fault)
        self._publish_safe()
        if not was:
            self.publish_status()

    # -- inputs -----------------------------------------------------------------------------
    def _on_array(self, msg: Float32MultiArray) -> None:
        try:
            obs = obs_of(msg)
        except Exception as e:  # a message we cannot read: the robot's read failed
            self._read_failed(e)
            return
        self._observe(obs, time.monotonic())

    def _on_joint_state(self, msg: JointState) -> None:
        assert self._assembler is not None
        recv = time.monotonic()
        try:
            self._assembler.update(
                msg.name,
                {"position": msg.position, "velocity": msg.velocity, "effort": msg.effort},
                recv - self._header_age(msg),
            )
            observation = self._assembler.observation() if self._assembler.complete else None
        except Exception as e:
            self._read_failed(e)
            return
        if observation is not None:
            self._observe(*observation)

    def _read_failed(self, error: Exception) -> None:
        self.stop(ROBOT_READ_ERROR, error)  # the command path still works: the safe action

    def _header_age(self, msg: JointState) -> float:
        """How old the sample was when it arrived, by its header stamp (0 when unstamped), so
        a driver that republishes an old measurement still trips the watchdog."""
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            return 0.0
        now_ns = self.get_clock().now().nanoseconds
        return max(0.0, (now_ns - (stamp.sec * 1_000_000_000 + stamp.nanosec)) * 1e-9)

    def _observe(self, obs: np.ndarray, stamp: float) -> None:
        self._latest = (obs, stamp)
        self.observations += 1
        if self._state == "waiting":
            self._state = "running"
            if self.trigger == "timer":
                # Phase: half a period after the first observation (see the module docstring).
                self._starter = self.create_timer(self.period / 2,
                                                  timer_callback(self._start_timer),
                                                  clock=self._steady)
            self.publish_status()
        if self.trigger == "observation" and not self.safety.latched:
            self._step(obs, stamp, time.monotonic() + self.period, skipped=0)
            if self._timer is not None and not self.safety.latched:
                self._timer.reset()  # the guard fires only after a period without observations

    def _on_reset(self, msg: Empty) -> None:
        """A new episode: a stateful policy (OnnxPolicy of a planner) forgets its warm start,
        as `kinema run` resets it at every episode start."""
        reset = getattr(self.policy, "reset", None)
        if reset is not None:
            reset()
        self.resets += 1

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.stop(ESTOP)

    # -- control ----------------------------------------------------------------------------
    def _start_timer(self) -> None:
        if self._starter is not None:
            self.destroy_timer(self._starter)
            self._starter = None
        self._t0 = time.monotonic()  # the grid: tick k is due at t0 + k * period
        self._timer = self.create_timer(self.period, timer_callback(self._on_tick),
                                        clock=self._steady)
        if self.trigger == "timer":
            self._on_tick()  # tick 0, now

    def _on_tick(self) -> None:
        now = time.monotonic()
        k = math.floor((now - self._t0) / self.period)
        skipped = 0 if self._tick is None else max(0, k - self._tick - 1)
        self._tick = k
        if self.safety.latched:
            self._publish_safe()
            return
        if self._latest is None:
            return  # observation trigger, nothing seen yet: waiting
        obs, stamp = self._latest
        if self.trigger == "observation":
            # Steps happen on arrival; here only the watchdog, so silence is not trusted.
            if self.safety.check_obs(obs, stamp) is None:
                self._publish_safe()
                self.publish_status()
            return
        self.jitter.add(now - (self._t0 + k * self.period))
        self._step(obs, stamp, self._t0 + (k + 1) * self.period, skipped)

    def _step(self, obs: np.ndarray, stamp: float, deadline: float, skipped: int) -> None:
        t0 = time.perf_counter()
        action = self.safety.act(self._timed_policy, obs, stamp)
        self._send(action)
        t1 = time.perf_counter()
        self.latency.add(t1 - t0)
        self.steps += 1
        misses = skipped + (time.monotonic() > deadline)
        self.deadline_misses += misses
        self.safety.deadline(misses > 0)
        if self.safety.latched:  # latched during this step (it ran unlatched): tell at once
            self.publish_status()
        if self.finished:
            self.stop("completed")

    def _timed_policy(self, obs: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.policy(obs)
        self.inference.add(time.perf_counter() - t0)
        return out

    def _publish_safe(self) -> None:
        if self._send(self.safety.safe_action):
            self.safe_commands += 1

    def _send(self, action: np.ndarray) -> bool:
        """Publish `action` as the command; False once publishing has failed (latched)."""
        if self._send_failed:
            return False
        try:
            self._cmd_view[:] = action  # float32 -> float64, in place
            self._cmd.publish(self._cmd_msg)
        except Exception as e:
            self._send_failed = True  # never trusted again: the node finishes
            self.safety.estop(ROBOT_SEND_ERROR, e)
            return False
        return True

"""A `sim` env playing the robot over ROS 2: the other end of the policy node's topics.

Each period (the env's control rate) the bridge applies the latest command to the env, as a
forward controller applies its last command, then publishes the new observation. Until the
first command arrives it only publishes the initial observation (the env waits, so the policy
starts on the episode's first state). A period with no new command repeats the previous one
and is counted (`held_commands`); a command that is not finite, has the wrong size or leaves
the action bounds (what the policy node's safety layer guarantees) is refused, counted
(`bad_commands`) and the previous one held. Episodes reset automatically, each reset announced
on the reset topic before the new episode's first observation (so a stateful policy node resets
its warm start, as `kinema run` does), and their returns are reported. If the simulated robot
itself raises (its step or its observation), the bridge stops with `robot_send_error` /
`robot_read_error` and the error in its report, instead of a traceback.

Lockstep (`lockstep=True`, `kinema ros-sim --lockstep`): the simulated time advances once per
good command, at once, as a synchronous simulator does (Gazebo's lockstep, CARLA's synchronous
mode), so a slow or descheduled controller changes the wall-clock timing, never the episode.
The timer then only publishes the first state until a command comes, and republishes the
latest observation after `REPUBLISH_PERIODS` periods without one (a sample lost on the way is
recovered; counted as `republished`). Without it the bridge is a real-time robot: it does not
wait for anyone.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty, Float32MultiArray, Float64MultiArray

from deploy.joint_state_map import JointField, joint_state_from_obs
from deploy.ros.topics import PUBLISH_QOS, SENSOR_QOS, Topics, array_of, observation_msg
from deploy.runtime.robot import SimRobot
from deploy.runtime.safety import ROBOT_READ_ERROR, ROBOT_SEND_ERROR, fault_text

REPUBLISH_PERIODS = 5
"""In lockstep, this many periods without a command republish the latest observation."""


class SimBridge(Node):
    """Plays `sim.make(env)` as a robot on `topics` (observations out, commands in)."""

    def __init__(
        self,
        env: str,
        *,
        context: Context,
        topics: Topics | None = None,
        seed: int = 0,
        rate_hz: float | None = None,
        joint_state_map: Sequence[JointField] | None = None,
        max_episodes: int | None = None,
        log_episodes: bool = True,
        lockstep: bool = False,
        name: str = "kinema_sim",
    ) -> None:
        if max_episodes is not None and max_episodes < 1:
            raise ValueError(f"max_episodes is {max_episodes}; expected 1 or more")
        self.robot = SimRobot(env, seed=seed)
        rate = self.robot.info.rate_hz if rate_hz is None else rate_hz
        if not (math.isfinite(rate) and rate > 0):
            self.robot.close()
            raise ValueError(f"rate {rate} Hz; expected a positive rate")
        obs_dim = math.prod(self.robot.info.obs_shape)
        if joint_state_map is not None and len(joint_state_map) != obs_dim:
            self.robot.close()
            raise ValueError(f"joint_state_map has {len(joint_state_map)} entries; {env!r} "
                             f"observes {obs_dim} values")
        super().__init__(name, context=context)
        self.env, self.rate_hz, self.topics = env, rate, topics or Topics()
        self.joint_state_map = None if joint_state_map is None else tuple(joint_state_map)
        self.max_episodes, self.log_episodes, self.lockstep = max_episodes, log_episodes, lockstep
        self.commands_received = self.held_commands = self.bad_commands = self.republished = 0
        self._silent_ticks = 0  # lockstep: timer periods since the last good command
        self.last_command: np.ndarray | None = None
        self._command: np.ndarray | None = None  # the last good command
        self._fresh = False
        self._episode_start = 0
        self._low, self._high = self.robot.action_bounds
        self._t_start = time.monotonic()
        self.stop_reason: str | None = None  # set when the simulated robot failed
        self.fault: str | None = None

        t = self.topics
        if self.joint_state_map is None:
            self._obs_pub = self.create_publisher(Float32MultiArray, t.observation, PUBLISH_QOS)
        else:
            self._obs_pub = self.create_publisher(JointState, t.joint_states, PUBLISH_QOS)
        self._reset_pub = self.create_publisher(Empty, t.reset, PUBLISH_QOS)
        self.create_subscription(Float64MultiArray, t.command, self._on_command, SENSOR_QOS)
        self.create_timer(1.0 / rate, self._on_tick, clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def done(self) -> bool:
        """Its episodes are played, or the simulated robot failed."""
        return self.fault is not None or (
            self.max_episodes is not None and self.robot.episodes >= self.max_episodes)

    def report(self) -> dict[str, Any]:
        returns = list(self.robot.returns)
        return {
            "env": self.env, "returns": returns,
            "return_mean": float(np.mean(returns)) if returns else None,
            "return_std": float(np.std(returns)) if returns else None,
            "episodes": len(returns), "steps": self.robot.steps,
            "commands_received": self.commands_received, "held_commands": self.held_commands,
            "bad_commands": self.bad_commands, "lockstep": self.lockstep,
            "republished": self.republished,
            "last_command": None if self.last_command is None else self.last_command.tolist(),
            "fault": self.fault, "wall_s": time.monotonic() - self._t_start,
        }

    def close(self) -> None:
        self.robot.close()

    def _on_command(self, msg: Float64MultiArray) -> None:
        a = array_of(msg)
        self.commands_received += 1
        self.last_command = a
        tol = 1e-6 * np.maximum(1.0, np.abs(self._high - self._low))
        if a.shape != (self.robot.act_dim,) or not np.all(np.isfinite(a)) or np.any(
            (a < self._low - tol) | (a > self._high + tol)
        ):
            self.bad_commands += 1
            return
        self._command, self._fresh = a, True
        if self.lockstep:
            self._silent_ticks = 0
            self._guarded(self._step_and_publish)

    def _on_tick(self) -> None:
        if not self.lockstep:
            self._guarded(self._tick)
            return
        if self._command is not None:  # lockstep: steps come with commands; this only guards
            self._silent_ticks += 1
            if self._silent_ticks < REPUBLISH_PERIODS:
                return
            self._silent_ticks = 0
            self.republished += 1
        self._guarded(self._publish_observation)

    def _guarded(self, fn: Callable[[], None]) -> None:
        """fn(), unless the bridge is done; a failure of the simulated robot ends it."""
        if self.done:
            return
        try:
            fn()
        except _RobotFailed as e:
            self.stop_reason, self.fault = e.reason, fault_text(e.error)

    def _tick(self) -> None:
        if self._command is None:
            self._publish_observation()
            return
        if not self._fresh:
            self.held_commands += 1
        self._step_and_publish()

    def _step_and_publish(self) -> None:
        assert self._command is not None
        self._fresh = False
        episodes = self.robot.episodes
        _call(ROBOT_SEND_ERROR, self.robot.send, self._command)
        if self.robot.episodes > episodes:
            if self.log_episodes:
                steps = self.robot.steps - self._episode_start
                print(f"episode {self.robot.episodes}: return {self.robot.returns[-1]:.2f} "
                      f"in {steps} steps", file=sys.stderr, flush=True)
            self._episode_start = self.robot.steps
            self._reset_pub.publish(Empty())  # before the new episode's first observation
        self._publish_observation()

    def _publish_observation(self) -> None:
        obs, _ = _call(ROBOT_READ_ERROR, self.robot.read)
        if self.joint_state_map is None:
            self._obs_pub.publish(observation_msg(obs))
            return
        names, arrays = joint_state_from_obs(self.joint_state_map, obs)
        msg = JointState(name=names, position=arrays["position"], velocity=arrays["velocity"],
                         effort=arrays["effort"])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._obs_pub.publish(msg)


class _RobotFailed(Exception):
    def __init__(self, reason: str, error: Exception) -> None:
        super().__init__(reason)
        self.reason, self.error = reason, error


def _call(reason: str, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args); an error it raises becomes _RobotFailed(reason)."""
    try:
        return fn(*args)
    except Exception as e:
        raise _RobotFailed(reason, e) from e

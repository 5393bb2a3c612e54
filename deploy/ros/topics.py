"""Topic names, QoS profiles and message conversions shared by the policy node and the sim bridge.

QoS is chosen for compatibility first: DDS matches a RELIABLE publisher with any subscriber,
but a RELIABLE subscriber never hears a BEST_EFFORT publisher. So what we publish is RELIABLE
and what we read from sensors is BEST_EFFORT, keeping only the latest sample (a queued old
observation or command is worth nothing to a controller). The e-stop is the exception: its
subscription is RELIABLE with a queue, so a single `true` is never dropped; e-stop senders
must publish RELIABLE (the `ros2 topic pub` default).
"""

from __future__ import annotations

import array
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.exceptions import InvalidTopicNameException
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.validate_full_topic_name import validate_full_topic_name
from std_msgs.msg import Float32MultiArray, Float64MultiArray, String

PUBLISH_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE)
SENSOR_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.BEST_EFFORT)
JOINT_STATE_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                             reliability=ReliabilityPolicy.BEST_EFFORT)
"""Deeper than SENSOR_QOS: /joint_states often has several publishers (arm, gripper) whose
partial messages all count; with depth 1 one would overwrite the other unread."""
ESTOP_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                       reliability=ReliabilityPolicy.RELIABLE)
STATUS_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.RELIABLE)
RESET_QOS = ESTOP_QOS
"""Like the e-stop: a reset is an event, never dropped."""


@dataclass(frozen=True)
class Topics:
    """Where the node and the bridge meet; every name is a CLI option."""

    observation: str = "/kinema/observation"
    """std_msgs/Float32MultiArray, the observation in contract order."""
    joint_states: str = "/joint_states"
    """sensor_msgs/JointState, read through the contract's joint_state_map."""
    command: str = "/kinema/command"
    """std_msgs/Float64MultiArray, the action in the robot's units."""
    estop: str = "/kinema/estop"
    """std_msgs/Bool; true latches a stop."""
    status: str = "/kinema/status"
    """std_msgs/String holding a JSON object (see PolicyNode.status)."""
    reset: str = "/kinema/reset"
    """std_msgs/Empty: a new episode began (the robot or simulator was reset), so the policy's
    state (a planner's warm start) goes back to its initial value."""

    def __post_init__(self) -> None:
        for name, topic in vars(self).items():
            try:
                validate_full_topic_name(topic)
            except InvalidTopicNameException as e:
                raise ValueError(f"{name} topic {topic!r} is not a valid absolute ROS 2 topic "
                                 f"name ({str(e).splitlines()[0]}); e.g. /kinema/{name}") from None


def array_of(msg: Float32MultiArray | Float64MultiArray) -> np.ndarray:
    """The message's data as a float64 array (a copy; the message may be reused)."""
    return np.array(msg.data, dtype=np.float64)


_TYPECODES = {"f": np.float32, "d": np.float64}


def obs_of(msg: Float32MultiArray | Float64MultiArray) -> np.ndarray:
    """The message's data as float32 (what the safety layer checks), a copy made by numpy from
    the message's buffer without a Python loop."""
    data = msg.data
    if isinstance(data, array.array) and data.typecode in _TYPECODES:
        return np.frombuffer(data, _TYPECODES[data.typecode]).astype(np.float32)
    return np.array(data, dtype=np.float32)


def observation_msg(obs: np.ndarray) -> Float32MultiArray:
    msg = Float32MultiArray()
    msg.data = np.asarray(obs, np.float32).reshape(-1).tolist()
    return msg


def status_msg(status: dict[str, Any]) -> String:
    """JSON with non-finite numbers as null, so any JSON parser reads it."""
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v
             for k, v in status.items()}
    return String(data=json.dumps(clean, allow_nan=False))

"""ROS 2 (rclpy) for bundles: the policy node and a sim bridge that plays the robot.

rclpy + numpy + deploy.runtime only, like the runtime: no torch, no agents (a test checks).
rclpy comes from the `ros` extra (`pip install "kinema[ros]"`: PyPI wheels of rclpy, std_msgs
and sensor_msgs, no ROS install needed).
"""

try:
    import rclpy  # noqa: F401
except ImportError as e:  # one sentence that says how to get it
    raise ImportError("deploy.ros needs rclpy; install the ros extra: "
                      "pip install \"kinema[ros]\"") from e

from deploy.ros.context import localhost_env, ros_context, spin_until, stop_on_signals
from deploy.ros.launch import run_policy_node, run_sim_bridge
from deploy.ros.node import INPUTS, TRIGGERS, PolicyNode
from deploy.ros.sim_bridge import SimBridge
from deploy.ros.topics import Topics

__all__ = [
    "INPUTS", "TRIGGERS", "PolicyNode", "SimBridge", "Topics", "localhost_env", "ros_context",
    "run_policy_node", "run_sim_bridge", "spin_until", "stop_on_signals",
]

"""Runs an export bundle in real time: onnxruntime + numpy only, no torch, no agents.

A robot computer installs this without the training stack; a test keeps torch out of
`sys.modules` after `import deploy.runtime`.
"""

from deploy.contract import BundleError, Contract
from deploy.runtime.policy import OnnxPolicy
from deploy.runtime.robot import EpisodicRobot, Robot, SimRobot
from deploy.runtime.runner import Runner, RunReport, run_bundle
from deploy.runtime.safety import REASONS, SafetyLayer

__all__ = [
    "REASONS", "BundleError", "Contract", "EpisodicRobot", "OnnxPolicy", "Robot", "RunReport",
    "Runner", "SafetyLayer", "SimRobot", "run_bundle",
]

"""Over real rclpy, two processes: `kinema ros` serving a TD-MPC2 planner exported from pixels
(contract `obs_shape` [84, 84, 9]) and `kinema ros-sim cartpole-swingup-pixels --lockstep`.

The bridge publishes the env's stacked frames flattened in C order (63,504 floats a message),
as the bundle's graph takes them; the node plans once per observation. Lockstep makes the
episode a function of the commands alone, so the commands heard on the topic must be those of
the same bundle driving the same simulated robot in this process (the planner's noise comes
from the contract's seed in both).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sim
from deploy.export import export_bundle
from deploy.runtime import OnnxPolicy
from deploy.runtime.robot import SimRobot

pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")

ENV = "cartpole-swingup-pixels"
STEPS = 12
TINY: dict[str, Any] = dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_samples=32,
                            num_elites=8, num_pi_trajs=4, iterations=2, num_channels=4)


@pytest.fixture(scope="module")
def pixel_planner_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny initialised pixel TD-MPC agent's latent MPPI, exported as `kinema export` does;
    reward and Q heads drawn non-zero, so the plans are not all ties."""
    from agents.latent.tdmpc import TDMPC, preset

    torch.manual_seed(0)
    agent = TDMPC(dataclasses.replace(preset(ENV), **TINY), sim.spec(ENV).info,
                  torch.device("cpu"))
    for p in (*agent.model.reward_net[-1].parameters(), *agent.model.Qs[-1].parameters()):
        torch.nn.init.normal_(p, std=0.5)
    robot = SimRobot(ENV, seed=1)
    frames = [robot.read()[0]]
    for a in np.linspace(-1.0, 1.0, 7):
        robot.send(np.array([a], np.float32))
        frames.append(robot.read()[0])
    robot.close()
    out = tmp_path_factory.mktemp("bundles") / "tdmpc-pixels"
    export_bundle(agent.inference_module(), env=ENV, out_dir=out,
                  rollout_obs=np.stack(frames).astype(np.float32))
    return out


def _local_commands(bundle: Path, seed: int, steps: int) -> np.ndarray:
    """The bundle driving SimRobot(ENV, seed) here, one command per observation."""
    policy, robot = OnnxPolicy(bundle), SimRobot(ENV, seed=seed)
    try:
        out = []
        for _ in range(steps):
            obs, _ = robot.read()
            out.append(policy(obs).astype(np.float64))
            robot.send(out[-1])
        return np.stack(out)
    finally:
        robot.close()


def test_deploy_ros_two_processes_plan_from_pixel_frames(
    pixel_planner_bundle: Path, kinema_proc: Any, ros_probe: Any
) -> None:
    c = OnnxPolicy(pixel_planner_bundle).contract
    assert c.obs_shape == (84, 84, 9) and c.obs_dim == 63_504 and c.stateful
    node = kinema_proc("ros", str(pixel_planner_bundle), "--trigger", "observation",
                       "--watchdog", "10", "--max-misses", "1000", "--steps", str(STEPS),
                       "--duration", "90", "--json")
    # The probe must hear the node before the node has anything to say: its status (every
    # 0.1 s) comes once discovery is done; only then does the robot start.
    heard = ros_probe.wait_for(lambda: ros_probe.last_status().get("state") == "waiting", 60)
    assert heard, f"no status from the node: {node.err_lines}"
    # A slow period (1 Hz): lockstep republishes an unanswered frame only after 5 of them, so
    # a slow plan on a loaded box is never answered twice.
    bridge = kinema_proc("ros-sim", ENV, "--lockstep", "--rate", "1", "--seed", "4",
                         "--duration", "90", "--json")
    done = ros_probe.wait_for(lambda: len(ros_probe.commands) >= STEPS
                              or node.popen.poll() is not None, 80)
    assert done, f"{len(ros_probe.commands)} commands: {node.err_lines} {bridge.err_lines}"
    rc, status = node.finish(timeout=30)
    assert rc == 0, node.err_lines
    assert status["steps"] == STEPS and status["reason"] == "completed", status
    ros_probe.spin(0.5)
    bridge.sigint()
    rc, report = bridge.finish(timeout=30)
    assert rc == 0, bridge.err_lines
    assert report["bad_commands"] == 0 and report["republished"] == 0, report
    # then the stopped node's safe action, as the runner ends after any stop
    assert report["steps"] == report["commands_received"] >= STEPS, report
    assert report["last_command"] == list(c.safe_action), report

    got = np.stack(ros_probe.commands[:STEPS])
    assert all(np.array_equal(a, c.safe_action) for a in ros_probe.commands[STEPS:])
    np.testing.assert_allclose(got, _local_commands(pixel_planner_bundle, 4, STEPS),
                               rtol=1e-6, atol=1e-6)
    assert np.ptp(got) > 1e-3, "the plans differ from frame to frame"

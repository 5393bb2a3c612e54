"""Over real rclpy: the policy node serving a TD-MPC2 planner bundle, the stateful kind (a warm
start carried from call to call, fresh noise drawn per call; deploy.contract `state`, `noise`).

The node commands, one per observation, exactly what the bundle's own OnnxPolicy returns when
called on the same observations in the same order; a reset published on the reset topic clears
the warm start there as `policy.reset()` does, and the planner's noise carries on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deploy.export import export_bundle
from deploy.runtime import OnnxPolicy

pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")

from deploy.ros import PolicyNode  # noqa: E402  (needs rclpy)


@pytest.fixture(scope="module")
def planner_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny initialised TD-MPC agent on pendulum, its latent MPPI exported as `kinema export`
    does; reward and Q heads drawn non-zero, so plans (and warm starts) are not all ties."""
    import sim
    from agents.latent.tdmpc import TDMPC, preset

    torch.manual_seed(0)
    cfg = dataclasses.replace(preset("pendulum"), latent_dim=16, mlp_dim=32, enc_dim=32,
                              num_samples=32, num_elites=8, num_pi_trajs=4, iterations=2)
    agent = TDMPC(cfg, sim.spec("pendulum").info, torch.device("cpu"))
    for p in (*agent.model.reward_net[-1].parameters(), *agent.model.Qs[-1].parameters()):
        torch.nn.init.normal_(p, std=0.5)
    out = tmp_path_factory.mktemp("bundles") / "tdmpc"
    export_bundle(agent.inference_module(), env="pendulum", out_dir=out,
                  source_run="runs/pendulum-tdmpc")
    return out


def _replay(bundle: Path, observations: list[np.ndarray], reset_before: int | None
            ) -> np.ndarray:
    """The commands a fresh OnnxPolicy of `bundle` gives on these observations in order."""
    policy = OnnxPolicy(bundle)
    out = []
    for i, obs in enumerate(observations):
        if i == reset_before:
            policy.reset()
        out.append(policy(obs).astype(np.float64))
    return np.stack(out)


def test_deploy_ros_node_runs_a_tdmpc_planner_bundle_with_its_warm_start_and_resets(
    ros_probe: Any, planner_bundle: Path
) -> None:
    policy = OnnxPolicy(planner_bundle)
    c = policy.contract
    assert c.stateful and [s.input for s in c.state] == ["plan"] and len(c.noise) == 4
    node = PolicyNode(policy, c, context=ros_probe.node.context, trigger="observation",
                      rate_hz=20.0, watchdog_s=2.0, warmup_steps=0, max_misses=1000)
    ros_probe.add(node)
    rng = np.random.default_rng(0)
    observations = [rng.uniform(-1, 1, 3).astype(np.float32) for _ in range(12)]
    try:
        ros_probe.spin(0.5)  # discovery
        assert ros_probe.commands == [] and ros_probe.last_status()["state"] == "waiting"
        for i, obs in enumerate(observations):
            if i == 8:  # a new episode: the warm start goes back to zeros
                ros_probe.reset()
                assert ros_probe.wait_for(lambda: node.resets == 1, 2.0)
            n = len(ros_probe.commands)
            ros_probe.publish_obs(obs.tolist())
            assert ros_probe.wait_for(lambda n=n: len(ros_probe.commands) > n, 2.0), i
            ros_probe.spin(0.005)
            assert len(ros_probe.commands) == n + 1, "one command per observation"
        # the status timer (every 0.1 s) reports the reset
        assert ros_probe.wait_for(lambda: ros_probe.last_status().get("resets") == 1, 2.0)
        status = ros_probe.last_status()
        assert status["state"] == "running" and status["reason"] is None, status
        assert node.resets == 1 and len(ros_probe.commands) == len(observations)
    finally:
        node.destroy_node()
    got = np.stack(ros_probe.commands)
    np.testing.assert_allclose(got, _replay(planner_bundle, observations, reset_before=8),
                               rtol=1e-6, atol=1e-7)
    low, high = np.asarray(c.action_low), np.asarray(c.action_high)
    assert np.all(got >= low) and np.all(got <= high)
    # the carried state matters: without the reset, or with it at another step, the same
    # observations and noise plan other commands
    for other in (None, 1):
        assert not np.allclose(got, _replay(planner_bundle, observations, reset_before=other))

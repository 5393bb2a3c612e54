"""TD-MPC2 from pixels, exported: the latent planner and the prior of a cartpole-swingup-pixels
agent as bundles whose graphs take the stacked frames flattened (contract `obs_shape`), that
plan as the agent plans on the same noise and run in `kinema run` on the pixel env."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest
import torch

import sim
from agents.latent.tdmpc import TDMPC, preset
from deploy.contract import Contract
from deploy.export import export_bundle
from deploy.runtime import OnnxPolicy
from kinema.cli import main

ENV = "cartpole-swingup-pixels"
TINY: dict[str, Any] = dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_samples=32,
                            num_elites=8, num_pi_trajs=4, iterations=2, learning_starts=8,
                            batch_size=4, buffer_size=64, lr=3e-3, num_channels=4)
"""A small CNN and planner; a high learning rate, so 20 updates make the planned returns differ
by more than float32 rounding (near-ties can rank elites differently in onnxruntime)."""


@pytest.fixture(scope="module")
def agent_and_frames() -> tuple[TDMPC, np.ndarray]:
    """A pixel agent after 16 real env steps (rendered by MUJOCO_GL=egl: tests/conftest.py)
    and 20 updates, and those 16 frames."""
    torch.manual_seed(0)
    agent = TDMPC(dataclasses.replace(preset(ENV), **TINY), sim.spec(ENV).info,
                  torch.device("cpu"))
    env = sim.make(ENV)
    obs, _ = env.reset(seed=0)
    frames = []
    for t in range(16):
        o = torch.as_tensor(obs, dtype=torch.float32)[None]
        a = agent.explore(o, t)
        nxt, r, term, trunc, _ = env.step(a[0].numpy())
        agent.replay.add(o, a, [r], nxt[None], [term], [trunc])
        frames.append(obs)
        obs = nxt
    env.close()
    for _ in range(20):
        agent.update(agent.replay.sample(4))
    return agent, np.stack(frames).astype(np.float32)


def test_the_pixel_planner_exports_plans_as_the_agent_and_runs(agent_and_frames, tmp_path,
                                                               capsys):
    agent, frames = agent_and_frames
    info = sim.spec(ENV).info
    bundle = tmp_path / "planner"
    c = export_bundle(agent.inference_module(), env=ENV, out_dir=bundle,
                      rollout_obs=frames.reshape(len(frames), -1))
    assert c.stateful and c.parity_max_abs_error <= 1e-4
    assert c.obs_shape == info.obs_shape == (84, 84, 9) and c.obs_dim == 84 * 84 * 9
    assert c.obs_names == () and Contract.load(bundle) == c

    # The agent's own deterministic planning on the frames, given the runtime's noise.
    policy = OnnxPolicy(bundle)
    rng = np.random.Generator(np.random.PCG64(c.noise_seed))
    draws = [{n.name: torch.from_numpy(rng.standard_normal(n.shape, dtype=np.float32))
              for n in c.noise} for _ in range(3)]
    feed = iter(draws)
    planner_noise = agent.planner.draw_noise
    agent.planner.draw_noise = lambda *args, **kwargs: next(feed)  # type: ignore[method-assign]
    try:
        agent.reset_evaluation()
        got = [policy(frame.reshape(-1)) for frame in frames[:3]]
        want = [agent.act(frame[None], deterministic=True)[0].numpy() for frame in frames[:3]]
    finally:
        agent.planner.draw_noise = planner_noise  # type: ignore[method-assign]
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-4)  # units are [-1, 1]

    # kinema run reads the pixel env's frames, flattened, through the safety layer
    assert main(["run", str(bundle), "--steps", "20", "--rate", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["steps"] == 20 and report["stop_reason"] == "completed"


def test_the_pixel_prior_exports_feed_forward(agent_and_frames, tmp_path):
    agent, frames = agent_and_frames
    c = export_bundle(agent.prior_module(), env=ENV, out_dir=tmp_path / "prior")
    assert not c.stateful and c.parity_max_abs_error <= 1e-4 and c.obs_shape == (84, 84, 9)
    policy = OnnxPolicy(tmp_path / "prior")
    got = np.stack([policy(frame.reshape(-1)) for frame in frames[:4]])
    np.testing.assert_allclose(got, agent.prior_module()(torch.from_numpy(
        frames[:4].reshape(4, -1))).detach().numpy(), atol=1e-5)


def test_kinema_exports_rollout_frames_flattened():
    # what `kinema export` adds to the parity observations: the frames a policy visits
    from agents.runs.evaluation import rollout_observations

    obs = rollout_observations(lambda o: np.zeros((len(o), 1), np.float32), ENV, steps=3)
    assert obs.shape == (3, 84 * 84 * 9) and obs.dtype == np.float32
    assert 0.0 <= obs.min() and obs.max() <= 255.0 and obs.max() > obs.min()


@pytest.mark.bad_input
def test_a_joint_state_map_for_frames_is_refused_in_one_line(agent_and_frames, tmp_path):
    from deploy.export import ExportError

    agent, _ = agent_and_frames
    with pytest.raises(ExportError, match=r"^env 'cartpole-swingup-pixels' observes camera "
                                          r"frames \[84, 84, 9\]; a joint_state_map fills flat "
                                          r"joint observations only: drop it$"):
        export_bundle(agent.prior_module(), env=ENV, out_dir=tmp_path / "b",
                      joint_state_map=[{"name": "x", "field": "position"}])
    assert not (tmp_path / "b").exists()

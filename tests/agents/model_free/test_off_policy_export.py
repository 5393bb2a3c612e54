"""Every off-policy agent exports to an ONNX bundle whose actions match the agent's, in robot
units (deploy.export checks onnxruntime against torch before writing)."""

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch

import sim
from agents.registry import algorithm
from agents.runs.evaluation import rollout_observations
from deploy.export import export_bundle


@pytest.mark.parametrize("algo,env", [("sac", "pendulum"), ("td3", "pendulum"),
                                      ("ddpg", "inverted-pendulum"), ("dqn", "cartpole")])
def test_export_has_parity_and_acts_like_the_agent(tmp_path, algo, env):
    torch.manual_seed(0)
    a = algorithm(algo)
    cfg = dataclasses.replace(a.preset(env), hidden=(32, 32), learning_starts=0)
    info = sim.spec(env).info
    agent = a.make_agent(cfg, info, torch.device("cpu"))
    for _ in range(64):  # a few updates so the weights are not the initial ones
        obs = torch.randn(1, info.obs_shape[0])
        agent.replay.add(obs, agent.explore(obs, 10**6), torch.randn(1), torch.randn(obs.shape),
                         torch.tensor([False]), torch.tensor([False]))
    for _ in range(4):
        agent.update(agent.replay.sample(16))

    def act(o):
        return agent.act(o, deterministic=True).cpu().numpy()

    contract = export_bundle(agent.inference_module(), env=env, out_dir=tmp_path / "bundle",
                             rollout_obs=rollout_observations(act, env, steps=200))
    assert contract.parity_max_abs_error <= 1e-4
    sess = ort.InferenceSession(str(tmp_path / "bundle" / "policy.onnx"))
    obs = rollout_observations(act, env, steps=50, seed=3)
    (onnx_action,) = sess.run(None, {"obs": obs})
    ours = act(obs)
    if info.discrete:
        expected = ours.astype(np.float32)[:, None]
    else:  # [-1, 1] -> robot units
        low, high = np.array(info.action_low), np.array(info.action_high)
        expected = low + (ours + 1.0) * 0.5 * (high - low)
    assert onnx_action.shape == expected.shape
    assert np.allclose(onnx_action, expected, atol=1e-4)

"""Export parity for every agent type: tiny training runs, saved, reloaded and exported as
`kinema export` does; the bundle must act as the agent acts (in the robot's units)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sim
from agents.registry import MODULES as ALGORITHMS
from agents.registry import algorithm
from agents.runs.evaluation import rollout_observations
from agents.runs.train import TrainConfig, load_agent, resolve_device, train
from deploy.contract import Contract
from deploy.export import ExportError, export_bundle
from deploy.runtime import OnnxPolicy

# algorithm -> (env, env steps): a few hundred steps, enough to save a checkpoint whose
# normalizer statistics and weights differ from the initial ones.
TRAINED = {
    "ppo": [("cartpole", 512), ("pendulum", 1024)],
    "sac": [("pendulum", 300)],
    "td3": [("pendulum", 300)],
    "ddpg": [("pendulum", 300)],
    "dqn": [("cartpole", 300)],
    "trpo": [("cartpole", 512), ("pendulum", 1024)],  # one rollout of each preset
    # tabular: steps are sweeps (value iteration) or improvement steps (policy iteration)
    "value-iteration": [("gridworld-slippery", 50)],
    "policy-iteration": [("frozenlake", 5)],
    "q-learning": [("gridworld-4x4", 300)],
    "sarsa": [("cliffwalking", 300)],
    "reinforce": [("cartpole", 2000), ("pendulum", 2000)],
    "a2c": [("cartpole", 400), ("pendulum", 400)],
    "soft-q": [("cartpole", 300)],
    "mbpo": [("pendulum", 300)],  # 100 steps of MBPO after the warm-up: SAC's policy exports
    "svg": [("pendulum", 300)],  # the preset's warm-up is 250 steps: the model is fit at 250
    "dyna-q": [("gridworld-4x4", 300)],
}
# Learners from demonstrations: trained by a dataset, so built directly and given statistics.
FROM_DATA = {"bc": ["cartpole", "pendulum"], "dagger": ["pendulum"]}
# Adversarial imitation (GAIL, AIRL): trained on one scripted episode; the generator is exported.
ADVERSARIAL = {"gail": ("cartpole", 512), "airl": ("pendulum", 1024), "gcl": ("cartpole", 512),
               "deep-maxent-irl": ("pendulum", 512)}
# Planners over learned models: the whole MPC controller is the graph (stateful bundles).
PLANNERS = {"pets": "pendulum", "mbrl-v1.0": "pendulum", "mbrl-v1.5": "inverted-pendulum"}
# Algorithms whose exported controller is another's: mbrl-v0.5 is mbrl-v1.0 without the refits
# (test_deploy_same_controller_as_its_stand_in checks the presets say so).
SAME_CONTROLLER = {"mbrl-v0.5": "mbrl-v1.0"}
# Tabular inverse RL: learns from the demonstrations' state visits, given here directly.
FROM_VISITS = {"maxent-irl": "gridworld-slippery"}
# Latent planners (TD-MPC2): export parity against the agent's own planning on the same noise,
# planner and prior-alone bundles, is tests/agents/latent/test_tdmpc_export.py.
LATENT = {"tdmpc": "pendulum"}
CASES = [(a, e, n) for a, runs in TRAINED.items() if a in ALGORITHMS for e, n in runs]


def test_deploy_every_registered_algorithm_has_a_parity_case() -> None:
    missing = sorted(set(ALGORITHMS) - set(TRAINED) - set(FROM_DATA) - set(PLANNERS)
                     - set(ADVERSARIAL) - set(FROM_VISITS) - set(LATENT) - set(SAME_CONTROLLER))
    assert not missing, f"add export parity cases for {missing}"


@pytest.mark.parametrize(("algo", "stand_in"), SAME_CONTROLLER.items())
def test_deploy_same_controller_as_its_stand_in(algo: str, stand_in: str) -> None:
    """The two presets differ in the refit schedule only, which is not in the exported graph."""
    env = PLANNERS[stand_in]
    cfg, other = algorithm(algo).preset(env), algorithm(stand_in).preset(env)
    assert cfg != other
    assert dataclasses.replace(cfg, train_every=other.train_every) == other


def _robot_units(agent: Any, obs: np.ndarray, env: str) -> np.ndarray:
    """The agent's deterministic action in the robot's units [n, act_dim] (what a bundle emits)."""
    a = np.asarray(agent.act(obs, deterministic=True).cpu().numpy(), np.float64)
    info = sim.spec(env).info
    if info.discrete:
        return a.reshape(-1, 1)
    low, high = np.asarray(info.action_low), np.asarray(info.action_high)
    return low + (np.clip(a, -1, 1) + 1.0) * 0.5 * (high - low)


def _check_bundle(bundle: Path, module: torch.nn.Module, obs: np.ndarray, env: str) -> Contract:
    c = Contract.load(bundle)
    assert c.env == env and c.parity_samples == 1000 + len(obs)
    assert 0.0 <= c.parity_max_abs_error <= 1e-4
    policy = OnnxPolicy(bundle)
    got = np.stack([policy(o) for o in obs]).astype(np.float64)
    with torch.no_grad():
        want = module(torch.from_numpy(obs)).numpy().astype(np.float64)
    if c.discrete:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert np.all(got >= np.array(c.action_low)) and np.all(got <= np.array(c.action_high))
    return c


@pytest.mark.parametrize(("algo", "env", "steps"), CASES, ids=[f"{a}-{e}" for a, e, _ in CASES])
def test_deploy_trained_agent_exports_with_parity(
    tmp_path: Path, algo: str, env: str, steps: int
) -> None:
    result = train(TrainConfig(algo=algo, env=env, steps=steps, seed=0, eval_every=steps,
                               eval_episodes=1, runs_dir=str(tmp_path / "runs")))
    agent, run = load_agent(result.run)
    act = lambda o: agent.act(o, deterministic=True).cpu().numpy()  # noqa: E731
    obs = rollout_observations(act, env, steps=200)
    module = agent.inference_module()
    bundle = tmp_path / "bundle"
    export_bundle(module, env=env, out_dir=bundle, source_run=run.path.name, rollout_obs=obs)
    assert _check_bundle(bundle, module, obs, env).source_run == run.path.name
    # The bundle is the agent: the same deterministic actions on the states it visits.
    policy = OnnxPolicy(bundle)
    got = np.stack([policy(o) for o in obs[:50]]).astype(np.float64)
    np.testing.assert_allclose(got, _robot_units(agent, obs[:50], env), atol=1e-4)


@pytest.mark.parametrize(("algo", "env"), [(a, e) for a, e in FROM_VISITS.items()
                                           if a in ALGORITHMS])
def test_deploy_tabular_irl_exports_with_parity(tmp_path: Path, algo: str, env: str) -> None:
    a = algorithm(algo)
    agent = a.make_agent(a.preset(env), sim.spec(env).info, resolve_device("cpu"))
    obs = rollout_observations(lambda o: np.full(len(o), 2), env, steps=100)  # states visited
    for _ in range(5):
        agent.update({"visits": torch.from_numpy(obs.sum(0)).double() / 5})
    module = agent.inference_module()
    export_bundle(module, env=env, out_dir=tmp_path / "bundle", rollout_obs=obs)
    _check_bundle(tmp_path / "bundle", module, obs, env)
    got = np.stack([OnnxPolicy(tmp_path / "bundle")(o) for o in obs]).astype(np.float64)
    np.testing.assert_allclose(got, _robot_units(agent, obs, env), atol=1e-4)


@pytest.mark.parametrize(("algo", "env"), [(a, e) for a, envs in FROM_DATA.items()
                                           if a in ALGORITHMS for e in envs])
def test_deploy_imitation_learner_exports_with_parity(tmp_path: Path, algo: str, env: str) -> None:
    a = algorithm(algo)
    torch.manual_seed(0)
    agent = a.make_agent(a.preset(env), sim.spec(env).info, resolve_device("cpu"))
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 1, (200, sim.spec(env).info.obs_shape[0])).astype(np.float32)
    with pytest.raises(ExportError, match="normalizer.*no statistics"):
        export_bundle(agent.inference_module(), env=env, out_dir=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    agent.set_statistics(torch.from_numpy(obs))
    module = agent.inference_module()
    export_bundle(module, env=env, out_dir=tmp_path / "bundle", rollout_obs=obs)
    _check_bundle(tmp_path / "bundle", module, obs, env)


@pytest.mark.parametrize(("algo", "env", "steps"),
                         [(a, e, n) for a, (e, n) in ADVERSARIAL.items() if a in ALGORITHMS])
def test_deploy_adversarial_generator_exports_with_parity(tmp_path: Path, algo: str, env: str,
                                                          steps: int) -> None:
    import dataclasses

    from agents.experts.base import make_expert
    from data.record import record

    record(env, make_expert("scripted", env), 1, tmp_path / "ds")
    cfg = dataclasses.replace(algorithm(algo).preset(env), dataset=str(tmp_path / "ds"))
    result = train(TrainConfig(algo=algo, env=env, steps=steps, seed=0, eval_every=steps,
                               eval_episodes=1, runs_dir=str(tmp_path / "runs")), cfg)
    agent, run = load_agent(result.run)
    obs = rollout_observations(lambda o: agent.act(o, deterministic=True).cpu().numpy(), env,
                               steps=200)
    module = agent.inference_module()
    export_bundle(module, env=env, out_dir=tmp_path / "bundle", source_run=run.path.name,
                  rollout_obs=obs)
    _check_bundle(tmp_path / "bundle", module, obs, env)
    got = np.stack([OnnxPolicy(tmp_path / "bundle")(o) for o in obs[:50]]).astype(np.float64)
    np.testing.assert_allclose(got, _robot_units(agent, obs[:50], env), atol=1e-4)


def test_deploy_untrained_ppo_normalizer_is_refused(tmp_path: Path) -> None:
    a = algorithm("ppo")
    agent = a.make_agent(a.preset("pendulum"), sim.spec("pendulum").info, resolve_device("cpu"))
    with pytest.raises(ExportError, match="no statistics"):
        export_bundle(agent.inference_module(), env="pendulum", out_dir=tmp_path / "b")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("algo", "env"), PLANNERS.items())
def test_deploy_a_planner_exports_as_a_stateful_controller(tmp_path: Path, algo: str,
                                                          env: str) -> None:
    """The exported graph is the agent's MPC controller: the same actions as torch on the same
    noise, the warm start carried between calls, and `kinema run` drives it."""
    import dataclasses

    a = algorithm(algo)
    cfg = a.preset(env)
    # Horizon 3: the exporter's tracing time grows with the unrolled iterations x horizon.
    small = dict(hidden=(16,), horizon=3, samples=16, iterations=2, elites=4,
                 particles=1 if cfg.ensemble_size == 1 else 5, max_epochs=3,
                 learning_starts=100, train_every=0 if cfg.train_every == 0 else 100)
    cfg = dataclasses.replace(cfg, **small, replan_every=min(cfg.replan_every, 3))
    result = train(TrainConfig(algo=algo, env=env, steps=200, eval_every=200, eval_episodes=1,
                               runs_dir=str(tmp_path / "runs")), cfg)
    agent, run = load_agent(result.run)
    module = agent.inference_module()
    with pytest.raises(ExportError, match="quantiz"):
        export_bundle(module, env=env, out_dir=tmp_path / "refused", quantize="int8")
    c = export_bundle(module, env=env, out_dir=tmp_path / "bundle", source_run=run.path.name)
    k = cfg.replan_every
    open_loop = ["actions", "t"] if k > 1 else []
    assert c.stateful and [s.input for s in c.state] == ["plan", *open_loop]
    assert [n.name for n in c.noise][:2] == ["cem_noise", "particle_noise"]
    assert 0.0 <= c.parity_max_abs_error <= 1e-4
    policy = OnnxPolicy(tmp_path / "bundle")
    rng = np.random.Generator(np.random.PCG64(c.noise_seed))
    obs = [sim.make(env).reset(seed=i)[0] for i in range(k + 2)]  # past the end of one plan
    state = [torch.full(s.shape, s.initial) for s in c.state]
    noises, got = [], []
    for o in obs:  # the runtime carries the state; torch is given it by hand
        noises.append([torch.from_numpy(rng.standard_normal(n.shape, dtype=np.float32))
                       for n in c.noise])
        with torch.no_grad():
            want, *state = module(torch.as_tensor(o[None], dtype=torch.float32), *state,
                                  *noises[-1])
        got.append(policy(o))
        np.testing.assert_allclose(got[-1], want[0].numpy(), atol=1e-4)
    # The agent's own acting, given the noise of the calls that plan (every k-th): the bundle
    # executes plans open loop exactly as the agent does.
    draws = iter(dict(zip(module.noise_names, noises[i], strict=True))
                 for i in range(0, len(obs), k))
    agent.controller.draw_noise = lambda *args, **kwargs: next(draws)
    agent.reset_evaluation()
    acts = [_robot_units(agent, o[None], env)[0] for o in obs]
    np.testing.assert_allclose(np.stack(got), np.stack(acts), atol=1e-4)
    out = subprocess.run([sys.executable, "-m", "kinema", "run", str(tmp_path / "bundle"),
                          "--env", env, "--episodes", "1", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["episodes"] == 1

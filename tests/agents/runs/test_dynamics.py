"""`kinema train ... --dynamics PARAM=SCALE`: training and evaluation on changed physics (the
sim-to-real DomainRandomization wrapper at a fixed factor), kept in the run's config so that
resume and `kinema eval` use the same physics."""

import json

import numpy as np
import pytest

import sim
from agents.model_free.sac import SACConfig
from agents.runs.config import TrainConfig, dynamics_scales, env_options
from agents.runs.evaluation import evaluate
from agents.runs.train import train
from kinema.cli import main
from tests.agents.loops.crash import assert_resumes_bit_exactly

SAC_SMALL = SACConfig(hidden=(16,), learning_starts=100, batch_size=32, buffer_size=1000)


def push(obs):
    """A constant full torque: its effect on the pendulum depends on the bob's mass."""
    return np.ones((len(obs), 1), dtype=np.float32)


def test_dynamics_values_parse_and_bad_ones_are_refused_in_one_line():
    assert dynamics_scales("") == {}
    assert dynamics_scales("mass=1.3, damping=0.8") == {"mass": 1.3, "damping": 0.8}
    assert env_options("mass=1.3") == {"domain_randomization": {"mass": (1.3, 1.3)}}
    for bad in ("mass", "mass=0", "mass=-1", "mass=x", "mass=nan", "weight=1.3",
                "mass=1.3,mass=1.2"):
        with pytest.raises(ValueError, match="--dynamics must be PARAM=SCALE pairs") as e:
            TrainConfig(algo="sac", env="pendulum", dynamics=bad)
        assert repr(bad) in str(e.value) and "\n" not in str(e.value)


def test_the_changed_env_is_heavier_in_every_episode():
    env = sim.make("pendulum", **env_options("mass=1.3"))
    for seed in (0, 1):
        env.reset(seed=seed)
        assert env.unwrapped.m == pytest.approx(1.3)  # Pendulum-v1's bob is 1.0
    env.close()
    heavy = evaluate(push, "pendulum", 2, **env_options("mass=1.3"))
    assert not np.allclose(heavy, evaluate(push, "pendulum", 2))


def test_train_eval_and_resume_use_the_runs_dynamics(tmp_path, capsys):
    rc = main(["train", "sac", "--env", "pendulum", "--dynamics", "mass=1.3", "--steps", "400",
               "--eval-every", "400", "--eval-episodes", "2", "--learning-starts", "400",
               "--hidden", "16", "--runs-dir", str(tmp_path / "cli"), "--no-progress", "--json"])
    assert rc == 0
    capsys.readouterr()
    (run,) = (tmp_path / "cli").iterdir()
    saved = json.loads((run / "config.json").read_text())["config"]["train"]
    assert saved["dynamics"] == "mass=1.3"
    # kinema eval RUN evaluates on the physics the run trained on
    assert main(["eval", str(run), "--episodes", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["dynamics"] == "mass=1.3"
    from agents.runs.train import load_agent

    agent, _ = load_agent(run)

    def act(o):
        return agent.act(o, deterministic=True).cpu().numpy()

    heavy = evaluate(act, "pendulum", 2, **env_options("mass=1.3"))
    assert out["return_mean"] == pytest.approx(float(heavy.mean()))
    # the training envs are changed too: the same random warm-up actions, other returns
    plain = train(TrainConfig(algo="sac", env="pendulum", steps=400, eval_every=400,
                              eval_episodes=1, runs_dir=str(tmp_path / "plain")),
                  SACConfig(hidden=(16,), learning_starts=400))

    def train_returns(path):
        recs = [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]
        return [r["episode_return"] for r in recs if r["kind"] == "train"]

    assert train_returns(plain.run) != train_returns(run)


def test_resume_on_changed_dynamics_is_bit_exact(tmp_path):
    base = dict(algo="sac", env="pendulum", steps=400, eval_every=200, checkpoint_every=200,
                eval_episodes=1, seed=2, dynamics="mass=1.3")
    assert_resumes_bit_exactly(tmp_path, base, 200, SAC_SMALL)


def test_a_parameter_the_env_lacks_is_refused_before_the_run_folder(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(ValueError, match=r"--dynamics 'friction=1.2' does not fit 'pendulum'.*"
                                         r"exposes \['mass'\]") as e:
        train(TrainConfig(algo="sac", env="pendulum", steps=64, dynamics="friction=1.2",
                          runs_dir=str(runs)), SAC_SMALL)
    assert "\n" not in str(e.value)
    assert not runs.exists() or not any(runs.iterdir())

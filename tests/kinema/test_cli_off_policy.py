"""`kinema train sac|td3|ddpg|dqn`: smoke runs, options, export, and the action-space mismatch."""

import json
import subprocess
import sys

import pytest

from kinema.cli import main


def kinema(*args):
    return subprocess.run([sys.executable, "-m", "kinema", *args], capture_output=True, text=True,
                          timeout=300)


def test_train_sac_on_pendulum_then_export(tmp_path, capsys):
    """`kinema train sac` takes its network and warm-up options, and the run exports with
    parity. That SAC learns pendulum is tests/agents/model_free/test_off_policy_learning.py
    (the same `train` that the CLI calls)."""
    rc = main(["train", "sac", "--env", "pendulum", "--steps", "300", "--eval-every", "300",
               "--eval-episodes", "2", "--runs-dir", str(tmp_path), "--no-progress", "--json",
               "--hidden", "64", "64", "--learning-starts", "100"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 300 and out["episodes"] == 2 and out["stopped"] == "budget"
    (run,) = tmp_path.iterdir()
    config = json.loads((run / "config.json").read_text())["config"]["algo_config"]
    assert config["hidden"] == [64, 64] and config["learning_starts"] == 100
    r = kinema("export", str(run), "--out", str(tmp_path / "bundle"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["parity_max_abs_error"] <= 1e-4


@pytest.mark.parametrize("algo", ["td3", "ddpg"])
def test_train_td3_and_ddpg_smoke(tmp_path, capsys, algo):
    rc = main(["train", algo, "--env", "pendulum", "--steps", "200", "--eval-every", "200",
               "--eval-episodes", "1", "--runs-dir", str(tmp_path), "--no-progress", "--json",
               "--hidden", "16", "--learning-starts", "50"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 200


def test_train_dqn_smoke_with_n_step_and_dueling(tmp_path, capsys):
    rc = main(["train", "dqn", "--env", "cartpole", "--steps", "512", "--eval-every", "512",
               "--eval-episodes", "1", "--runs-dir", str(tmp_path), "--no-progress", "--json",
               "--n-step", "3", "--dueling", "--hidden", "32"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 512
    (run,) = tmp_path.iterdir()
    config = json.loads((run / "config.json").read_text())["config"]["algo_config"]
    assert config["n_step"] == 3 and config["dueling"] is True


@pytest.mark.parametrize("algo,env,kind,fit,unfit", [
    ("dqn", "pendulum", "continuous", {"ddpg", "ppo", "sac", "td3"}, {"dqn"}),
    ("sac", "cartpole", "discrete", {"dqn", "ppo"}, {"sac", "td3", "ddpg"}),
    ("ddpg", "cartpole", "discrete", {"dqn", "ppo"}, {"sac", "td3", "ddpg"}),
    # the tabular methods fit discrete actions, but only on the tabular envs
    ("sac", "cartpole", "discrete", {"dqn", "soft-q"}, {"value-iteration", "q-learning"}),
    ("sac", "taxi", "discrete", {"dqn", "value-iteration", "q-learning", "sarsa"}, {"sac"}),
])
def test_wrong_action_space_is_one_line_naming_the_algorithms_that_fit(algo, env, kind, fit,
                                                                        unfit):
    r = kinema("train", algo, "--env", env, "--steps", "100")
    assert r.returncode == 2
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    head, _, names = lines[0].partition(f"algorithms for {kind} actions: ")
    assert head.startswith(f"kinema train: error: {algo} needs") and env in head
    named = set(names.split(", "))
    assert fit <= named and not unfit & named


def test_ddpg_help_shows_its_preset():
    r = kinema("train", "ddpg", "--env", "pendulum", "--help")
    assert r.returncode == 0
    for opt in ("--policy-delay", "--n-critics", "--target-policy-noise", "--exploration-noise",
                "--learning-starts", "--buffer-size"):
        assert opt in r.stdout

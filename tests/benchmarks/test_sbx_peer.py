"""SBX as a `kinema bench rl` peer, without its JAX venv: the JSON spec per task and its
translation (schedules, activations, action noise), the peer script's evaluation against the
shared protocol, its refusals, the subprocess contract of run_sbx (on a stand-in script), and
the venv builder's order and READY file."""

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3", reason="the bench extra (stable-baselines3) is needed")

import sim  # noqa: E402
from agents.runs.evaluation import evaluate  # noqa: E402
from benchmarks import peer_venv, rl, sbx_peer  # noqa: E402
from benchmarks.peers import sbx_rl  # noqa: E402

FAKE_ACTIVATIONS = {"relu": "RELU", "tanh": "TANH"}


def _task(target=-200.0, final=False):
    return types.SimpleNamespace(steps=3000, eval_every=1000, target=target, final=final)


def _noise(mean, sigma):
    return ("noise", mean, sigma)


def _jsonable(kwargs):
    """SB3 kwargs as the SBX JSON writes them: a callable schedule compared at a few points."""
    import torch

    names = {torch.nn.ReLU: "RELU", torch.nn.Tanh: "TANH"}
    out = {}
    for k, v in kwargs.items():
        out[k] = [v(p) for p in (1.0, 0.5, 0.1)] if callable(v) else v
    if "activation_fn" in out.get("policy_kwargs", {}):
        act = out["policy_kwargs"]["activation_fn"]
        out["policy_kwargs"] = out["policy_kwargs"] | {"activation_fn": names.get(act, act)}
    return out


@pytest.mark.parametrize("name", sorted(sbx_peer.SBX_TASKS))
def test_every_task_spec_is_json_the_script_accepts_and_translates(name):
    entry = sbx_peer.SBX_TASKS[name]
    assert name in rl.TASKS  # an SBX row only beside a bench-rl task
    assert entry["env_id"] == sim.spec(rl.TASKS[name].env).build.args[0]  # our gymnasium id
    spec = sbx_peer.task_spec(name, _task(), seed=3)
    assert json.loads(json.dumps(spec)) == spec
    sbx_rl.check_spec(spec)
    assert (spec["seed"], spec["steps"], spec["eval_every"], spec["target"]) == (3, 3000, 1000,
                                                                                 -200.0)
    out = sbx_rl.translate(spec["kwargs"], 6, FAKE_ACTIVATIONS, _noise)
    assert "noise_std" not in out
    act = out.get("policy_kwargs", {}).get("activation_fn")
    assert act in (None, "RELU", "TANH")


@pytest.mark.parametrize("name", sorted(sbx_peer.SBX_TASKS))
def test_sbx_gets_the_hyperparameters_sb3_gets(name):
    task, entry = rl.TASKS[name], sbx_peer.SBX_TASKS[name]
    assert entry["algo"] == task.sb3_algo and entry["n_envs"] == task.sb3_n_envs
    assert entry["normalize"] == getattr(task, "sb3_normalize", False)
    spec = sbx_peer.task_spec(name, task, 0)
    ours = _jsonable(sbx_rl.translate(spec["kwargs"], 1, FAKE_ACTIVATIONS, _noise))
    # SB3's kwargs, and SB3's own defaults where SBX's differ (the SBX side sets those)
    sb3 = sbx_peer.with_sb3_defaults(entry["algo"], _jsonable(task.sb3_kwargs))
    if "noise_std" in sb3:
        assert ours.pop("action_noise") == ("noise", [0.0], [sb3.pop("noise_std")])
    assert ours == sb3


def test_sb3_defaults_fill_only_what_the_zoo_leaves_out():
    td3 = sbx_peer.with_sb3_defaults("TD3", {"learning_starts": 10_000})
    assert td3 == {"learning_starts": 10_000, "learning_rate": 1e-3,
                   "policy_kwargs": {"net_arch": [400, 300]}}
    ppo = sbx_peer.with_sb3_defaults("PPO", {"policy_kwargs": {"ortho_init": False}})
    assert ppo == {"policy_kwargs": {"ortho_init": False}}
    assert sbx_peer.with_sb3_defaults("SAC", {"learning_starts": 5}) == {"learning_starts": 5}


def test_translation_of_schedules_activations_and_noise():
    out = sbx_rl.translate({"learning_rate": {"linear": 1e-3}, "clip_range": 0.2, "gamma": 0.98,
                            "noise_std": 0.1, "policy_kwargs": {"activation_fn": "relu",
                                                                 "log_std_init": -2}},
                           2, FAKE_ACTIVATIONS, _noise)
    assert out["learning_rate"](1.0) == pytest.approx(1e-3)
    assert out["learning_rate"](0.25) == pytest.approx(2.5e-4)
    assert out["clip_range"] == 0.2 and out["gamma"] == 0.98
    assert out["policy_kwargs"] == {"activation_fn": "RELU", "log_std_init": -2}
    tag, mean, sigma = out["action_noise"]
    np.testing.assert_array_equal(mean, [0.0, 0.0])
    np.testing.assert_allclose(sigma, [0.1, 0.1])
    from stable_baselines3.common.noise import NormalActionNoise

    noise = sbx_rl.translate({"noise_std": 0.3}, 3, FAKE_ACTIVATIONS,
                             NormalActionNoise)["action_noise"]
    assert noise().shape == (3,)


def test_bad_kwargs_and_specs_are_one_line_errors_naming_what_is_accepted():
    with pytest.raises(ValueError, match="activation_fn 'gelu': accepted are relu, tanh"):
        sbx_rl.translate({"policy_kwargs": {"activation_fn": "gelu"}}, 1, FAKE_ACTIVATIONS,
                         _noise)
    with pytest.raises(ValueError, match="accepted are a number or"):
        sbx_rl.translate({"learning_rate": {"cosine": 1e-3}}, 1, FAKE_ACTIVATIONS, _noise)
    spec = sbx_peer.task_spec("sac-pendulum", _task(), 0)
    with pytest.raises(ValueError, match="algo 'A2C': accepted are SAC, TD3, DDPG, PPO, DQN"):
        sbx_rl.check_spec(spec | {"algo": "A2C"})
    with pytest.raises(ValueError, match=r"missing \['target'\], unknown \['n_env'\]"):
        sbx_rl.check_spec({k: v for k, v in spec.items() if k != "target"} | {"n_env": 1})


def test_the_script_refuses_a_bad_spec_before_importing_jax():
    spec = sbx_peer.task_spec("sac-pendulum", _task(), 0) | {"algo": "A2C"}
    done = subprocess.run([sys.executable, "-I", str(sbx_peer.SCRIPT)], input=json.dumps(spec),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == "sbx_rl: algo 'A2C': accepted are SAC, TD3, DDPG, PPO, DQN"


def test_unknown_task_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="no SBX entry for task 'a2c-cartpole'; known: "
                                         "sac-pendulum, td3-pendulum"):
        sbx_peer.run_sbx("a2c-cartpole", rl.TASKS["a2c-cartpole"], 0,
                         venv=tmp_path / "never-built")
    assert not (tmp_path / "never-built").exists()


def test_a_fixed_budget_task_has_no_target():
    assert sbx_peer.task_spec("sac-hopper-30k", _task(target=None, final=True), 0)["target"] is None
    assert sbx_peer.task_spec("sac-pendulum", _task(target=-200.0, final=True), 0)["target"] is None


@pytest.mark.parametrize(("env", "task"), [("cartpole", "dqn-cartpole"),
                                         ("pendulum", "sac-pendulum")])
def test_the_scripts_evaluation_is_the_shared_protocol(env, task):
    # a fixed policy (push left; no torque) over the 10 episodes seeded 10000..10009: the
    # peer's evaluation on the gymnasium id returns what Kinema's evaluate returns on our env
    discrete = env == "cartpole"

    def act(obs):
        return np.zeros(len(obs), dtype=np.int64) if discrete else np.zeros((len(obs), 1))

    theirs = sbx_rl.evaluate(act, sbx_peer.SBX_TASKS[task]["env_id"])
    assert np.isfinite(theirs) and theirs != 0.0
    assert theirs == pytest.approx(evaluate(act, env).mean(), rel=1e-6)


def test_run_sbx_reads_the_last_json_line_and_fails_in_one_line(tmp_path, monkeypatch):
    script = tmp_path / "peer.py"
    script.write_text(
        "import json, sys\n"
        "spec = json.loads(sys.argv[1])\n"
        "print('progress', file=sys.stderr)\n"
        "if spec['seed'] == 1:\n"
        "    raise SystemExit('sbx_rl: it broke')\n"
        "print('a warning on stdout')\n"
        "print(json.dumps({'evals': [[1000, -150.0, 2.0, 2.5]], 'versions': {'sbx-rl': 'x'},\n"
        "                  'seen': spec}))\n")
    monkeypatch.setattr(sbx_peer, "SCRIPT", script)
    monkeypatch.setattr(sbx_peer, "venv_python", lambda venv: Path(sys.executable))
    out = sbx_peer.run_sbx("td3-pendulum", rl.TASKS["td3-pendulum"], 0)
    assert out["evals"] == [(1000, -150.0, 2.0, 2.5)]
    assert out["seen"]["algo"] == "TD3" and out["seen"]["target"] == -200.0
    assert out["seen"]["kwargs"]["noise_std"] == 0.1
    with pytest.raises(RuntimeError, match=r"^sbx peer: td3-pendulum seed 1 failed \(exit 1\): "
                                           r"sbx_rl: it broke$"):
        sbx_peer.run_sbx("td3-pendulum", rl.TASKS["td3-pendulum"], 1)


def test_ensure_venv_builds_in_order_writes_ready_last_and_reuses_it(tmp_path, monkeypatch):
    calls = []

    def check(cmd, what, *, peer, timeout=0):
        assert not (tmp_path / "v" / peer_venv.READY).exists()  # READY comes after all this
        calls.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            (tmp_path / "v" / "bin").mkdir(parents=True)
            (tmp_path / "v" / "bin" / "python").write_text("")
        return ""

    monkeypatch.setattr(peer_venv, "check", check)
    spec = {"pins": ("a==1", "b==2")}
    python = peer_venv.ensure_venv(tmp_path / "v", spec, [["a==1"], ["b==2", "a==1"]],
                                   peer="p", probe="import a")
    assert python == (tmp_path / "v" / "bin" / "python").resolve()
    assert [c[-2:] for c in calls[1:]] == [["-q", "a==1"], ["b==2", "a==1"], ["-c", "import a"]]
    assert json.loads((tmp_path / "v" / peer_venv.READY).read_text()) == {"pins": ["a==1", "b==2"]}
    calls.clear()
    assert peer_venv.ensure_venv(tmp_path / "v", spec, [["a==1"]], peer="p", probe="") == python
    assert calls == []  # ready with these pins: nothing rebuilt
    peer_venv.ensure_venv(tmp_path / "v", {"pins": ["a==2"]}, [["a==2"]], peer="p", probe="")
    assert calls[0][1:3] == ["-m", "venv"]  # other pins: rebuilt from scratch


def test_a_failing_command_is_one_line_naming_the_peer():
    with pytest.raises(RuntimeError, match=r"^sbx peer: probing failed \(exit 1\): "
                                           r"ValueError: no such thing$"):
        peer_venv.check([sys.executable, "-c", "raise ValueError('no such thing')"], "probing",
                        peer="sbx peer")


def test_the_torch_probe_fails_when_an_install_replaced_torch():
    import torch

    ours = torch.__version__.split("+")[0]
    peer_venv.check([sys.executable, "-I", "-c", peer_venv.torch_probe(f"torch=={ours}", "json")],
                    "probing", peer="p")
    with pytest.raises(RuntimeError, match=rf"^p: probing failed \(exit 1\): AssertionError: the "
                                           rf"venv has torch {ours}, not torch==0.0.1: an install"):
        peer_venv.check([sys.executable, "-I", "-c", peer_venv.torch_probe("torch==0.0.1")],
                        "probing", peer="p")

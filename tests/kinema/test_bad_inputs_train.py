"""Bad inputs to `kinema train`, `train --resume`, `eval` and `export`: each is one line on
stderr naming the bad value or file and what is accepted, exit 2, and nothing is left behind
(no run folder, no bundle) or changed (the run folder that was read stays byte for byte)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kinema.cli import main

pytestmark = pytest.mark.bad_input


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, list[str]]:
    """(exit code, non-empty stderr lines) of the real CLI, run in this process."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own refusals
        rc = int(e.code or 0)
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def refused(capsys: pytest.CaptureFixture[str], args: list[object], *needles: str) -> str:
    rc, lines = cli(capsys, *args)
    assert rc == 2 and len(lines) == 1, lines
    (line,) = lines
    assert "Traceback" not in line and line.startswith("kinema "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# -- a new run: refused before a run folder exists ----------------------------------------------
NEW_RUN = [
    (["ppo", "--env", "cartpole", "--seed", "-1"], ["--seed", "-1", "[0, 4294967295]"]),
    (["ppo", "--env", "cartpole", "--seed", str(2**32)], ["--seed", "4294967296"]),
    (["ppo", "--env", "cartpole", "--hidden", "0"], ["hidden", "(0,)", ">= 1"]),
    (["ppo", "--env", "cartpole", "--hidden", "64", "-5"], ["hidden", "(64, -5)", ">= 1"]),
    (["sac", "--env", "pendulum", "--hidden", "-5"], ["hidden", "(-5,)", ">= 1"]),
    (["td3", "--env", "pendulum", "--hidden", "0"], ["hidden", "(0,)"]),
    (["dqn", "--env", "cartpole", "--hidden", "0", "0"], ["hidden", "(0, 0)"]),
    (["bc", "--env", "pendulum", "--dataset", "x", "--hidden", "0"], ["hidden", "(0,)"]),
    (["sac", "--env", "pendulum", "--buffer-size", str(10**15)],
     ["--buffer-size 1000000000000000", "PiB", "is free", "transitions fit"]),
    (["dqn", "--env", "cartpole", "--buffer-size", str(10**13)],
     ["--buffer-size 10000000000000", "TiB", "transitions fit"]),
    (["ppo", "--env", "cartpole", "--target-return", "nan"], ["--target-return", "nan", "finite"]),
    (["ppo", "--env", "cartpole", "--target-return", "inf"], ["--target-return", "inf", "finite"]),
    (["ppo", "--env", "cartpole", "--target-return=-inf"], ["--target-return", "-inf"]),
    (["sac", "--env", "pendulum", "--tau", "nan"], ["tau", "nan", "(0, 1]"]),
    (["sac", "--env", "pendulum", "--tau", "1.5"], ["tau", "1.5", "(0, 1]"]),
    (["sac", "--env", "pendulum", "--lr", "inf"], ["lr", "inf", "> 0"]),
    (["sac", "--env", "pendulum", "--init-alpha", "inf"], ["init_alpha", "inf"]),
    (["sac", "--env", "pendulum", "--target-entropy", "nan"], ["target_entropy", "nan"]),
    (["sac", "--env", "pendulum", "--gamma", "nan"], ["gamma", "nan", "[0, 1]"]),
    (["td3", "--env", "pendulum", "--exploration-noise", "-0.1"], ["exploration_noise", "-0.1"]),
    (["td3", "--env", "pendulum", "--target-policy-noise", "nan"], ["target_policy_noise"]),
    (["ddpg", "--env", "pendulum", "--target-noise-clip", "inf"], ["target_noise_clip", "inf"]),
    (["dqn", "--env", "cartpole", "--exploration-final-eps", "nan"], ["exploration_final_eps"]),
    (["dqn", "--env", "cartpole", "--exploration-initial-eps", "2"], ["exploration_initial_eps"]),
    (["dqn", "--env", "cartpole", "--max-grad-norm", "nan"], ["max_grad_norm", "nan"]),
    (["dqn", "--env", "cartpole", "--tau", "0"], ["tau", "0.0", "(0, 1]"]),
    (["ppo", "--env", "cartpole", "--lr", "-1"], ["lr", "-1.0", "> 0"]),
    (["ppo", "--env", "cartpole", "--lam", "1.5"], ["lam", "1.5", "[0, 1]"]),
    (["ppo", "--env", "cartpole", "--clip-coef", "0"], ["clip_coef", "0.0"]),
    (["ppo", "--env", "cartpole", "--target-kl", "nan"], ["target_kl", "nan", "or None"]),
    (["ppo", "--env", "cartpole", "--ent-coef", "inf"], ["ent_coef", "inf"]),
    (["ppo", "--env", "cartpole", "--init-log-std", "nan"], ["init_log_std", "nan"]),
    (["ppo", "--env", "cartpole", "--num-minibatches", "0"], ["num_minibatches", "0", ">= 1"]),
    (["bc", "--env", "pendulum", "--dataset", "x", "--weight-decay", "nan"], ["weight_decay"]),
    (["bc", "--env", "pendulum", "--dataset", "x", "--lr", "0"], ["lr", "0.0", "> 0"]),
    (["ppo", "--env", "cartpole", "--steps", "1e23"], ["--steps", "at most 1000000000000"]),
    (["ppo", "--env", "cartpole", "--steps", str(10**23)], ["--steps", "at most 1000000000000"]),
    (["ppo", "--env", "cartpole", "--steps", "2.5e-1"], ["--steps", "'2.5e-1'", "integer"]),
    (["ppo", "--env", "cartpole", "--keep-checkpoints", "-1"], ["--keep-checkpoints", "-1"]),
    (["ppo", "--env", "cartpole", "--threads", "1e9"], ["--threads", "at most 1024"]),
    (["ppo", "--env", "cheetah-run-pixels"], ["'cheetah-run-pixels' gives pixels", "tdmpc",
                                              "ppo on 'cheetah-run'"]),
    (["sac", "--env", "walker-walk-pixels"], ["'walker-walk-pixels' gives pixels", "tdmpc"]),
]


@pytest.mark.parametrize("args,needles", NEW_RUN, ids=[" ".join(a) for a, _ in NEW_RUN])
def test_a_bad_option_of_a_new_run_is_one_line_and_leaves_no_run_folder(
        capsys, tmp_path, args, needles):
    runs = tmp_path / "runs"
    refused(capsys, ["train", *args, "--runs-dir", runs, "--no-progress"], *needles)
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("inside", [False, True], ids=["a file", "inside a file"])
def test_runs_dir_naming_a_file_is_one_line(capsys, tmp_path, inside):
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    runs = file / "runs" if inside else file
    refused(capsys, ["train", "ppo", "--env", "cartpole", "--steps", "64", "--runs-dir", runs,
                     "--no-progress"], "--runs-dir", str(runs), "a file", "must be a folder")
    assert file.read_text() == "mine\n" and sorted(tmp_path.iterdir()) == [file]


# -- an existing run whose files were edited ----------------------------------------------------
@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ppo")
    assert main(["train", "ppo", "--env", "cartpole", "--steps", "256", "--eval-episodes", "1",
                 "--runs-dir", str(root), "--no-progress", "--json"]) == 0
    (run,) = root.iterdir()
    return run


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sac")
    assert main(["train", "sac", "--env", "pendulum", "--steps", "120", "--eval-episodes", "1",
                 "--hidden", "16", "--buffer-size", "1000", "--learning-starts", "50",
                 "--runs-dir", str(root), "--no-progress", "--json"]) == 0
    (run,) = root.iterdir()
    return run


def _edit_config(run: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads((run / "config.json").read_text())
    edit(meta["config"])
    (run / "config.json").write_text(json.dumps(meta, indent=2))


def _checkpoint(run: Path) -> Path:
    return run / (run / "LATEST").read_text().strip()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rehash(folder: Path, edit: Callable[[dict], None] | None = None) -> None:
    """Record the files' SHA-256s again after an edit: a consistent lie, which only the checks
    of content against the network can find."""
    meta = json.loads((folder / "state.json").read_text())
    if edit is not None:
        edit(meta["tree"])
    for name in meta["files"]:
        meta["files"][name] = _sha(folder / name)
    (folder / "state.json").write_text(json.dumps(meta, indent=1))
    (folder / "state.json.sha256").write_text(f"{_sha(folder / 'state.json')}  state.json\n")


def _lie_in_header(file: Path, key: str, **changes: object) -> None:
    """Rewrite a safetensors header so that it says something else about `key`."""
    data = file.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header[key].update(changes)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    file.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])
    _rehash(file.parent)


def _set(section: str, key: str, value: object) -> Callable[[dict], None]:
    return lambda config: config[section].__setitem__(key, value)


CONFIG_EDITS = {
    "text for a number": (_set("algo_config", "lr", "fast"),
                          ["config.json", "'algo_config'", "lr is 'fast'", "expected a number"]),
    "text for an integer": (_set("train", "seed", "zero"),
                            ["config.json", "'train'", "seed is 'zero'", "expected an integer"]),
    "text for the sizes": (_set("algo_config", "hidden", "wide"),
                           ["config.json", "hidden is 'wide'", "a list of integers"]),
    "a size of 0": (_set("algo_config", "hidden", [0, 64]), ["config.json", "hidden", "(0, 64)"]),
    "null for a number": (_set("algo_config", "gamma", None), ["config.json", "gamma is null"]),
    "a NaN": (_set("algo_config", "gamma", float("nan")), ["config.json", "gamma", "nan"]),
    "another network size": (_set("algo_config", "hidden", [32, 32]),
                             ["model.safetensors", "agent/net/actor.0.weight", "[64, 4]",
                              "[32, 4]", "config.json"]),
    "no algo_config": (lambda c: c.pop("algo_config"), ["config.json", "'algo_config' section"]),
    "no train": (lambda c: c.pop("train"), ["config.json", "'train' section"]),
    "a missing field": (lambda c: c["train"].pop("env"), ["config.json", "'env' is missing"]),
    "an unknown env": (_set("train", "env", "cartpol"), ["config.json", "did you mean cartpole"]),
}
COMMANDS = {
    "resume": lambda run, tmp: ["train", "--resume", run, "--steps", "512", "--no-progress"],
    "eval": lambda run, tmp: ["eval", run, "--episodes", "1"],
    "export": lambda run, tmp: ["export", run, "--out", tmp / "bundle"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("edit", sorted(CONFIG_EDITS))
def test_an_edited_config_json_is_one_line_and_the_run_is_left_as_it_was(
        capsys, tmp_path, ppo_run, edit, command):
    run = Path(shutil.copytree(ppo_run, tmp_path / ppo_run.name))
    change, needles = CONFIG_EDITS[edit]
    _edit_config(run, change)
    before = snapshot(run)
    refused(capsys, COMMANDS[command](run, tmp_path), *needles)
    assert snapshot(run) == before and not (tmp_path / "bundle").exists()


def _lying_header(file: str, key: str, **lie: object) -> Callable[[Path], None]:
    """Edit the checkpoint's safetensors header so that it lies about one tensor."""
    return lambda run: _lie_in_header(_checkpoint(run) / file, key, **lie)


_model_shape = _lying_header("model.safetensors", "agent/net/actor.0.weight", shape=[128, 2])
_model_dtype = _lying_header("model.safetensors", "agent/net/actor.0.weight", dtype="I32")
_optim_shape = _lying_header("optim.safetensors", "optim/state/0/exp_avg", shape=[4, 64])
_optim_dtype = _lying_header("optim.safetensors", "optim/state/0/exp_avg_sq", dtype="I32")


def _edited_state(run: Path) -> None:
    folder = _checkpoint(run)
    text = (folder / "state.json").read_text()
    (folder / "state.json").write_text(text.replace('"iteration": ', '"iteration": 1'))


def _no_sidecar(run: Path) -> None:
    (_checkpoint(run) / "state.json.sha256").unlink()


CHECKPOINT_EDITS = {
    "a header lying about a shape": (_model_shape, ["model.safetensors",
                                                    "agent/net/actor.0.weight", "[128, 2]",
                                                    "needs float32 of shape [64, 4]"]),
    "a header lying about a dtype": (_model_dtype, ["model.safetensors", "int32",
                                                    "needs float32"]),
    "moments of another shape": (_optim_shape, ["optim.safetensors", "optim/state/0/exp_avg",
                                                "[4, 64]", "[64, 4]"]),
    "moments of another dtype": (_optim_dtype, ["optim.safetensors", "exp_avg_sq", "int32"]),
    "an edited state.json": (_edited_state, ["state.json is corrupt or was edited",
                                             "state.json.sha256"]),
    "a missing state.json.sha256": (_no_sidecar, ["state.json.sha256 is missing"]),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("edit", sorted(CHECKPOINT_EDITS))
def test_a_checkpoint_that_does_not_fit_is_one_line_naming_its_file(
        capsys, tmp_path, ppo_run, edit, command):
    run = Path(shutil.copytree(ppo_run, tmp_path / ppo_run.name))
    damage, needles = CHECKPOINT_EDITS[edit]
    damage(run)
    before = snapshot(run)
    refused(capsys, COMMANDS[command](run, tmp_path), *needles)
    assert snapshot(run) == before and not (tmp_path / "bundle").exists()


def _replay(key: str, value: object) -> Callable[[dict], None]:
    return lambda tree: tree["replay"].__setitem__(key, value)


REPLAY_EDITS = {
    "size": (_replay("size", 500), ["state.json", "replay size 500", "position 120"]),
    "rows": (_replay("rows", 2000), ["state.json", "2000 rows of 1 envs", "1000 rows of 1"]),
    "position": (_replay("pos", 7), ["state.json", "position 7"]),
    "a tensor": (lambda tree: tree["replay"].__setitem__("rewards", tree["replay"]["obs"]),
                 ["model.safetensors", "replay/rewards", "float32 of shape [120, 1]"]),
}


@pytest.mark.parametrize("edit", sorted(REPLAY_EDITS))
def test_a_replay_buffer_that_does_not_fit_is_one_line(capsys, tmp_path, sac_run, edit):
    run = Path(shutil.copytree(sac_run, tmp_path / sac_run.name))
    change, needles = REPLAY_EDITS[edit]
    _rehash(_checkpoint(run), change)
    before = snapshot(run)
    refused(capsys, ["train", "--resume", run, "--steps", "240", "--no-progress"], *needles)
    assert snapshot(run) == before


def test_a_bad_override_on_resume_names_the_flag_not_config_json(capsys, tmp_path, ppo_run):
    run = Path(shutil.copytree(ppo_run, tmp_path / ppo_run.name))
    before = snapshot(run)
    line = refused(capsys, ["train", "--resume", run, "--target-return", "nan", "--no-progress"],
                   "--target-return must be a finite number, got nan")
    assert "config.json" not in line and snapshot(run) == before

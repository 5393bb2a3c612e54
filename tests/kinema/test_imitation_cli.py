"""CLI smoke of the imitation path: collect -> train bc -> eval -> export; dagger; bad input."""

import json
import subprocess
import sys

import pytest

from kinema.cli import main


def kinema(*args):
    return subprocess.run([sys.executable, "-m", "kinema", *args], capture_output=True,
                          text=True, timeout=300)


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("collect") / "ds"
    r = kinema("collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "3",
               "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = last_json(r.stdout)
    assert res["episodes"] == 3 and res["steps"] == 600
    assert -400 < res["return_mean"] < 0 and res["return_std"] >= 0
    return out


def test_train_bc_eval_export_and_collect_from_the_run(dataset, tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", "bc", "--env", "pendulum", "--dataset", str(dataset), "--steps", "300",
                 "--runs-dir", str(runs), "--no-progress", "--json", "--hidden", "32", "32"]) == 0
    (run,) = runs.iterdir()
    r = kinema("eval", str(run), "--episodes", "2", "--json")
    assert r.returncode == 0, r.stderr
    ev = last_json(r.stdout)
    assert ev["episodes"] == 2 and "normalized_score" in ev
    r = kinema("export", str(run), "--out", str(tmp_path / "bundle"), "--json")
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout)["parity_max_abs_error"] <= 1e-4
    assert (tmp_path / "bundle" / "policy.onnx").is_file()
    r = kinema("collect", "--env", "pendulum", "--expert", str(run), "--episodes", "1",
               "--out", str(tmp_path / "from-run"), "--json")
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout)["episodes"] == 1
    meta = json.loads((tmp_path / "from-run/data/metadata.json").read_text())["kinema"]
    assert meta["expert"]["kind"] == "run" and meta["expert"]["algo"] == "bc"


def test_train_dagger_cli(tmp_path):
    r = kinema("train", "dagger", "--env", "pendulum", "--expert", "scripted", "--steps", "400",
               "--initial-episodes", "1", "--episodes-per-round", "1", "--updates-per-round",
               "200", "--hidden", "32", "32", "--runs-dir", str(tmp_path), "--no-progress",
               "--json")
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert out["labels"] == 400 and "normalized_score" in out and out["steps"] == 400
    (run,) = tmp_path.iterdir()
    assert (run / "dataset" / "manifest.json").is_file()


def test_collect_appends(dataset, tmp_path):
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    r = kinema("collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "1",
               "--out", str(ds), "--append", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads((ds / "manifest.json").read_text())["episodes"] == 4


@pytest.mark.parametrize("args,needle", [
    (["collect", "--env", "pendulum", "--expert", "wizard", "--episodes", "1", "--out", "x"],
     "neither one of scripted, mpc, teleop nor a run folder"),
    (["collect", "--env", "humanoid", "--expert", "scripted", "--episodes", "1", "--out", "x"],
     "no scripted expert for 'humanoid'"),
    (["collect", "--env", "pendulm", "--expert", "scripted", "--episodes", "1", "--out", "x"],
     "did you mean pendulum"),
    (["train", "bc", "--env", "pendulum", "--no-progress"], "--dataset DIR is required"),
    (["train", "bc", "--env", "pendulum", "--dataset", "no-such-ds", "--no-progress"],
     "no-such-ds does not exist"),
    (["train", "bc", "--env", "pendulum", "--head", "l1", "--dataset", "x"], "head 'l1'"),
])
def test_bad_input_is_one_clear_line(args, needle, tmp_path):
    r = subprocess.run([sys.executable, "-m", "kinema", *args, *(
        ["--runs-dir", str(tmp_path)] if args[0] == "train" else [])],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and needle in errors[0], r.stderr
    assert "Traceback" not in r.stderr


def test_collecting_into_an_existing_dataset_needs_append(dataset):
    r = kinema("collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "1",
               "--out", str(dataset))
    assert r.returncode == 2 and "already holds a dataset" in r.stderr

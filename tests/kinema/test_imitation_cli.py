"""The imitation path through the CLI: collect -> train bc (reaching a stated expert-normalized
score) -> eval -> export; dagger; bad input."""

import json
import subprocess
import sys

import pytest

from data.dataset import Dataset
from kinema.cli import main


def kinema(*args):
    return subprocess.run([sys.executable, "-m", "kinema", *args], capture_output=True,
                          text=True, timeout=300)


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


DEMOS = 6
"""Scripted pendulum swing-ups the BC test learns from (200 steps each)."""
BC_MIN_SCORE = 0.8
"""BC on DEMOS demonstrations and BC_STEPS updates (32x32, seed 0) reaches an expert-normalized
score of about 1.0 (0.99 to 1.0 over seeds 0..2); half of that is already far above random (0)."""
BC_STEPS = 3000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("collect") / "ds"
    r = kinema("collect", "--env", "pendulum", "--expert", "scripted", "--episodes", str(DEMOS),
               "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = last_json(r.stdout)
    assert res["episodes"] == DEMOS and res["steps"] == 200 * DEMOS
    assert -400 < res["return_mean"] < 0 and res["return_std"] >= 0
    return out


def eval_records(run) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "eval"]


def assert_normalized(record: dict) -> None:
    """The logged score is (R - R_random) / (R_expert - R_random) of the logged returns."""
    r, rand, expert = record["return_mean"], record["random_return"], record["expert_return"]
    assert expert - rand > 500  # pendulum: the expert swings up (~-150), random does not (~-1100)
    assert record["normalized_score"] == pytest.approx((r - rand) / (expert - rand), abs=1e-9)


def test_train_bc_eval_export_and_collect_from_the_run(dataset, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "bc", "--env", "pendulum", "--dataset", str(dataset), "--steps",
                 str(BC_STEPS), "--eval-every", "1000", "--runs-dir", str(runs), "--no-progress",
                 "--json", "--hidden", "32", "32"]) == 0
    trained = last_json(capsys.readouterr().out)
    (run,) = runs.iterdir()
    evals = eval_records(run)
    assert [e["step"] for e in evals] == [1000, 2000, 3000]
    for e in evals:
        assert_normalized(e)
        assert e["labels"] == 200 * DEMOS
    assert evals[-1]["normalized_score"] > BC_MIN_SCORE, evals
    assert trained["normalized_score"] == pytest.approx(evals[-1]["normalized_score"])

    r = kinema("eval", str(run), "--episodes", "2", "--json")
    assert r.returncode == 0, r.stderr
    ev = last_json(r.stdout)
    assert ev["episodes"] == 2
    assert_normalized(ev | {k: evals[-1][k] for k in ("random_return", "expert_return")})
    assert ev["normalized_score"] > BC_MIN_SCORE, ev
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
    assert out["labels"] == 400 and out["steps"] == 400
    (run,) = tmp_path.iterdir()
    evals = eval_records(run)
    assert [e["round"] for e in evals] == [0, 1] and [e["labels"] for e in evals] == [200, 400]
    for e in evals:
        assert_normalized(e)
    assert out["normalized_score"] == pytest.approx(evals[-1]["normalized_score"])
    ds = Dataset.open(run / "dataset")  # the aggregated dataset: every label the expert gave
    assert len(ds) == 2 and ds.total_steps == 400
    first, second = ds.episodes()
    assert first.expert_actions is None  # round 0: the expert drove, its actions are the labels
    assert second.expert_actions is not None and second.expert_actions.shape == (200, 1)


def test_collect_appends(dataset, tmp_path):
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    r = kinema("collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "1",
               "--out", str(ds), "--append", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads((ds / "manifest.json").read_text())["episodes"] == DEMOS + 1


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

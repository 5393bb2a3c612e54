"""Smoke tests of every command and its bad-input paths, through the real entry point."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kinema.cli import main


def kinema(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kinema", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    rc = main(["train", "ppo", "--env", "cartpole", "--steps", "20000", "--target-return", "475",
               "--eval-every", "2048", "--runs-dir", str(root), "--no-progress", "--json"])
    assert rc == 0
    (run,) = root.iterdir()
    return run


def test_envs_table_and_json():
    r = kinema("envs", "--json")
    assert r.returncode == 0
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    by_name = {row["name"]: row for row in rows}
    assert by_name["pendulum"]["backend"] == "gymnasium"
    assert by_name["inverted-pendulum"]["backend"] == "mujoco"
    assert {"name", "backend", "tags", "obs_shape", "action_shape", "dt"} <= set(rows[0])
    table = kinema("envs", "--tag", "discrete")
    assert table.returncode == 0 and "cartpole" in table.stdout and "pendulum" not in table.stdout


def test_train_writes_the_run_directory(trained):
    assert (trained / "config.json").is_file() and (trained / "metrics.jsonl").is_file()
    assert any((trained / "tb").iterdir())
    latest = (trained / "LATEST").read_text().strip()
    assert {p.name for p in (trained / latest).iterdir()} >= {"model.safetensors",
                                                              "optim.safetensors", "state.json"}
    evals = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in evals if e["kind"] == "eval"]
    assert evals and all({"step", "wall_s", "train_s", "return_mean", "return_std"} <= set(e)
                         for e in evals)
    assert evals[-1]["return_mean"] >= 475


def test_no_file_of_a_run_is_a_pickle(trained):
    for f in trained.rglob("*"):
        if f.is_file():
            head = f.read_bytes()[:2]
            assert not head.startswith(b"\x80"), f"{f} looks like a pickle"


def test_eval_json(trained):
    r = kinema("eval", str(trained), "--episodes", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert out["episodes"] == 3 and out["return_mean"] >= 475 and "return_std" in out


def test_eval_records_a_video(trained, tmp_path, capsys):
    out = tmp_path / "episode.mp4"
    assert main(["eval", str(trained), "--episodes", "1", "--video", str(out), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["video"] == str(out) and out.stat().st_size > 1000


def test_export_then_run_the_bundle(trained, tmp_path):
    bundle = tmp_path / "bundle"
    r = kinema("export", str(trained), "--out", str(bundle), "--json")
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout)["parity_max_abs_error"] <= 1e-4
    assert (bundle / "policy.onnx").is_file() and (bundle / "contract.json").is_file()
    r = kinema("run", str(bundle), "--env", "cartpole", "--rate", "0", "--episodes", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert out["episodes"] == 2 and out["return_mean"] >= 475
    assert {"latency_p50_us", "latency_p99_us", "jitter_p99_us", "deadline_misses",
            "stop_reason"} <= set(out)


def test_resume_through_the_cli(tmp_path):
    args = ["--runs-dir", str(tmp_path), "--no-progress", "--json"]
    assert main(["train", "ppo", "--env", "cartpole", "--steps", "256", *args]) == 0
    (run,) = tmp_path.iterdir()
    r = kinema("train", "--resume", str(run), "--steps", "512", "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout)["steps"] == 512
    r = kinema("train", "--resume", str(run), "--lr", "0.5", "--no-progress")
    assert r.returncode == 2 and "lr: 0.002 -> 0.5" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["train", "ppx", "--env", "cartpole"], "did you mean ppo"),
    (["train", "ppo", "--env", "cartpol"], "did you mean cartpole"),
    (["train", "ppo", "--env", "cartpole", "--steps", "-5"], "--steps"),
    (["train", "ppo", "--env", "cartpole", "--device", "gpu"], "--device 'gpu'"),
    (["run", "no-such-bundle"], "no-such-bundle"),
    (["eval", "no-such-run"], "no-such-run"),
    (["export", "no-such-run"], "no-such-run"),
    (["envs", "--tag", "flying"], "unknown tag"),
])
def test_bad_input_is_one_clear_line_with_exit_2(args, needle):
    r = kinema(*args)
    assert r.returncode == 2
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    assert main(["train", "ppo", "--env", "cartpole", "--steps", "256", "--runs-dir",
                 str(tmp_path), "--no-progress", "--json"]) == 0
    (run,) = tmp_path.iterdir()
    latest = run / (run / "LATEST").read_text().strip()
    model = latest / "model.safetensors"
    model.write_bytes(model.read_bytes()[:100])
    r = kinema("eval", str(run))
    assert r.returncode == 2 and "model.safetensors" in r.stderr and "Traceback" not in r.stderr


def test_every_option_has_help():
    r = kinema("train", "ppo", "--help")
    assert r.returncode == 0
    for opt in ("--env", "--steps", "--resume", "--eval-every", "--target-return", "--lr",
                "--num-envs", "--gamma"):
        assert opt in r.stdout
    for cmd in ("envs", "eval", "export", "run"):
        assert kinema(cmd, "--help").returncode == 0


def _train_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["train", *args, "--no-progress", "--json"]) == 0
    return last_json(capsys.readouterr().out)


def test_the_summary_says_why_training_stopped(tmp_path, capsys):
    common = ["--env", "cartpole", "--eval-episodes", "1", "--runs-dir", str(tmp_path)]
    out = _train_json(capsys, "ppo", *common, "--steps", "256")
    assert out["stopped"] == "budget" and out["solved_at"] is None
    out = _train_json(capsys, "ppo", *common, "--steps", "2048", "--eval-every", "256",
                      "--target-return", "1")
    assert out["stopped"] == "target_return" and out["solved_at"] == 256 and out["steps"] == 256
    capsys.readouterr()
    assert main(["train", "ppo", *common, "--steps", "256", "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "stopped" in table and "budget" in table and "solved_at" in table


def test_bc_that_stopped_early_says_so(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "2",
                 "--out", str(ds), "--json"]) == 0
    out = _train_json(capsys, "bc", "--env", "pendulum", "--dataset", str(ds), "--steps", "20000",
                      "--val-every", "5", "--patience", "1", "--hidden", "16",
                      "--eval-episodes", "1", "--runs-dir", str(tmp_path / "runs"))
    assert out["stopped"] == "early_stopping" and out["solved_at"] is None
    assert out["steps"] < 20000


def test_keep_checkpoints_is_an_option_that_may_change_on_resume(tmp_path, capsys):
    common = ["--eval-every", "256", "--eval-episodes", "1"]
    _train_json(capsys, "ppo", "--env", "cartpole", "--steps", "1024", "--keep-checkpoints", "1",
                "--runs-dir", str(tmp_path), *common)
    (run,) = tmp_path.iterdir()
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["1024"]
    leftover = run / ".LATEST.tmp-999999999-0badc0de"  # what a save killed mid-write leaves
    leftover.write_text("checkpoints/5\n")
    out = _train_json(capsys, "--resume", str(run), "--steps", "2048", "--keep-checkpoints", "0",
                      *common)
    assert out["steps"] == 2048 and not leftover.exists()
    steps = sorted(int(p.name) for p in (run / "checkpoints").iterdir())
    assert steps == [1024, 1280, 1536, 1792, 2048]
    assert json.loads((run / "config.json").read_text())["config"]["train"][
        "keep_checkpoints"] == 1  # config.json records how the run was started

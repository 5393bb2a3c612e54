"""Sweeps on Ray Tune (agents/runs/sweep.py, `kinema sweep`): trials are ordinary run folders,
a sweep resumes after a kill keeping its finished trials, joins a cluster by --address, and
`kinema report` / `kinema plot` read it.

One Ray head (`ray start --head --block`, tests/agents/conftest.py) serves the session: the
in-process sweeps use it as an already-initialized session, and the --address test joins it
from another process. The SIGINT test starts a sweep without --address, so a local Ray
instance of its own is started and shut down there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinema.cli import main

ray = pytest.importorskip("ray", reason="the sweep extra (ray[tune]) is not installed")

from agents.runs import sweep_store as store  # noqa: E402
from agents.runs.cluster import check_address  # noqa: E402

BUDGET = ["--steps", "2048", "--eval-every", "1024", "--device", "cpu"]
TIMING = ("wall_time", "wall_s", "train_s", "steps_per_s")


@pytest.fixture(scope="module")
def head(ray_head: str) -> str:
    """The session's Ray head (tests/agents/conftest.py)."""
    return ray_head


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def sweep_cli(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["sweep", *args, "--json"])
    return rc, last_json(capsys.readouterr().out)


def records(run: Path) -> list[dict]:
    """metrics.jsonl without the timing keys (which differ between any two runs)."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_trials(head, tmp_path_factory) -> Path:
    """A finished two-trial sweep (seeds 0 and 1) of PPO on cart-pole, 2048 steps each."""
    out = tmp_path_factory.mktemp("sweeps") / "ppo"
    rc = main(["sweep", "ppo", "--env", "cartpole", "--seeds", "0-1", *BUDGET,
               "--out", str(out), "--no-progress"])
    assert rc == 0
    return out


def test_a_two_trial_sweep_makes_two_run_folders_as_kinema_train_does(two_trials, tmp_path,
                                                                       capsys):
    meta, trials = store.load(two_trials)
    assert meta["format"] == store.FORMAT and [t.seed for t in trials] == [0, 1]
    runs = [store.trial_runs(store.trial_dir(two_trials, t.id)) for t in trials]
    assert [len(r) for r in runs] == [1, 1]
    # the same run with kinema train, here: identical config and, bit-exactly, metrics
    assert main(["train", "ppo", "--env", "cartpole", "--seed", "1", *BUDGET,
                 "--runs-dir", str(tmp_path), "--no-progress", "--json"]) == 0
    (direct,) = tmp_path.iterdir()
    swept = runs[1][0]
    config = {p: json.loads((p / "config.json").read_text()) for p in (direct, swept)}
    assert config[swept]["config"]["train"].pop("runs_dir") == str(swept.parent)
    assert config[direct]["config"]["train"].pop("runs_dir") == str(tmp_path)
    assert config[swept]["config"] == config[direct]["config"]
    assert config[swept]["git_commit"] == config[direct]["git_commit"]  # the driver's cwd
    assert records(swept) == records(direct) and len(records(swept)) == 4
    assert sorted(p.name for p in swept.iterdir()) == sorted(p.name for p in direct.iterdir())
    assert (sorted(p.name for p in (swept / "checkpoints").iterdir())
            == sorted(p.name for p in (direct / "checkpoints").iterdir()) == ["1024", "2048"])
    for t, (run,) in zip(trials, runs, strict=True):
        result = store.read_result(two_trials, t.id)
        assert result["status"] == "done" and result["run"] == str(run)
        last = [r for r in records(run) if r["kind"] == "eval"][-1]
        assert result["return_mean"] == last["return_mean"] and result["step"] == 2048


def test_report_and_plot_read_the_sweep(two_trials, tmp_path, capsys):
    assert main(["report", str(two_trials), "--json"]) == 0
    (row,) = last_json(capsys.readouterr().out)["configs"]
    finals = [store.read_result(two_trials, i)["return_mean"] for i in ("000", "001")]
    assert row["runs"] == 2 and sorted(row["seeds"]) == [0, 1] and row["env"] == "cartpole"
    assert row["final_return_mean"] == pytest.approx(sum(finals) / 2)
    lo, hi = row["final_return_mean_ci"]
    assert lo == pytest.approx(min(finals)) and hi == pytest.approx(max(finals))
    out = tmp_path / "curves.png"
    assert main(["plot", str(two_trials), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_keeps_finished_trials_and_continues_from_latest(two_trials, tmp_path, capsys):
    """A kill after trial 001's checkpoint at 1024 and before the one at 2048, made exactly:
    its result.json and last checkpoint are removed and LATEST names checkpoint 1024."""
    sweep = tmp_path / "killed"
    shutil.copytree(two_trials, sweep)
    (run0,), (run1,) = (store.trial_runs(store.trial_dir(sweep, i)) for i in ("000", "001"))
    before = records(run1)
    (store.trial_dir(sweep, "001") / store.RESULT_FILE).unlink()
    shutil.rmtree(run1 / "checkpoints" / "2048")
    (run1 / "LATEST").write_text("checkpoints/1024\n")
    kept = files(store.trial_dir(sweep, "000"))

    rc, out = sweep_cli(capsys, "--resume", str(sweep))
    assert rc == 0 and out["sweep"] == str(sweep)
    assert [r["status"] for r in out["trials"]] == ["done", "done"]
    assert files(store.trial_dir(sweep, "000")) == kept  # untouched, byte for byte
    assert store.trial_runs(store.trial_dir(sweep, "001")) == [run1]  # the same run, continued
    assert records(run1) == before  # bit-exact: as if it had never been killed
    assert (run1 / "LATEST").read_text() == "checkpoints/2048\n"
    assert len(list((sweep / store.TUNE_DIR).iterdir())) == 2  # one Tune experiment per attempt
    # nothing left to do: a second resume runs no trial and keeps everything
    everything = files(sweep / store.TRIALS_DIR)
    rc, out = sweep_cli(capsys, "--resume", str(sweep))
    assert rc == 0 and files(sweep / store.TRIALS_DIR) == everything


def test_a_failed_trial_is_reported_and_the_others_kept(two_trials, tmp_path, capsys):
    """Trial 001's LATEST names a checkpoint that is gone: its resume fails in the worker."""
    sweep = tmp_path / "broken"
    shutil.copytree(two_trials, sweep)
    (store.trial_dir(sweep, "001") / store.RESULT_FILE).unlink()
    (run1,) = store.trial_runs(store.trial_dir(sweep, "001"))
    (run1 / "LATEST").write_text("checkpoints/999\n")
    kept = files(store.trial_dir(sweep, "000"))
    capsys.readouterr()
    rc = main(["sweep", "--resume", str(sweep), "--json"])
    captured = capsys.readouterr()
    rows = last_json(captured.out)["trials"]
    assert rc == 1 and [r["status"] for r in rows] == ["done", "error"]
    assert "checkpoints/999 does not exist" in rows[1]["error"]
    assert "1 of 2 trials failed (trial 001: " in captured.err
    assert f"kinema sweep --resume {sweep} runs them again" in captured.err
    assert files(store.trial_dir(sweep, "000")) == kept and store.read_result(sweep, "001") is None


def test_sigint_mid_sweep_then_resume(head, tmp_path, capsys):
    """A real interrupt: the sweep process gets SIGINT once trial 000 has finished."""
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinema", "sweep", "ppo", "--env", "cartpole", "--seeds", "0-1",
         "--steps", "2048", "--eval-every", "512", "--device", "cpu", "--max-concurrent", "1",
         "--out", str(sweep), "--no-progress"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (store.trial_dir(sweep, "000") / store.RESULT_FILE).exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert f"interrupted; kinema sweep --resume {sweep} continues it" in err
    assert store.read_result(sweep, "001") is None
    kept = files(store.trial_dir(sweep, "000"))

    rc, out = sweep_cli(capsys, "--resume", str(sweep))
    assert rc == 0 and [r["status"] for r in out["trials"]] == ["done", "done"]
    assert files(store.trial_dir(sweep, "000")) == kept
    assert all(len(store.trial_runs(store.trial_dir(sweep, i))) == 1 for i in ("000", "001"))
    assert out["trials"][1]["step"] == 2048


def test_address_joins_a_running_cluster_and_leaves_it_running(head, tmp_path):
    out = tmp_path / "joined"
    done = subprocess.run(
        [sys.executable, "-m", "kinema", "sweep", "ppo", "--env", "cartpole", "--seeds", "3",
         "--steps", "1024", "--eval-every", "1024", "--device", "cpu", "--address", head,
         "--out", str(out), "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAY_")})
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = last_json(done.stdout)["trials"]
    assert row["status"] == "done" and row["seed"] == 3 and row["step"] == 1024
    assert check_address(head)  # the cluster it joined still runs
    assert ray.cluster_resources().get("CPU") == 2


@pytest.mark.bad_input
def test_more_cpus_per_trial_than_the_cluster_has(head, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "ppo", "--env", "cartpole", "--seeds", "0", "--cpus-per-trial", "3",
                 "--out", str(tmp_path / "s")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "--cpus-per-trial 3 is more than the Ray cluster has (2 CPUs)" in err[0]
    assert list(tmp_path.iterdir()) == []

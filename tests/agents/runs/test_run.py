"""Run folders: naming, config.json, metrics.jsonl and TensorBoard, resume, checkpoints."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import agents.runs.run as run_mod
from agents.runs.run import Run, RunError

FIXED = datetime(2024, 1, 2, 3, 4, 5)


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_mod, "_now", lambda: FIXED)


def _scalars(run: Run) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run.path / "tb"))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_create_names_folders_and_writes_config(
    tmp_path: Path, fixed_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not a git checkout: no commit to record
    config = {"train": {"steps": 100, "lr": 3e-4, "hidden": (64, 64)}, "seed": 1}
    names = []
    for _ in range(3):
        with Run.create(tmp_path / "runs", "cartpole", "ppo", config) as run:
            names.append(run.path.name)
    assert names == ["cartpole-ppo-20240102-030405", "cartpole-ppo-20240102-030405-2",
                     "cartpole-ppo-20240102-030405-3"]
    meta = json.loads((tmp_path / "runs" / names[0] / "config.json").read_text())
    assert meta["config"] == {"train": {"steps": 100, "lr": 3e-4, "hidden": [64, 64]}, "seed": 1}
    assert (meta["env"], meta["algo"], meta["created"]) == ("cartpole", "ppo",
                                                            "2024-01-02T03:04:05")
    assert isinstance(meta["kinema_version"], str) and meta["kinema_version"]
    assert meta["git_commit"] is None
    opened = Run.open(tmp_path / "runs" / names[0])
    assert (opened.env, opened.algo, opened.config) == ("cartpole", "ppo", meta["config"])
    assert run.config == meta["config"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_create_records_the_git_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    with Run.create(tmp_path / "runs", "pendulum", "sac", {}) as run:
        assert json.loads((run.path / "config.json").read_text())["git_commit"] == head
    assert re.fullmatch(r"[0-9a-f]{40}", head)


def test_create_and_open_refuse_bad_input(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="env name 'a/b'"):
        Run.create(tmp_path, "a/b", "ppo", {})
    with pytest.raises(RunError, match="config cannot be written as JSON"):
        Run.create(tmp_path, "cartpole", "ppo", {"path": Path("x")})
    with pytest.raises(RunError, match="does not exist"):
        Run.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match=r"config\.json is missing"):
        Run.open(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="cannot be read as JSON"):
        Run.open(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(RunError, match="lacks"):
        Run.open(tmp_path / "empty")


def test_log_writes_jsonl_and_tensorboard(tmp_path: Path) -> None:
    with Run.create(tmp_path, "cartpole", "ppo", {}) as run:
        run.log({"step": 10, "loss": torch.tensor(0.5), "lr": np.float32(0.25), "note": "hi",
                 "done": True, "bad": math.nan})
        run.log({"step": 20, "kind": "eval", "return_mean": 195, "episodes": np.int64(5)})
        records = run.records()
    assert [r["step"] for r in records] == [10, 20]
    assert records[0]["loss"] == 0.5 and records[0]["lr"] == 0.25 and math.isnan(records[0]["bad"])
    assert all(isinstance(r["wall_time"], float) for r in records)
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [10, 20]
    assert list(run.path.glob("tb/events.out.tfevents.*"))
    assert _scalars(run) == {"loss": [(10, 0.5)], "lr": [(10, 0.25)],
                             "eval/return_mean": [(20, 195.0)], "eval/episodes": [(20, 5.0)]}
    with pytest.raises(ValueError, match="step"):
        run.log({"loss": 1.0})


def test_resume_from_drops_later_records_and_events(tmp_path: Path) -> None:
    with Run.create(tmp_path, "cartpole", "ppo", {}) as run:
        for s in range(1, 6):
            run.log({"step": s, "loss": float(s)})
    run = Run.open(run.path)
    run.resume_from(3)
    assert [r["step"] for r in run.records()] == [1, 2, 3]
    with run:
        run.log({"step": 4, "loss": 40.0})
    assert [(r["step"], r["loss"]) for r in run.records()] == [(1, 1.0), (2, 2.0), (3, 3.0),
                                                               (4, 40.0)]
    assert _scalars(run)["loss"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0)]


def test_a_torn_last_record_is_dropped(tmp_path: Path) -> None:
    with Run.create(tmp_path, "cartpole", "ppo", {}) as run:
        run.log({"step": 1, "kind": "train"})
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "lo')  # the process died mid-write
    run = Run.open(run.path)
    assert [r["step"] for r in run.records()] == [1]
    with run:
        run.log({"step": 2, "kind": "train"})
    assert [r["step"] for r in run.records()] == [1, 2]


def test_save_and_load_go_to_the_run_folder(tmp_path: Path) -> None:
    with Run.create(tmp_path, "cartpole", "ppo", {}) as run:
        assert run.latest_step() is None
        run.log({"step": 8, "loss": 1.0})
        run.save(8, {"model": {"w": torch.arange(3.0)}, "optim": {0: {"m": torch.ones(2)}}})
        run.save(16, {"model": {"w": torch.arange(4.0)}}, keep_last=1)
    step, state = Run.open(run.path).load()
    assert step == 16 and torch.equal(state["model"]["w"], torch.arange(4.0))
    assert (run.path / "LATEST").read_text() == "checkpoints/16\n"
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == ["16"]


def test_clean_leftovers_removes_only_what_a_killed_write_atomic_left(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # its process id now names no process
    with Run.create(tmp_path, "cartpole", "ppo", {}) as run:
        pass
    path = run.path
    gone = [f".LATEST.tmp-{dead.pid}-0123abcd", f".metrics.jsonl.tmp-{os.getpid()}-ffff0000",
            f".config.json.tmp-{dead.pid}-00000000"]
    kept = [f".LATEST.tmp-{os.getppid()}-0123abcd",  # a live writer may be mid-write
            ".LATEST.tmp-notes", "LATEST.tmp-1-00000000", f".mine.tmp-{dead.pid}-0123abcd"]
    for name in gone + kept:
        (path / name).write_text("x")
    (path / f".LATEST.tmp-{dead.pid}-dir0").mkdir()
    assert sorted(p.name for p in run.clean_leftovers()) == sorted(gone)
    left = {p.name for p in path.iterdir()}
    assert set(kept) <= left and not set(gone) & left and f".LATEST.tmp-{dead.pid}-dir0" in left
    assert (path / "config.json").is_file()


def test_create_refuses_a_runs_dir_that_is_a_file_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for root in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(RunError, match=r"--runs-dir .* file; it must be a folder"):
            Run.create(root, "cartpole", "ppo", {})
    assert [p.name for p in tmp_path.iterdir()] == ["file"]

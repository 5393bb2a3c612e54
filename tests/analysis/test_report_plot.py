"""`kinema report` and `kinema plot` on run folders written here by hand: grouping by config
minus seed, the per-configuration numbers, time to target, and the figure files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from analysis.report import report
from analysis.runs import find_runs, load_groups, read_records
from analysis.stats import interval, iqm
from kinema.cli import main

TRAIN = {"algo": "ppo", "env": "cartpole", "steps": 300, "seed": 0, "device": "cpu",
         "eval_every": 100, "eval_episodes": 10, "target_return": None, "checkpoint_every": 0,
         "keep_checkpoints": 3, "threads": 1, "runs_dir": "runs"}


def make_run(folder: Path, seed: int, curve: list[tuple[int, float, float]], *,
             lr: float = 1e-3, torn: bool = False) -> Path:
    """A run folder as agents/runs/run.py writes it: config.json and metrics.jsonl with a
    train and an eval record per (step, train_s, return)."""
    folder.mkdir(parents=True)
    config = {"train": TRAIN | {"seed": seed, "runs_dir": str(folder.parent)},
              "algo_config": {"lr": lr, "hidden": [64, 64]}}
    (folder / "config.json").write_text(json.dumps(
        {"env": "cartpole", "algo": "ppo", "created": "2026-01-01T00:00:00",
         "kinema_version": "0.1.0", "git_commit": None, "config": config}))
    lines = []
    for step, train_s, ret in curve:
        lines.append({"step": step, "kind": "train", "train_s": train_s, "policy_loss": 0.1})
        lines.append({"step": step, "kind": "eval", "wall_s": train_s + 1, "train_s": train_s,
                      "return_mean": ret, "return_std": 1.0, "episodes": 10})
    text = "".join(json.dumps(r) + "\n" for r in lines)
    if torn:
        text += '{"step": 400, "kind": "eval", "return_m'  # a crash mid-write
    (folder / "metrics.jsonl").write_text(text)
    return folder


FAST = [(100, 1.0, 20.0), (200, 2.0, 60.0), (300, 3.0, 50.0)]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Two configurations: lr=0.001 with seeds 0-3, lr=0.0003 with seeds 0-1."""
    root = tmp_path / "runs"
    finals = [50.0, 70.0, 10.0, 90.0]
    for s, final in enumerate(finals):
        curve = [(100, 1.0 + s, 20.0 + s), (200, 2.0 + s, 60.0 + 10 * s), (300, 3.0 + s, final)]
        make_run(root / f"a{s}", s, curve)
    for s in range(2):
        make_run(root / f"b{s}", s, [(100, 1.5, 5.0), (200, 3.0, 8.0 + s)], lr=3e-4, torn=True)
    return root


def test_runs_are_found_and_grouped_by_config_minus_seed(runs):
    assert len(find_runs([runs])) == 6
    assert find_runs([runs / "a0", runs]) == find_runs([runs])  # each run once
    groups = load_groups([runs])
    assert [g.label for g in groups] == ["lr=0.001", "lr=0.0003"]
    assert [sorted(r.seed for r in g.runs) for g in groups] == [[0, 1, 2, 3], [0, 1]]
    assert len(read_records(runs / "b0" / "metrics.jsonl")) == 4  # the torn line left out


def test_report_numbers_per_configuration(runs):
    a, b = report(load_groups([runs]), target=55.0)
    finals, bests = [50.0, 70.0, 10.0, 90.0], [60.0, 70.0, 80.0, 90.0]
    assert a["runs"] == 4 and a["final_return_mean"] == np.mean(finals)
    assert a["final_return_iqm"] == iqm(finals) == 60.0  # middle two of 10, 50, 70, 90
    assert a["final_return_mean_ci"] == interval([finals], np.mean).tolist()
    assert a["best_return_mean"] == np.mean(bests)
    lo, hi = a["final_return_iqm_ci"]
    assert 10.0 <= lo <= 60.0 <= hi <= 90.0
    # target 55: seed 0 reaches it at 200 (60), seeds 1-3 at 200 as well (70, 80, 90)
    assert a["reached"] == 4 and a["steps_to_target"] == 200
    assert a["train_s_to_target"] == np.median([2.0, 3.0, 4.0, 5.0])
    assert b["reached"] == 0 and b["steps_to_target"] is None
    assert b["final_return_mean"] == 8.5


def test_report_command_json_and_table(runs, capsys):
    assert main(["report", str(runs), "--target", "55", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["configs"]
    assert [r["config"] for r in rows] == ["lr=0.001", "lr=0.0003"]
    assert rows[0]["final_return_iqm"] == 60.0 and rows[0]["reached"] == 4
    assert main(["report", str(runs / "a0"), str(runs / "a1")]) == 0
    out = capsys.readouterr().out
    assert "ppo cartpole" in out and "final IQM" in out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("x", ["step", "train_s"])
def test_plot_writes_a_png_of_the_expected_size(runs, tmp_path, capsys, x):
    out = tmp_path / "fig" / f"curves-{x}.png"
    assert main(["plot", str(runs), "--x", x, "--out", str(out), "--json"]) == 0
    assert png_size(out) == (800, 500)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result == {"out": str(out), "configs": 2, "runs": 6}


def test_plot_svg_draws_every_configuration(runs, tmp_path):
    out = tmp_path / "curves.svg"
    assert main(["plot", str(runs / "a0"), str(runs / "b0"), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "lr=0.001 (1 seeds)" in text and "lr=0.0003 (1 seeds)" in text


def test_curve_grid_holds_a_run_that_stopped_early(tmp_path):
    from analysis.plot import curve_grid

    make_run(tmp_path / "r0", 0, FAST)
    make_run(tmp_path / "r1", 1, FAST[:1])  # stopped at its target after the first eval
    (g,) = load_groups([tmp_path])
    grid, values = curve_grid(g, "step")
    assert grid.tolist() == [100, 200, 300]
    assert values.tolist() == [[20.0, 60.0, 50.0], [20.0, 20.0, 20.0]]


@pytest.mark.bad_input
@pytest.mark.parametrize("args, needle", [
    (["report", "{tmp}/nope"], "does not exist"),
    (["report", "{tmp}"], "holds no run folder"),
    (["plot", "{tmp}", "--out", "{tmp}/x.jpg"], "must end in .png or .svg"),
    (["report", "{tmp}", "--target", "nan"], "not a finite number"),
])
def test_bad_inputs_are_one_line(tmp_path, capsys, args, needle):
    rc = main([a.format(tmp=tmp_path) for a in args])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert err[0].startswith(f"kinema {args[0]}: error: ")
    assert list(tmp_path.iterdir()) == []

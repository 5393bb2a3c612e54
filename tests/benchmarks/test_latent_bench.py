"""`kinema bench latent` (benchmarks/latent.py): wiring, a tiny real run's JSON and table, the
planner's timing, and the report's medians."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import pytest

from benchmarks import latent
from kinema import bench

TINY_TDMPC = dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_samples=16, num_elites=4,
                  num_pi_trajs=2, iterations=1, horizon=2, learning_starts=50, batch_size=16,
                  buffer_size=1_000)
TINY_SAC = dict(hidden=(16, 16), learning_starts=50, batch_size=16)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


def run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> dict[str, Any]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def fake_run(*a: Any, **kw: Any) -> dict[str, Any]:
        calls.append((a, kw))
        return {}

    monkeypatch.setattr(latent, "run", fake_run)
    bench.main(parse("latent", *argv))
    (args, kwargs), = calls
    return {"tasks": args[0], "seeds": args[1], "budgets": args[2], **kwargs}


def test_the_command_runs_every_task_at_the_default_budgets(monkeypatch):
    got = run(monkeypatch)
    assert got["tasks"] == ["cartpole-swingup", "cheetah-run", "walker-walk", "planning"]
    assert got["seeds"] == [0, 1, 2] and got["budgets"] == [20_000, 50_000]
    assert got["episodes"] == 10 and got["markdown"] is None
    assert got["results"] == latent.RESULTS
    got = run(monkeypatch, "--tasks", "cartpole-swingup", "--seeds", "0", "--budgets", "5000",
              "--episodes", "2")
    assert (got["tasks"], got["seeds"], got["budgets"], got["episodes"]) == (
        ["cartpole-swingup"], [0], [5000], 2)


@pytest.mark.bad_input
def test_bad_tasks_and_budgets_are_named_and_nothing_is_written(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"unknown tasks \['walker'\]; tasks: cartpole-swingup, "
                       r"cheetah-run, walker-walk, planning"):
        latent.run(["walker"], [0], results=tmp_path / "r.json")
    with pytest.raises(ValueError, match=r"budgets \[0, 100\] must be one or more positive"):
        latent.run(["cartpole-swingup"], [0], [0, 100], results=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    with pytest.raises(ValueError, match=r"--budgets '20k' is not a comma-separated list"):
        bench.main(parse("latent", "--budgets", "20k"))


def test_a_tiny_run_stores_returns_at_each_budget_and_writes_the_table(tmp_path):
    results, md = tmp_path / "latent.json", tmp_path / "B.md"
    md.write_text("# Benchmarks\n\nkept\n")
    logged: list[str] = []
    store = latent.run(["cartpole-swingup"], [0], [100, 200], results=results, markdown=md,
                       log=logged.append, episodes=1,
                       overrides={"tdmpc": TINY_TDMPC, "sac": TINY_SAC})
    assert json.loads(results.read_text()) == json.loads(json.dumps(store))
    for algo in latent.AGENTS:
        r = store["cartpole-swingup"][algo]["0"]
        assert set(r["returns"]) == {"100", "200"}
        assert all(math.isfinite(v) and 0.0 <= v <= 1000.0 for v in r["returns"].values())
        assert [e[0] for e in r["evals"]] == [100, 200] and r["episodes"] == 1
        assert r["train_s"] > 0 and r["machine"]
    assert store["cartpole-swingup"]["tdmpc"]["0"]["plan_ms"] > 0  # the agent's metric
    assert len(logged) == 2
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n") and latent.BEGIN in text
    ours = store["cartpole-swingup"]["tdmpc"]["0"]["returns"]["200"]
    sac = store["cartpole-swingup"]["sac"]["0"]["returns"]["200"]
    row = next(line for line in text.splitlines() if line.startswith("| cartpole-swingup | 200"))
    assert row.startswith("| cartpole-swingup | 200 | 100 | 1 |")  # TD-MPC2 steps: half
    assert f"| {ours:.1f} | {sac:.1f} | **{ours - sac:+.1f}** |" in row
    assert "200,000 env steps: cartpole-swingup 839, cheetah-run 519, walker-walk 962" in text


def test_the_planner_is_timed_in_torch_and_in_onnxruntime():
    row = latent.time_planner("cartpole-swingup", steps=3, overrides=TINY_TDMPC)
    assert row["rate_hz"] == pytest.approx(100.0)
    for key in ("torch_ms", "onnx_ms", "prior_onnx_ms"):
        assert 0 < row[key]["p50"] <= row[key]["p99"], key
    assert "onnx_error" not in row and row["onnx_export_s"] > 0


def test_the_report_gives_medians_the_difference_and_the_planning_table():
    def runs(*returns: float) -> dict[str, Any]:
        return {str(i): {"returns": {"20000": r}, "train_s": 10.0 * (i + 1), "machine": "m"}
                for i, r in enumerate(returns)}

    store = {"walker-walk": {"tdmpc": runs(300.0, 500.0, 400.0), "sac": runs(100.0, 250.0,
                                                                             200.0)},
             "planning": {"machine": "m", "rows": {"walker-walk": {
                 "rate_hz": 40.0, "torch_ms": {"p50": 30.0, "p99": 35.0},
                 "onnx_ms": {"p50": 20.0, "p99": 24.0}, "onnx_export_s": 12.0,
                 "prior_onnx_error": "no"}}}}
    text = latent.report(store)
    row = next(line for line in text.splitlines() if line.startswith("| walker-walk | 20,000"))
    assert row == "| walker-walk | 20,000 | 10,000 | 3 | 400.0 | 200.0 | **+200.0** | 20.0 | 20.0 |"
    planning = next(line for line in text.splitlines() if line.startswith("| walker-walk | 25"))
    assert "30.00 / 35.00 | 20.00 / 24.00 | — | 12.0 |" in planning
    assert "(the exported planner where it exported): walker-walk." in text
    assert "- walker-walk: no" in text and text.endswith("Machine: m.")

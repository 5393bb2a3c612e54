"""`kinema bench exploration`: both sides per seed in one run, the JSON and the report."""

import json

from benchmarks import exploration


def test_the_bench_runs_both_sides_per_seed_and_reports_them(tmp_path):
    out = tmp_path / "exploration.json"
    result = exploration.run([0], steps=1024, episodes=1, results=out, log=lambda m: None)
    assert json.loads(out.read_text()) == result
    assert [(r["seed"], r["rnd"]) for r in result["runs"]] == [(0, 0.0), (0, 1.0)]
    for r in result["runs"]:
        assert r["return"] >= -200.0 and 0.0 <= r["eval_success"] <= 1.0 and r["wall_s"] > 0
        assert r["goal_at"] is None or 0 < r["goal_at"] <= 1024
    text = exploration.report(result)
    assert "| PPO + RND |" in text and "CPU cores" in text and "--steps 1024" in text


def test_the_summary_counts_runs_that_reached_the_goal():
    runs = [{"goal_at": 3072, "return": -150.0, "eval_success": 0.5},
            {"goal_at": None, "return": -200.0, "eval_success": 0.0},
            {"goal_at": 5120, "return": -130.0, "eval_success": 1.0}]
    s = exploration.summary(runs)
    assert (s["reached"], s["runs"], s["median_goal_at"]) == (2, 3, 4096)
    assert s["return"] == -160.0 and s["eval_success"] == 0.5

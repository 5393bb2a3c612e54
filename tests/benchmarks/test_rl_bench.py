"""`kinema bench rl`: both libraries run under the same protocol; results merge into the JSON
file; the report edits only its own section of the markdown file; bad task names are one clear
line."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("stable_baselines3", reason="the bench extra (stable-baselines3) is needed")

from benchmarks import rl  # noqa: E402


def test_tiny_task_runs_both_libraries_merges_results_and_rewrites_only_its_section(
        tmp_path, monkeypatch):
    # a target any policy reaches at the first evaluation, so both runs stop there
    tiny = rl.Task("ddpg", "pendulum", -5000.0, 400, 200, "DDPG",
                   dict(learning_starts=50, policy_kwargs=dict(net_arch=[16])))
    monkeypatch.setitem(rl.TASKS, "tiny", tiny)
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(f"# Benchmarks\n\n## Other\nkeep me\n\n## RL\n{rl.BEGIN}\nold\n{rl.END}\n\n"
                  "## After\nkeep me too\n")
    results = tmp_path / "rl.json"
    earlier = {"dqn-cartpole": {"sb3": {"7": {"solved": True, "steps": 1}}},
               "tiny": {"kinema": {"5": {"solved": True, "steps": 2}}}}
    results.write_text(json.dumps(earlier))
    rl.run(["tiny"], [0], ["kinema", "sb3"], results=results, markdown=md, log=lambda _: None)
    stored = json.loads(results.read_text())
    # merged per (task, library, seed): earlier entries stay beside the new ones
    assert stored["dqn-cartpole"] == earlier["dqn-cartpole"]
    assert stored["tiny"]["kinema"]["5"] == earlier["tiny"]["kinema"]["5"]
    assert set(stored["tiny"]) == {"kinema", "sb3"} and set(stored["tiny"]["sb3"]) == {"0"}
    ours, peer = stored["tiny"]["kinema"]["0"], stored["tiny"]["sb3"]["0"]
    for r in (ours, peer):
        assert r["solved"] and r["steps"] == 200 and r["train_s"] > 0 and r["train_cpu_s"] > 0
    # the same protocol: both libraries evaluate first after the same 200 env steps
    assert ours["evals"][0][0] == peer["evals"][0][0] == 200
    text = md.read_text()
    assert "keep me\n" in text and "keep me too" in text and "old" not in text
    assert "| tiny | -5000 | 1 | 200 | 200 | 1.00x |" in text


def test_unknown_task_is_one_line():
    r = subprocess.run([sys.executable, "-m", "kinema", "bench", "rl", "--tasks", "sac-pendulm"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "sac-pendulm" in lines[0] and "sac-pendulum" in lines[0]

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


def test_fixed_budget_task_reports_the_final_return_of_both_libraries(tmp_path, monkeypatch):
    # a PPO task at a fixed budget, SB3 in VecNormalize as RL-Zoo's `normalize: true`
    tiny = rl.Task("ppo", "pendulum", None, 512, 256, "PPO",
                   dict(n_steps=128, batch_size=64, n_epochs=1), sb3_n_envs=2, final=True,
                   sb3_normalize=True, overrides=dict(num_envs=2, num_steps=128))
    monkeypatch.setitem(rl.TASKS, "tiny-final", tiny)
    results = tmp_path / "rl.json"
    store = rl.run(["tiny-final"], [0], ["kinema", "sb3"], results=results, log=lambda _: None)
    for lib in ("kinema", "sb3"):
        r = store["tiny-final"][lib]["0"]
        # trained the whole budget, evaluated along the way and at the end, no target
        assert r["steps"] >= 512 and "solved" not in r and r["train_cpu_s"] > 0
        assert [e[0] for e in r["evals"]][0] == 256 and r["return"] == r["evals"][-1][1]
        assert -2000 < r["return"] < 0  # a pendulum return, so the evaluation really ran
    table = rl.final_report(store)
    assert "| tiny-final | 512 | 1 |" in table and "time / SB3" in table
    assert "tiny-final" not in rl.report({k: v for k, v in store.items()}).split("Fixed")[0]


def test_sbx_rows_are_reported_beside_kinema_and_tasks_without_one_are_skipped(tmp_path,
                                                                              monkeypatch):
    run = {"solved": True, "steps": 3000, "train_s": 10.0, "train_cpu_s": 8.0, "return": -150}
    peer = run | {"steps": 4000, "train_s": 25.0, "train_cpu_s": 20.0}
    store = {"sac-pendulum": {"kinema": {"0": run}, "sb3": {"0": peer}, "sbx": {"0": peer}}}
    table = rl.sbx_report(store)
    assert "| sac-pendulum | -200 | 1 | 3,000 | 4,000 | 10.0 | 25.0 | **0.40x** |" in table
    assert "SBX" in rl.report(store)
    # a task SBX has no row for is skipped with a line, not run
    tiny = rl.Task("ddpg", "pendulum", -5000.0, 400, 200, "DDPG", {})
    monkeypatch.setitem(rl.TASKS, "tiny-no-sbx", tiny)
    lines: list[str] = []
    rl.run(["tiny-no-sbx"], [0], ["sbx"], results=tmp_path / "rl.json", log=lines.append)
    assert lines == ["tiny-no-sbx: SBX has no row for it; skipped"]

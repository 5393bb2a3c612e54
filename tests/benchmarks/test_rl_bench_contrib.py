"""`kinema bench rl` runs a peer from sb3-contrib (TRPO) as it runs SB3's own algorithms."""

import json

import pytest

pytest.importorskip("sb3_contrib", reason="the bench extra (sb3-contrib) is needed")

from benchmarks import rl  # noqa: E402


def test_a_task_naming_an_sb3_contrib_algorithm_runs_it_beside_kinema(tmp_path, monkeypatch):
    # a target any policy reaches at the first evaluation, after 200 env steps in both
    tiny = rl.Task("trpo", "pendulum", -5000.0, 400, 200, "TRPO",
                   dict(n_steps=100, batch_size=100, n_critic_updates=1,
                        policy_kwargs=dict(net_arch=[16])),
                   sb3_n_envs=2, sb3_package="sb3_contrib",
                   overrides=dict(num_envs=2, num_steps=100, num_minibatches=2, hidden=(16,)))
    monkeypatch.setitem(rl.TASKS, "tiny-trpo", tiny)
    results = tmp_path / "rl.json"
    md = tmp_path / "BENCHMARKS.md"
    rl.run(["tiny-trpo"], [0], ["kinema", "sb3"], results=results, markdown=md,
           log=lambda _: None)
    stored = json.loads(results.read_text())["tiny-trpo"]
    for lib in ("kinema", "sb3"):
        r = stored[lib]["0"]
        assert r["solved"] and r["steps"] == 200 and r["train_s"] > 0
    assert "| tiny-trpo | -5000 | 1 | 200 | 200 | 1.00x |" in md.read_text()
    assert ", sb3-contrib 2." in md.read_text()


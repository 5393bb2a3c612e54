"""`kinema sweep --search optuna`: Ray Tune's Optuna searcher draws the trials (on the session's
Ray head, tests/agents/conftest.py), sweep.json records the search, and bad input is refused."""

from __future__ import annotations

import json

import pytest

from kinema.cli import main

ray = pytest.importorskip("ray", reason="the sweep extra (ray[tune]) is not installed")
pytest.importorskip("optuna", reason="the sweep extra (optuna) is not installed")

from agents.runs import sweep_store as store  # noqa: E402

TINY = ["--steps", "512", "--eval-every", "256", "--device", "cpu"]


def test_an_optuna_search_draws_two_trials_each_a_run(ray_head, tmp_path, capsys):
    out = tmp_path / "search"
    capsys.readouterr()
    rc = main(["sweep", "ppo", "--env", "cartpole", "--seeds", "3,4", "--set", "lr=1e-3,3e-4",
               "--search", "optuna", "--trials", "2", "--metric", "return_mean", *TINY,
               "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and [r["status"] for r in result["trials"]] == ["done", "done"]
    meta, trials = store.load(out)
    assert meta["search"] == {"kind": "optuna", "trials": 2, "metric": "return_mean",
                              "mode": "max", "sampler_seed": 3}
    assert [t.id for t in trials] == ["000", "001"] and [t.seed for t in trials] == [3, 4]
    for t in trials:
        assert t.params["lr"] in (1e-3, 3e-4) and t.algo_config["lr"] == t.params["lr"]
        (run,) = store.trial_runs(store.trial_dir(out, t.id))
        assert json.loads((run / "config.json").read_text())["config"]["train"]["seed"] == t.seed
    # what the searcher was told: each trial's last report to Tune carries its final return
    told = {}
    for f in (out / store.TUNE_DIR).rglob("result.json"):
        last = json.loads(f.read_text().strip().splitlines()[-1])
        told[last["trial"]] = last["return_mean"]
    assert told == {r["trial"]: r["return_mean"] for r in result["trials"]}
    capsys.readouterr()
    assert main(["sweep", "--resume", str(out)]) == 2
    assert "cannot be resumed yet" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--search", "random", "--trials", "2"], "--search 'random' is not grid or optuna"),
    (["--trials", "2"], "--trials needs --search optuna"),
    (["--search", "optuna"], "--search optuna needs --trials N"),
    (["--search", "optuna", "--trials", "2", "--metric", "reward"], "--metric 'reward'"),
])
def test_bad_search_input_is_one_line_and_leaves_no_folder(args, message, tmp_path, capsys):
    out = tmp_path / "sweep"
    capsys.readouterr()
    rc = main(["sweep", "ppo", "--env", "cartpole", "--seeds", "0-1", "--set", "lr=1e-3,3e-4",
               *args, *TINY, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1 and not out.exists()

"""`kinema sweep`'s grid, built and checked before Ray starts: seeds, --set axes against the
algorithm's config, and the trials' configs (no Ray needed); bad inputs are one line, exit 2,
and leave no sweep folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinema.cli import build_parser, main
from kinema.sweep import parse_seeds, plan


def planned(*args: str):
    parser = build_parser("sweep")
    argv = ["sweep", *args]
    from kinema.sweep import take_algo

    algo = take_algo(argv)
    a, rest = parser.parse_known_args(argv)
    a.algo, a.algo_args = algo, rest
    return plan(a)


def test_seed_ranges_and_lists():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("3") == [3]
    assert parse_seeds("0-2,10, 7") == [0, 1, 2, 10, 7]


def test_grid_is_seeds_times_set_values_with_typed_configs():
    meta, trials = planned("ppo", "--env", "cartpole", "--seeds", "0-2", "--set",
                           "lr=1e-3,3e-4", "--set", "hidden=64x64,256x256", "--steps", "4096",
                           "--num-envs", "4", "--set", "norm-obs=false")
    assert len(trials) == 12 and [t.id for t in trials] == [f"{i:03d}" for i in range(12)]
    assert [t.seed for t in trials[:4]] == [0, 1, 2, 0]
    assert trials[0].params == {"lr": 1e-3, "hidden": [64, 64], "norm_obs": False}
    assert trials[3].params == {"lr": 1e-3, "hidden": [256, 256], "norm_obs": False}
    assert trials[11].params == {"lr": 3e-4, "hidden": [256, 256], "norm_obs": False}
    for t in trials:  # the pass-through options reach every trial's configs
        assert t.train["steps"] == 4096 and t.train["device"] == "auto"
        assert t.algo_config["num_envs"] == 4 and t.algo_config["lr"] == t.params["lr"]
        assert t.algo_config["hidden"] == t.params["hidden"]
    assert meta["set"] == {"lr": ["1e-3", "3e-4"], "hidden": ["64x64", "256x256"],
                           "norm_obs": ["false"]}
    assert meta["resources"] == {"cpus_per_trial": 1.0, "gpus_per_trial": 0.0,
                                 "max_concurrent": None}


def test_without_set_the_grid_is_the_seeds_on_the_preset():
    _, trials = planned("ppo", "--env", "cartpole", "--seeds", "5,6")
    assert [(t.id, t.seed, t.params) for t in trials] == [("000", 5, {}), ("001", 6, {})]
    assert trials[0].algo_config == trials[1].algo_config


BAD = [
    (["--seeds", "0-1", "--set", "lrr=1e-3"], ["--set lrr=1e-3", "no hyperparameter 'lrr'",
                                                "did you mean lr?", "num_envs"]),
    (["--seeds", "9-0"], ["--seeds '9-0'", "ends before it starts"]),
    (["--seeds", "a-3"], ["--seeds 'a-3'", "A-B"]),
    (["--seeds", "0-2,1"], ["seed 1 twice"]),
    (["--seeds", "0-4294967296"], ["4294967296 is too large", "4294967295"]),
    (["--seeds", "0", "--set", "lr"], ["--set 'lr' is not NAME=V1,V2"]),
    (["--seeds", "0", "--set", "lr=1e-3,"], ["a value is empty"]),
    (["--seeds", "0", "--set", "lr=1,1"], ["repeats a value"]),
    (["--seeds", "0", "--set", "lr=1", "--set", "lr=2"], ["--set lr is given twice"]),
    (["--seeds", "0", "--set", "lr=abc"], ["--set lr=abc", "--lr", "'abc'", "FLOAT"]),
    (["--seeds", "0", "--set", "hidden=64x0"], ["--set hidden=64x0", "(64, 0)", ">= 1"]),
    (["--seeds", "0", "--set", "norm_obs=maybe"], ["'maybe' is not true or false"]),
    (["--seeds", "0", "--lrr", "3"], ["unrecognized arguments: --lrr 3", "--lr"]),
    (["--seeds", "0", "--steps", "0"], ["--steps", "positive"]),
    (["--seeds", "0", "--device", "cuda"], ["--device cuda needs --gpus-per-trial"]),
    (["--seeds", "0", "--address", "nohost"], ["--address 'nohost' is not HOST:PORT"]),
    (["--seeds", "0", "--address", "127.0.0.1:1"], ["--address 127.0.0.1:1",
                                                     "no Ray cluster answers there"]),
    (["--seeds", "0", "--cpus-per-trial", "0"], ["--cpus-per-trial", "0"]),
    ([], ["--seeds are required"]),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("extra, needles", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_is_one_line_and_leaves_no_sweep_folder(tmp_path, monkeypatch, capsys,
                                                           extra, needles):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sweep"
    try:
        rc = main(["sweep", "ppo", "--env", "cartpole", "--out", str(out), *extra])
    except SystemExit as e:  # argparse's own refusals
        rc = int(e.code or 0)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("kinema sweep: error: ") and "Traceback" not in err[0]
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    assert list(tmp_path.iterdir()) == []  # no --out folder, no sweeps/


@pytest.mark.bad_input
def test_resume_refuses_a_missing_sweep_and_new_grid_options(tmp_path, capsys):
    for args, needle in ((["--resume", str(tmp_path / "nope")], "does not exist"),
                         (["--resume", str(tmp_path)], "sweep.json is missing"),
                         (["--resume", str(tmp_path), "--steps", "5"], "--steps cannot change"),
                         (["--resume", str(tmp_path), "--seeds", "0-3"], "--seeds cannot")):
        assert main(["sweep", *args]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and needle in err[0], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.bad_input
def test_an_existing_out_folder_is_refused(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("keep")
    assert main(["sweep", "ppo", "--env", "cartpole", "--seeds", "0", "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "exists; a new sweep needs a new or empty folder" in err
    assert [p.name for p in Path(tmp_path).iterdir()] == ["old.txt"]


@pytest.mark.parametrize("args", [["--help"], ["sweep", "-h"], ["report", "-h"],
                                  ["plot", "-h"], ["collect", "-h"]])
def test_help_of_the_new_commands(args, capsys):
    with pytest.raises(SystemExit) as done:
        main(args)
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("usage: kinema")
    if args == ["--help"]:
        assert all(f"    {c} " in out for c in ("sweep", "report", "plot"))

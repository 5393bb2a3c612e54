"""`kinema bench mbrl` (benchmarks/mbrl.py, mbrl_report.py): wiring, the FLOP count, and the
report."""

from __future__ import annotations

import argparse

import pytest

from agents.model_based.pets import PETSConfig
from benchmarks import mbrl, mbrl_report
from kinema import bench


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


def run(monkeypatch, *argv: str) -> dict:
    calls = []
    monkeypatch.setattr(mbrl, "run", lambda *a, **kw: calls.append((a, kw)) or {})
    bench.main(parse("mbrl", *argv))
    (args, kwargs), = calls
    return {"tasks": args[0], "seeds": args[1], "libs": args[2], **kwargs}


def test_the_command_runs_every_task_and_library_by_default(monkeypatch):
    got = run(monkeypatch)
    assert got["tasks"] == ["pendulum", "inverted-pendulum", "cartpole-swingup", "planning"]
    assert got["seeds"] == [0, 1, 2] and got["libs"] == ["kinema", "sb3", "mbrl-lib"]
    assert got["markdown"] is None and got["results"] == mbrl.RESULTS
    got = run(monkeypatch, "--tasks", "planning", "--libs", "kinema", "--seeds", "4")
    assert (got["tasks"], got["seeds"], got["libs"]) == (["planning"], [4], ["kinema"])


@pytest.mark.bad_input
def test_an_unknown_task_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown tasks or libraries \['walker'\]; tasks: "
                       r"pendulum, inverted-pendulum, cartpole-swingup, mbpo-pendulum, "
                       r"mbpo-inverted-pendulum, mbpo-hopper-30k, mbpo-halfcheetah-30k, "
                       r"pets-halfcheetah-20k, mve-pendulum, planning"):
        mbrl.run(["walker"], [0], ["kinema"], results=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_flops_count_the_members_matmuls():
    cfg = PETSConfig(hidden=(200, 200), samples=10, horizon=3, particles=5, iterations=2,
                     elites=2)
    per_row = 2 * ((17 + 6) * 200 + 200 * 200 + 200 * 34)  # half-cheetah: 17 obs, 6 actions
    assert mbrl.flops_per_step(cfg, 17, 6, reward_head=False) == per_row * 2 * 10 * 5 * 3


def test_the_report_gives_medians_and_the_pets_to_sac_ratio():
    def runs(*steps, solved=True):
        return {str(i): {"steps": s, "train_s": s / 100, "solved": solved, "machine": "m"}
                for i, s in enumerate(steps)}

    store = {"pendulum": {"kinema-pets": runs(300, 400, 500), "kinema-sac": runs(2000, 2400,
                                                                                   3000),
                          "sb3-sac": runs(2800, 2900, 3100),
                          "mbrl-lib-pets": {"0": {"error": "mbrl-lib peer: no venv"}}}}
    text = mbrl_report.report(store)
    row = next(line for line in text.splitlines() if line.startswith("| pendulum"))
    assert "400 (3 seeds)" in row and "2,400 (3 seeds)" in row and "2,900 (3 seeds)" in row
    assert "**0.17x**" in row  # 400 / 2400
    assert "pendulum, mbrl-lib-pets: mbrl-lib peer: no venv" in text


def test_the_mbpo_table_gives_step_ratios_and_ms_per_env_step():
    def runs(*steps):
        return {str(i): {"steps": s, "train_s": s / 10, "train_cpu_s": s / 100, "solved": True,
                         "machine": "m"} for i, s in enumerate(steps)}

    store = {"mbpo-pendulum": {"kinema-mbpo": runs(500, 600, 700),
                               "kinema-sac": runs(2000, 2400, 3000),
                               "sb3-sac": runs(2800, 2900, 3100)}}
    row = next(line for line in mbrl_report.report(store).splitlines()
               if line.startswith("| pendulum"))
    assert "600 (3 seeds)" in row and "2,400 (3 seeds)" in row and "2,900 (3 seeds)" in row
    assert "**0.25x**" in row and row.endswith("| 100 / 10 |")  # 600 / 2400; 1e3 s / step


def test_issue_11s_tasks_run_beside_the_sac_task_of_their_env():
    job, mbpo, sac = mbrl.beside_sac("mbpo-hopper-30k")
    assert job == "kinema-mbpo" and (mbpo.algo, sac.algo) == ("mbpo", "sac")
    assert mbpo.final and sac.final and (mbpo.env, mbpo.steps, mbpo.eval_every) == (
        sac.env, sac.steps, sac.eval_every) == ("hopper", 30_000, 10_000)
    job, pets, sac = mbrl.beside_sac("pets-halfcheetah-20k")
    assert job == "kinema-pets" and (pets.algo, sac.algo) == ("pets", "sac") and pets.final
    assert (pets.env, pets.steps, sac.env, sac.steps) == ("halfcheetah", 20_000) * 2
    assert (pets.eval_every, sac.eval_every) == (20_000, 10_000)  # PETS: one evaluation
    assert pets.overrides == {"samples": 100, "horizon": 15, "particles": 5, "elites": 10}
    assert not sac.overrides and sac.sb3_kwargs and not pets.sb3_kwargs
    job, mve, sac = mbrl.beside_sac("mve-pendulum")
    assert job == "kinema-mve" and mve.algo == sac.algo == "sac" and not sac.overrides
    assert mve.overrides == {"mve_horizon": 3, "model_hidden": (200, 200)}
    assert (mve.target, mve.eval_every) == (sac.target, sac.eval_every) == (-200, 100)


def test_the_fixed_budget_and_mve_tables_give_returns_curves_and_ratios():
    def final(*returns):
        return {str(i): {"steps": 30_000, "return": r, "train_s": 300.0, "train_cpu_s": 150.0,
                         "evals": [[10_000, r / 2, 1, 1], [30_000, r, 2, 2]], "machine": "m"}
                for i, r in enumerate(returns)}

    def to_target(*steps):
        return {str(i): {"steps": s, "train_s": s / 10, "train_cpu_s": s / 100, "solved": True,
                         "machine": "m"} for i, s in enumerate(steps)}

    store = {"mbpo-hopper-30k": {"kinema-mbpo": final(1000.0, 3000.0),
                                 "kinema-sac": final(300.0, 330.0, 360.0)},
             "pets-halfcheetah-20k": {"kinema-pets": final(4000.0),
                                      "sb3-sac": final(100.0, 200.0, 300.0)},
             "mve-pendulum": {"kinema-mve": to_target(1200, 1600, 1700),
                              "kinema-sac": to_target(2000, 2400, 3000)}}
    lines = mbrl_report.report(store).splitlines()
    row = next(line for line in lines if line.startswith("| hopper"))
    assert "| 30,000 | 2,000 (2 seeds) | 330 (3 seeds) | — |" in row
    assert "0: 10k 500, 30k 1000; 1: 10k 1500, 30k 3000" in row and row.endswith("| 10 / 5 |")
    row = next(line for line in lines if line.startswith("| pendulum"))
    assert "1,600 (3 seeds)" in row and "**0.67x**" in row  # 1600 / 2400
    assert any(line.startswith("| env | env steps | PETS return | Kinema SAC return |")
               for line in lines)
    row = next(line for line in lines if line.startswith("| halfcheetah"))
    assert "| 30,000 | 4,000 (1 seed) | — | 200 (3 seeds) |" in row and "0: 10k 2000" in row

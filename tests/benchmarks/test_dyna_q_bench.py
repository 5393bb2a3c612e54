"""`kinema bench dyna-q` (benchmarks/dyna_q.py) wiring and report, and the SVG(H) rows of
`kinema bench mbrl`'s report."""

from __future__ import annotations

import argparse

from benchmarks import dyna_q, mbrl_report
from kinema import bench


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


def test_the_command_runs_the_dyna_q_benchmark_with_its_seeds(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(dyna_q, "run", lambda *a, **kw: calls.append((a, kw)) or {"tasks": {},
                                                                                 "machine": "m"})
    bench.main(parse("dyna-q", "--seeds", "4,5", "--results", str(tmp_path / "r.json")))
    (args, kwargs), = calls
    assert args == ([4, 5],) and kwargs["results"] == tmp_path / "r.json"
    assert kwargs["markdown"] is None


def test_a_run_is_solved_at_the_first_check_where_the_greedy_policy_is_optimal():
    task = dyna_q.Task("gridworld-4x4", 2_000, 25, 0.0)
    out = dyna_q.steps_to_optimal(task, 10, seed=0)
    assert out["steps"] is not None and out["steps"] % 25 == 0
    assert out["planning_updates"] == 10 * out["steps"]
    never = dyna_q.Task("gridworld-4x4", 50, 25, 0.0)  # 50 random steps cannot find the goal
    assert dyna_q.steps_to_optimal(never, 0, seed=0)["steps"] is None


def test_the_dyna_q_report_gives_medians_and_the_ratio(monkeypatch):
    def runs(*steps):
        return {str(i): {"steps": s, "planning_updates": 0} for i, s in enumerate(steps)}

    store = {"machine": "m", "tasks": {
        "gridworld-4x4": {"0": runs(300, 200, 400), "10": runs(100, 50, 150)},
        "gridworld-slippery": {"0": runs(None, 40_000, None), "10": runs(5_000, 6_000, 7_000)},
        "gridworld-8x8": {"0": runs(None, 300, 500), "10": runs(100, 200, 300)}}}
    monkeypatch.setitem(dyna_q.TASKS, "gridworld-8x8", dyna_q.Task("gridworld-8x8", 10_000, 25,
                                                                   0.0))
    lines = dyna_q.report(store).splitlines()
    grid = next(line for line in lines if line.startswith("| gridworld-4x4"))
    assert "| 300 (3 seeds) | 100 (3 seeds) | **0.33x** |" in grid
    slip = next(line for line in lines if line.startswith("| gridworld-slippery"))
    # two unsolved seeds of three: the median is the budget, a lower bound; the ratio a bound
    assert "150,000 (3 seeds, 2 unsolved)" in slip and "| 6,000 (3 seeds) |" in slip
    assert "**<= 0.04x**" in slip
    # one unsolved seed of three sorts last: the median is exact
    big = next(line for line in lines if line.startswith("| gridworld-8x8"))
    assert "| 500 (3 seeds, 1 unsolved) | 200 (3 seeds) | **0.40x** |" in big


def test_the_mbrl_report_has_an_svg_row_beside_kinema_sac():
    def runs(*steps):
        return {str(i): {"steps": s, "train_s": s / 100, "train_cpu_s": s / 200, "solved": True,
                         "machine": "m"} for i, s in enumerate(steps)}

    store = {"pendulum": {"kinema-sac": runs(2000, 2400, 3000),
                          "kinema-svg": runs(1000, 1200, 1500)}}
    text = mbrl_report.report(store)
    row = next(line for line in text.splitlines() if line.startswith("| pendulum")
               and "1,200" in line)
    assert "| 1,200 (3 seeds) | 2,400 (3 seeds) | **0.50x** | 12.0 | 24.0 | 6.0 | 12.0 |" in row
    assert "SVG(H)" in text
    assert mbrl_report.svg_table({"pendulum": {"kinema-sac": runs(2000)}}) == ""

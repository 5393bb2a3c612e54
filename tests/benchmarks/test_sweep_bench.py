"""`kinema bench sweep` (benchmarks/sweep.py): wiring, and what its report says from a result."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from benchmarks import sweep
from kinema import bench

RESULT = {"machine": "x86_64, 2 CPU cores", "trials": 8, "steps": 100_000, "ratio": 0.55,
          "same_returns": True,
          "sequential": {"wall_s": 400.0, "startup_s": 3.2, "loop_s": 45.0},
          "sweep": {"wall_s": 220.0, "slots": 2, "first_startup_s": 14.0,
                    "later_startup_s": 0.3, "teardown_s": 3.0, "loop_s": 50.0}}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


def test_the_command_passes_its_options_and_markdown_only_when_asked(monkeypatch, tmp_path):
    assert inspect.signature(sweep.run).parameters["markdown"].default is None
    calls = []
    monkeypatch.setattr(sweep, "run", lambda **kw: calls.append(kw) or RESULT)
    bench.main(parse("sweep"))
    assert calls[-1]["markdown"] is None and calls[-1]["results"] == sweep.RESULTS
    assert (calls[-1]["trials"], calls[-1]["steps"]) == (8, 100_000)
    bench.main(parse("sweep", "--trials", "4", "--steps", "2048", "--markdown",
                     str(tmp_path / "B.md")))
    assert (calls[-1]["trials"], calls[-1]["steps"]) == (4, 2048)
    assert calls[-1]["markdown"] == tmp_path / "B.md"


def test_report_states_the_ratio_against_the_goal(tmp_path: Path):
    text = sweep.report(RESULT)
    assert "| `kinema sweep`, 8 trials | 220.0 | 0.55 |" in text
    assert "Goal (sweep / sequential <= 0.6): met (0.55)" in text
    assert "later: 0.30 s (reused worker)" in text
    slow = RESULT | {"ratio": 0.8, "same_returns": False}
    assert "NOT met (0.80)" in sweep.report(slow) and "per seed on both sides: no" in \
        sweep.report(slow)
    md = tmp_path / "B.md"
    md.write_text("# Benchmarks\n\nkept\n")
    sweep.write_section(md, text)
    sweep.write_section(md, text)  # replaced, not appended twice
    body = md.read_text()
    assert body.count(sweep.BEGIN) == 1 and "kept" in body and "0.55" in body

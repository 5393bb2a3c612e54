"""benchmarks/deploy.py: a quick run produces every number the report needs, and the report
rewrites only its own section of BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

from benchmarks import deploy


def test_deploy_bench_quick_run_and_report(tmp_path: Path) -> None:
    r = deploy.run(quick=True, ros=False, modes=("default",), results=tmp_path / "d.json",
                   log=lambda m: None)
    m = r["modes"]["default"]
    inf = m["inference"]
    assert 0 < inf["onnxruntime"]["p50_us"] <= inf["onnxruntime"]["p99_us"]
    assert 0 < inf["torch"]["p50_us"] and inf["cold"]["gap_s"] == 0.02
    assert m["runner"]["stop_reason"] == "completed" and m["runner"]["steps"] == 2000
    assert m["runner"]["inference_p50_us"] < m["runner"]["step_p50_us"]
    jit = m["jitter"]
    assert jit["steps"] == 1000 and jit["rate_hz"] == 500 and jit["jitter_p99_us"] >= 0
    # the absolute schedule: never ahead of the grid, and late only by whole skipped ticks
    assert jit["wall_s"] >= jit["ideal_s"] - 0.003
    assert (tmp_path / "d.json").is_file()
    text = deploy.report(r)
    assert "| runner step: read, checks, inference, safety, send | 100 |" in text
    assert "ROS 2 round trip" in text  # its row, empty when not measured


def test_deploy_bench_rewrites_only_its_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Someone else's\n\nkeep me\n")
    deploy.write_section(path, "first")
    deploy.write_section(path, "second")
    text = path.read_text()
    assert "keep me" in text and "second" in text and "first" not in text
    assert text.count(deploy.BEGIN) == 1 and text.count("## Deployment latency (issue 5)") == 1

"""benchmarks/sim.py measures what it says, on a tiny budget."""

import math

from benchmarks import sim as bench


def test_step_overhead_and_vector_scaling_report(tmp_path):
    row = bench.step_overhead("cheetah-run", steps=20, rounds=2)
    assert row["backend"] == "dm_control" and row["raw_us"] > 0 and row["ours_us"] > 0
    assert math.isfinite(row["overhead"])
    vec = bench.vector_scaling("cartpole", sizes=(1, 2), steps=5)
    assert [(v["n"], v["asynchronous"]) for v in vec] == [(1, False), (2, False), (1, True),
                                                          (2, True)]
    assert all(v["env_steps_per_s"] > 0 for v in vec)
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Someone else's section\n\nkept\n")
    result = {"machine": "test", "step": {"cheetah-run": row}, "vector": vec}
    bench.write_section(md, bench.report(result))
    bench.write_section(md, bench.report(result))  # rewrites its section, never duplicates
    text = md.read_text()
    assert "kept" in text and text.count(bench.BEGIN) == 1 and "`cheetah-run`" in text

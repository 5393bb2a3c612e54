"""Where `kinema bench` writes (JSON by default, a markdown section only when asked) and what
the deploy report says about the machine's load (what was measured, nothing assumed)."""

import argparse
import copy
import inspect
import json
import math
from pathlib import Path

import pytest

from benchmarks import deploy, rl, sim
from benchmarks.deploy_report import markdown as deploy_markdown
from kinema import bench

STORED_DEPLOY = Path(__file__).parents[2] / "benchmarks" / "results" / "deploy.json"


@pytest.mark.parametrize("module", [rl, sim, deploy])
def test_every_benchmark_writes_no_markdown_unless_given_one(module):
    assert inspect.signature(module.run).parameters["markdown"].default is None


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


@pytest.mark.parametrize("name, module", [("sim", sim), ("deploy", deploy)])
def test_the_command_passes_markdown_only_when_asked(name, module, monkeypatch, tmp_path):
    calls = []

    def fake_run(**kwargs):
        calls.append(kwargs)
        return {}

    monkeypatch.setattr(module, "run", fake_run)
    monkeypatch.setattr(module, "report", lambda result: "report")
    bench.main(parse(name))
    assert calls[-1]["markdown"] is None and calls[-1]["results"] == module.RESULTS
    bench.main(parse(name, "--markdown", str(tmp_path / "B.md"), "--results",
                     str(tmp_path / "r.json")))
    assert calls[-1]["markdown"] == tmp_path / "B.md"
    assert calls[-1]["results"] == tmp_path / "r.json"


def test_rl_command_passes_markdown_only_when_asked(monkeypatch, tmp_path):
    calls = []

    def fake_run(tasks, seeds, libs, **kwargs):
        calls.append(kwargs)
        kwargs["results"].write_text("{}")

    monkeypatch.setattr(rl, "run", fake_run)
    monkeypatch.setattr(rl, "report", lambda store: "report")
    results = tmp_path / "rl.json"
    bench.main(parse("rl", "--results", str(results)))
    assert calls[-1] == {"results": results, "markdown": None}
    bench.main(parse("rl", "--results", str(results), "--markdown", str(tmp_path / "B.md")))
    assert calls[-1]["markdown"] == tmp_path / "B.md"


def test_sim_bench_writes_json_and_touches_markdown_only_when_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = sim.run(names=["cartpole"], vector_envs=(), results=tmp_path / "sim.json",
                  log=lambda _: None)
    row = json.loads((tmp_path / "sim.json").read_text())["step"]["cartpole"]
    assert row["raw_us"] > 0 and row["ours_us"] > 0 and math.isfinite(row["overhead"])
    assert row["overhead"] == pytest.approx(row["ours_us"] / row["raw_us"] - 1.0)
    assert list(tmp_path.iterdir()) == [tmp_path / "sim.json"]
    md = tmp_path / "B.md"
    sim.write_section(md, sim.report(out))
    assert "| `cartpole` | gymnasium |" in md.read_text()


def loads(r: dict, start: float, end: float, jitter: float) -> dict:
    r = copy.deepcopy(r)
    r["load_start"], r["load_end"] = start, end
    for m in r["modes"].values():
        if "jitter" in m:
            m["jitter"]["load_before"] = jitter
    return r


@pytest.fixture
def stored() -> dict:
    r = json.loads(STORED_DEPLOY.read_text())
    r["cpus"] = 2
    return r


def test_deploy_report_says_loaded_from_the_load_figures(stored):
    text = deploy_markdown(loads(stored, 2.94, 3.94, 3.0))
    assert "2.94 at the start, 3.94 at the end" in text
    assert "3.00 before the default scheduler jitter run" in text
    assert "at the peak (3.94) other processes wanted about 2.9 cores" in text
    assert "tails (p99) are those of a loaded machine" in text
    assert "engineers" not in text and "throughout" not in text


def test_deploy_report_says_idle_when_the_machine_was_idle(stored):
    text = deploy_markdown(loads(stored, 0.2, 1.1, 0.9))
    assert "0.20 at the start, 1.10 at the end" in text
    assert "at the peak (1.10) other processes wanted about 0.1 cores" in text
    assert "close to the idle one" in text and "loaded machine," not in text


def test_deploy_report_without_a_core_count_claims_nothing(stored):
    r = loads(stored, 3.0, 3.0, 3.0)
    del r["cpus"]
    r["machine"] = "some machine"
    text = deploy_markdown(r)
    assert "core count was not recorded" in text and "other processes wanted" not in text
    assert "those of a loaded machine" not in text and "idle one" not in text

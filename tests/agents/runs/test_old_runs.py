"""Run folders written before the restructure (tests/fixtures/runs_v0) still resume and export.

The fixtures were trained by the code before agents/ moved into family folders; the expected
numbers are what that code printed when it resumed the same folders, so these tests fail if the
move changed any numeric behaviour of a loop, an agent or the checkpoint format.
"""

import json
import shutil
from pathlib import Path

import pytest

from agents.runs.evaluation import rollout_observations
from agents.runs.train import load_agent, resume
from deploy.export import export_bundle

FIXTURES = Path(__file__).parents[2] / "fixtures" / "runs_v0"
EXPECTED = json.loads((FIXTURES / "expected_resume.json").read_text())
STEPS = {"cartpole-ppo": 1024, "pendulum-sac": 600, "cartpole-dqn": 600, "cartpole-bc": 450,
         "cartpole-dagger": 2500}


@pytest.fixture
def old_runs(tmp_path, monkeypatch):
    shutil.copytree(FIXTURES, tmp_path / "v0")
    monkeypatch.chdir(tmp_path / "v0")  # the BC run names its dataset relative to here
    return Path("runs")


@pytest.mark.parametrize("name", sorted(STEPS))
def test_an_old_run_resumes_to_the_same_numbers(old_runs, name):
    result = resume(old_runs / name, train_overrides={"steps": STEPS[name]})
    records = [json.loads(line) for line in
               (result.run / "metrics.jsonl").read_text().splitlines()]
    last_eval = [r for r in records if r.get("kind") == "eval"][-1]
    last_train = [r for r in records if r.get("kind") == "train"][-1]
    want = EXPECTED[name]
    assert last_eval["step"] == want["step"]
    assert last_eval["return_mean"] == want["return_mean"]
    for k, v in want["train"].items():
        assert last_train[k] == v, k


@pytest.mark.parametrize("name", sorted(STEPS))
def test_an_old_run_exports(old_runs, name, tmp_path):
    agent, run = load_agent(old_runs / name)
    obs = rollout_observations(lambda o: agent.act(o, deterministic=True).cpu().numpy(), run.env,
                               steps=64)
    contract = export_bundle(agent.inference_module(), env=run.env, out_dir=tmp_path / "bundle",
                             source_run=run.path.name, rollout_obs=obs)
    assert contract.parity_max_abs_error < 1e-4
    assert (tmp_path / "bundle" / "policy.onnx").is_file()

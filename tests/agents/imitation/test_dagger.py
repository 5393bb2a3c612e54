"""DAgger: the beta schedule, the label cap, aggregation into a verified dataset, bit-exact
resume, learning (seed 0; the other seeds' figures below), compounding error."""

import json

import numpy as np
import pytest
import torch

from agents.imitation.dagger import DAggerConfig, beta_schedule
from agents.loops.dagger import cut
from agents.runs.train import TrainConfig, load_agent, resume, train
from data.dataset import Dataset
from data.episode import Episode

PENDULUM_LABELS = 1600
"""DAgger's label budget on pendulum (1,000 updates per round). With the defaults (beta_i =
I(i = 0), one learner episode per round) the first evaluation >= 0.95 came at 600, 1,200, 1,200,
600, 1,200 and 1,000 labels on seeds 0..5 (median 1,100), and every seed ended at >= 0.98 at
2,000."""
TINY = {"hidden": (16,), "updates_per_round": 20, "val_every": 10}
"""A learner that trains in milliseconds, for the tests of the loop's bookkeeping."""


def _evals(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "eval"]


def test_beta_schedule_follows_ross_et_al():
    assert [beta_schedule(i, 0.5) for i in range(4)] == [1.0, 0.5, 0.25, 0.125]
    assert beta_schedule(0, 0.0) == 1.0 and beta_schedule(3, 0.0) == 0.0


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="beta_decay"):
        DAggerConfig(beta_decay=1.5)
    with pytest.raises(ValueError, match="head"):
        DAggerConfig(head="l1")


def _tiny(tmp_path, steps, name="runs", **kw):
    cfg = TrainConfig(algo="dagger", env="pendulum", steps=steps, eval_episodes=1,
                      runs_dir=str(tmp_path / name))
    return train(cfg, DAggerConfig(**TINY | kw))


def test_steps_cap_the_expert_labels(tmp_path):
    """`--steps` is a cap: the episode that reaches it is cut there, truncated, and committed."""
    run = _tiny(tmp_path, 500).run  # 200-step episodes: 200 (expert), 200, then 100 of 200
    assert [e["labels"] for e in _evals(run)] == [200, 400, 500]
    ds = Dataset.open(run / "dataset")
    assert ds.total_steps == 500 and [e.steps for e in ds.episodes()] == [200, 200, 100]
    last = list(ds.episodes())[-1]
    assert last.truncations[-1] and not last.truncations[:-1].any()
    assert not last.terminations.any() and last.expert_actions is not None

    # given demonstrations count as labels too, and are cut the same way
    given = _tiny(tmp_path, 300, "given", dataset=str(run / "dataset")).run
    assert [e["labels"] for e in _evals(given)] == [300]
    assert [e.steps for e in Dataset.open(given / "dataset").episodes()] == [200, 100]


def test_cut_keeps_a_prefix_and_truncates_it():
    T = 5
    ep = Episode(observations=np.arange(T + 1, dtype=np.float32)[:, None],
                 actions=np.zeros((T, 1), np.float32), rewards=np.arange(T, dtype=np.float64),
                 terminations=np.eye(T, dtype=bool)[-1], truncations=np.zeros(T, bool),
                 expert_actions=np.ones((T, 1), np.float32))
    head = cut(ep, 2)
    assert head.steps == 2 and head.observations[:, 0].tolist() == [0, 1, 2]
    assert head.truncations.tolist() == [False, True] and not head.terminations.any()
    assert head.expert_actions is not None and head.expert_actions.shape == (2, 1)
    assert cut(ep, 5) is ep and cut(ep, 9) is ep


def test_resume_is_bit_exact_and_keeps_the_cap(tmp_path):
    straight = _tiny(tmp_path, 600, "a").run
    half = _tiny(tmp_path, 400, "b").run
    resume(half, train_overrides={"steps": 600})
    a, _ = load_agent(straight)
    b, _ = load_agent(half)
    for (k, x), y in zip(a.net.state_dict().items(), b.net.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    assert _evals(straight)[-1]["return_mean"] == _evals(half)[-1]["return_mean"]
    # a run that ended at a cut continues with the next round, up to the new cap
    resume(half, train_overrides={"steps": 700})
    assert [e.steps for e in Dataset.open(half / "dataset").episodes()] == [200] * 3 + [100]


@pytest.mark.parametrize("seed", [0])
def test_dagger_on_pendulum(tmp_path, seed):
    """The issue's bar: normalized score >= 0.95, kept to the end; every label in RUN/dataset."""
    cfg = TrainConfig(algo="dagger", env="pendulum", seed=seed, steps=PENDULUM_LABELS,
                      runs_dir=str(tmp_path))
    result = train(cfg, DAggerConfig(updates_per_round=1000))
    evals = _evals(result.run)
    rounds = PENDULUM_LABELS // 200
    assert [e["round"] for e in evals] == list(range(rounds))
    assert [e["labels"] for e in evals] == [200 * (i + 1) for i in range(rounds)]
    assert max(e["normalized_score"] for e in evals[1:]) >= 0.95, evals
    assert evals[-1]["normalized_score"] >= 0.9, evals
    ds = Dataset.open(result.run / "dataset")
    assert len(ds) == rounds and ds.total_steps == PENDULUM_LABELS
    assert ds.metadata["expert"]["kind"] == "dagger"
    first, *relabelled = ds.episodes()
    assert first.expert_actions is None  # beta_0 = 1: the expert drove
    assert all(e.expert_actions is not None for e in relabelled)
    # beta_i = 0 after: the learner drove, so its actions and the expert's labels differ
    assert all((e.expert_actions != e.actions).any() for e in relabelled)


@pytest.mark.parametrize("seed", [0, 1])
def test_dagger_needs_fewer_labels_than_bc_under_compounding_error(tmp_path, seed):
    """inverted-pendulum: the LQR expert never leaves the upright, so BC never sees the states
    its own small errors lead to and falls; DAgger labels those states and balances."""
    from agents.experts.base import make_expert
    from agents.imitation.bc import BCConfig
    from data.record import record

    small = {"hidden": (64, 64), "updates_per_round": 1000}
    cfg = TrainConfig(algo="dagger", env="inverted-pendulum", seed=seed, steps=4000,
                      target_return=1000, runs_dir=str(tmp_path / "runs"))
    dagger_run = train(cfg, DAggerConfig(**small)).run
    evals = _evals(dagger_run)
    solved = [e for e in evals if e["normalized_score"] >= 0.95]
    assert solved, evals
    dagger_labels = solved[0]["labels"]
    assert Dataset.open(dagger_run / "dataset").total_steps == evals[-1]["labels"] <= 4000

    ds = tmp_path / "demos"
    record("inverted-pendulum", make_expert("scripted", "inverted-pendulum"), 4, ds)
    bc_cfg = TrainConfig(algo="bc", env="inverted-pendulum", seed=seed, steps=1000,
                         eval_every=1000, runs_dir=str(tmp_path / "runs"))
    bc_last = _evals(train(bc_cfg, BCConfig(dataset=str(ds), hidden=(64, 64))).run)[-1]
    assert bc_last["labels"] == 4000 > dagger_labels
    assert bc_last["normalized_score"] < 0.5, bc_last

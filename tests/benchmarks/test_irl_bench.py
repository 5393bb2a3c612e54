"""`kinema bench irl`: the dataset handed to imitation, result storage and the report's
arithmetic, on a tiny dataset and fake results (the peer's venv is not built here)."""

import json

import numpy as np
import pytest

from benchmarks import irl, irl_peer
from data.dataset import Dataset
from data.episode import Episode
from data.record import open_writer


def _tiny_dataset(root, env="pendulum"):
    import sim

    e = sim.make(env)
    rng = np.random.default_rng(0)
    eps = []
    for T, term in ((3, False), (2, True)):
        eps.append(Episode(observations=rng.normal(size=(T + 1, 3)).astype(np.float32),
                           actions=rng.uniform(-1, 1, (T, 1)).astype(np.float32),
                           rewards=rng.normal(size=T), terminations=np.arange(T) == T - 1 if term
                           else np.zeros(T, bool), truncations=np.arange(T) == T - 1 if not term
                           else np.zeros(T, bool)))
    with open_writer(root, env, e, {"kind": "scripted"}) as w:
        w.add(eps)
    e.close()
    return eps


def test_the_dataset_reaches_imitation_as_the_same_trajectories(tmp_path):
    eps = _tiny_dataset(tmp_path / "d")
    assert irl_peer.to_npz(tmp_path / "d", tmp_path / "demos.npz") == {"episodes": 2, "steps": 5}
    with np.load(tmp_path / "demos.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["acts", "lengths", "obs", "terminal"]
        assert z["obs"].shape == (4 + 3, 3) and z["acts"].shape == (5, 1)
        assert z["lengths"].tolist() == [3, 2] and z["terminal"].tolist() == [False, True]
    # split back per episode as the peer does (benchmarks/peers/imitation_adversarial.py's
    # load_demos; that file imports imitation, which is not installed here)
    ds = Dataset.open(tmp_path / "d")
    back = list(ds.episodes())
    with np.load(tmp_path / "demos.npz", allow_pickle=False) as z:
        o = a = 0
        for ep, T in zip(back, z["lengths"].tolist(), strict=True):
            np.testing.assert_array_equal(z["obs"][o:o + T + 1], ep.observations)
            np.testing.assert_array_equal(z["acts"][a:a + T], ep.labels)
            o, a = o + T + 1, a + T
    np.testing.assert_array_equal(back[1].observations, eps[1].observations)
    assert irl_peer.to_npz(tmp_path / "d", tmp_path / "one.npz", max_episodes=1)["steps"] == 3


REF = {"random": -1200.0, "expert": -200.0}


def _run(final, reach=None, seconds=10.0):
    """A fake run: evaluations at 1000, 2000, 3000 with the last normalized score `final`."""
    ret = REF["random"] + final * (REF["expert"] - REF["random"])
    mid = REF["random"] + (0.9 if reach == 2000 else 0.1) * (REF["expert"] - REF["random"])
    evals = [[1000, REF["random"], 1.0, 0.5], [2000, mid, 2.0, 1.0], [3000, ret, seconds, 4.0]]
    return irl.summarize(evals, REF) | {"machine": "m"}


def test_summarize_takes_the_last_score_and_the_first_step_over_the_threshold():
    r = _run(0.5, reach=2000)
    assert r["normalized"] == pytest.approx(0.5) and r["steps_to_threshold"] == 2000
    assert (r["steps"], r["train_s"], r["train_cpu_s"]) == (3000, 10.0, 4.0)
    assert _run(0.7)["steps_to_threshold"] is None
    assert _run(0.5, reach=2000)["best_normalized"] == pytest.approx(0.9)
    assert _run(0.95)["steps_to_threshold"] == 3000


def test_the_report_gives_medians_spread_and_ratios_per_library():
    store = {"pendulum": {
        "reference": REF,
        "kinema-gail": {"0": _run(0.9, 2000, 10.0), "1": _run(1.0, None, 20.0),
                        "2": _run(0.96, 2000, 30.0)},
        "imitation-gail": {"0": _run(0.5, seconds=40.0), "1": {"error": "peer failed"},
                           "2": _run(0.7, seconds=60.0)},
    }}
    text = irl.report(store)
    rows = text.splitlines()
    assert "| pendulum | GAIL | kinema | 0.96 (0.90–1.00) | 0.96 | 3/3 | 2,000 | 3,000 | 20.0 " \
        "| 4.0 |" in rows
    assert "| pendulum | GAIL | imitation | 0.60 (0.50–0.70) | 0.60 | 0/2 | — | 3,000 | 50.0 " \
        "| 4.0 |" in rows
    assert "Kinema / imitation 1.00x" in text and "0.10 vs 0.20" in text
    assert "pendulum, imitation gail: peer failed" in text
    assert "R_random -1200.0, R_expert -200.0" in text and "Machine: m." in text
    assert "AIRL" not in text.split("\n\n")[0]  # no AIRL results, no AIRL rows
    assert irl.report({}) == ""


def test_results_are_stored_per_task_library_and_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(irl, "record_demos", lambda task, out: REF)
    monkeypatch.setattr(irl, "run_kinema", lambda algo, task, ds, seed: [
        [100, -700.0, 1.0, 0.5], [200, -200.0 - seed, 2.0, 1.0]])
    out = tmp_path / "irl.json"
    out.write_text(json.dumps({"cartpole": {"kept": {}}}))
    store = irl.run(["pendulum"], [0, 1], ["kinema"], algos=("gail",), results=out,
                    log=lambda m: None)
    assert json.loads(out.read_text()) == store and "kept" in store["cartpole"]
    runs = store["pendulum"]["kinema-gail"]
    assert sorted(runs) == ["0", "1"] and runs["0"]["normalized"] == pytest.approx(1.0)
    assert runs["1"]["steps_to_threshold"] == 200 and store["pendulum"]["reference"] == REF


def test_unknown_tasks_and_libraries_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown tasks or libraries.*'hopper'.*cartpole"):
        irl.run(["hopper"], [0], ["kinema"], results=tmp_path / "x.json")
    with pytest.raises(ValueError, match="'sb3'.*libraries: kinema, imitation"):
        irl.run(["cartpole"], [0], ["sb3"], results=tmp_path / "x.json")

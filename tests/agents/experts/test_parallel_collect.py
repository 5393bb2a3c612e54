"""`kinema collect --workers N` (agents/experts/parallel.py): Ray workers record, one writer
commits in seed order, so the dataset equals the single-process one episode for episode."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kinema.cli import main

ray = pytest.importorskip("ray", reason="the sweep extra (ray[tune]) is not installed")

from data.dataset import Dataset  # noqa: E402


@pytest.fixture(scope="module")
def local_ray(ray_head: str) -> str:
    """The session's Ray head (tests/agents/conftest.py): collect uses the joined session."""
    return ray_head


def collect(capsys, out, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "5",
                 "--seed", "3", "--out", str(out), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def episodes(path):
    return list(Dataset.open(path).episodes())


def test_workers_write_the_single_process_dataset(local_ray, tmp_path, capsys):
    one = collect(capsys, tmp_path / "one")
    two = collect(capsys, tmp_path / "two", "--workers", "2")
    assert two["episodes"] == 5 and two["return_mean"] == one["return_mean"]
    a, b = episodes(tmp_path / "one"), episodes(tmp_path / "two")
    assert [e.seed for e in b] == [3, 4, 5, 6, 7] == [e.seed for e in a]
    for x, y in zip(a, b, strict=True):
        for field in ("observations", "actions", "rewards", "terminations", "truncations"):
            assert np.array_equal(getattr(x, field), getattr(y, field)), field
    # appending with workers continues the seed sequence, as a single process does
    more = collect(capsys, tmp_path / "two", "--workers", "2", "--append")
    assert more["episodes"] == 5
    assert [e.seed for e in episodes(tmp_path / "two")] == list(range(3, 13))


@pytest.mark.bad_input
def test_teleop_is_refused_with_workers(tmp_path, capsys):
    rc = main(["collect", "--env", "pendulum", "--expert", "teleop", "--episodes", "1",
               "--out", str(tmp_path / "d"), "--workers", "2"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and "--workers needs an expert" in err[0], err
    assert not (tmp_path / "d").exists()

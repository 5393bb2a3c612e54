"""Datasets: Minari layout, SHA-256 manifest, crash safety, refusal of non-finite values."""

import json
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import h5py
import numpy as np
import pytest

from agents.experts.base import make_expert
from data import manifest as mf
from data.dataset import Dataset, DatasetWriter
from data.episode import Episode, EpisodeBuilder
from data.manifest import DatasetError
from data.record import record

minari = pytest.importorskip("minari", reason="minari (the dev extra) reads the datasets back")


@pytest.fixture(scope="module")
def pendulum_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "pendulum"
    result = record("pendulum", make_expert("scripted", "pendulum"), 3, out, seed=5)
    assert result.episodes == 3 and result.steps == 600
    return out


def test_minari_opens_ours_and_sees_the_same_episodes(pendulum_ds):
    ours = Dataset.open(pendulum_ds)
    theirs = minari.MinariDataset(pendulum_ds / "data")
    assert theirs.total_episodes == len(ours) == 3 and theirs.total_steps == 600
    assert theirs.spec.dataset_id == "kinema/pendulum-scripted-v0"
    for a, b in zip(ours.episodes(), theirs.iterate_episodes(), strict=True):
        for field in ("observations", "actions", "rewards", "terminations", "truncations"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
        assert b.observations.shape == (201, 3) and b.truncations[-1] and not b.terminations.any()
    assert [m["seed"] for m in theirs.storage.get_episode_metadata(range(3))] == [5, 6, 7]
    meta = ours.metadata
    assert meta["env"] == "pendulum" and meta["control_dt"] == pytest.approx(0.05)
    assert meta["expert"]["kind"] == "scripted" and meta["format"] == "kinema-dataset/1"
    assert meta["env_spec"]["backend"] == "gymnasium" and meta["env_spec"]["obs_shape"] == [3]


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("rel", ["manifest.json", "data/metadata.json", "data/main_data.hdf5"])
def test_one_flipped_byte_is_a_clear_error(pendulum_ds, tmp_path, rel):
    size = (pendulum_ds / rel).stat().st_size
    for pos in sorted({0, 1, size // 3, size // 2, size - 2, size - 1}):
        ds = _copy(pendulum_ds, tmp_path / f"flip{pos}")
        raw = bytearray((ds / rel).read_bytes())
        raw[pos] ^= 0xFF
        (ds / rel).write_bytes(bytes(raw))
        t0 = time.perf_counter()
        with pytest.raises(DatasetError) as e:
            Dataset.open(ds)
        assert time.perf_counter() - t0 < 2.0
        assert "corrupt" in str(e.value) or "not valid JSON" in str(e.value), str(e.value)


def test_flipped_byte_through_the_cli_is_one_line(pendulum_ds, tmp_path):
    ds = _copy(pendulum_ds, tmp_path / "ds")
    raw = bytearray((ds / "data/main_data.hdf5").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (ds / "data/main_data.hdf5").write_bytes(bytes(raw))
    r = subprocess.run([sys.executable, "-m", "kinema", "train", "bc", "--env", "pendulum",
                        "--dataset", str(ds), "--runs-dir", str(tmp_path / "runs"),
                        "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "main_data.hdf5 is corrupt" in errors[0], r.stderr


def test_kill_mid_recording_keeps_every_complete_episode(tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "kinema", "collect", "--env", "pendulum",
                             "--expert", "scripted", "--episodes", "500", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if mf.read_manifest(out)["episodes"] >= 3:
                    break
            except DatasetError:
                pass
            time.sleep(0.05)
        time.sleep(0.13)  # land somewhere inside a later episode (or a commit)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    ds = Dataset.open(out)
    assert 3 <= len(ds) < 500
    assert all(ep.steps == 200 and ep.truncations[-1] for ep in ds.episodes())
    assert minari.MinariDataset(out / "data").total_episodes == len(ds)
    with DatasetWriter.append(out) as w:  # the next writer cleans up and carries on
        assert w.episodes == len(ds)
    assert not list(out.rglob(f"*{mf.STAGED_MARK}*"))


class _FailingExpert:
    """The scripted pendulum expert, raising in the middle of its third episode."""

    def __init__(self):
        self.inner, self.calls = make_expert("scripted", "pendulum"), 0
        self.name, self.spec, self.render_mode = "failing", {"kind": "test"}, None

    def begin(self, env, obs):
        return True

    def signal(self):
        return None

    def act(self, obs, env):
        self.calls += 1
        if self.calls == 2 * 200 + 50:
            raise RuntimeError("expert crashed")
        return self.inner.act(obs, env)


def test_exception_mid_episode_keeps_the_complete_ones(tmp_path):
    with pytest.raises(RuntimeError, match="expert crashed"):
        record("pendulum", _FailingExpert(), 5, tmp_path / "ds")
    ds = Dataset.open(tmp_path / "ds")
    assert len(ds) == 2 and ds.total_steps == 400


def _episode(T=4, obs_dim=3):
    rng = np.random.default_rng(T)
    return Episode(rng.normal(size=(T + 1, obs_dim)).astype(np.float32),
                   rng.uniform(-1, 1, (T, 1)).astype(np.float32), rng.normal(size=T),
                   np.zeros(T, bool), np.eye(T, dtype=bool)[-1])


def _writer(root, obs_space=None):
    return DatasetWriter.create(
        root, observation_space=obs_space or gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
        action_space=gym.spaces.Box(-1, 1, (1,), np.float32), kinema={"env": "pendulum"},
        dataset_id="kinema/test-v0", algorithm_name="test")


def test_crash_after_the_commit_point_is_rolled_forward(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    w = _writer(root)
    w.add(_episode())
    real = os.replace
    def crash_on_staged(src, dst):
        if mf.STAGED_MARK in str(src):
            raise KeyboardInterrupt("killed")
        real(src, dst)
    monkeypatch.setattr(mf.os, "replace", crash_on_staged)
    with pytest.raises(KeyboardInterrupt):
        w.add(_episode(T=6))
    monkeypatch.setattr(mf.os, "replace", real)
    w.close()
    assert (root / mf.PENDING_FILE).exists()
    ds = Dataset.open(root)  # no writer holds the lock: the reader finishes the commit
    assert len(ds) == 2 and [e.steps for e in ds.episodes()] == [4, 6]
    assert not (root / mf.PENDING_FILE).exists()


def test_crash_before_the_commit_point_keeps_the_old_dataset(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    w = _writer(root)
    w.add(_episode())
    monkeypatch.setattr(mf, "_write_json_atomic", lambda *a: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        w.add(_episode(T=6))
    monkeypatch.undo()
    w.close()
    assert len(Dataset.open(root)) == 1


def test_non_finite_values_are_refused(tmp_path):
    b = EpisodeBuilder(np.zeros(3, np.float32), discrete=False)
    with pytest.raises(DatasetError, match="action at step 0, row 0 is not finite"):
        b.add(np.array([np.nan], np.float32), 0.0, False, False, np.zeros(3, np.float32))
    with pytest.raises(DatasetError, match="reward at step 0"):
        b.add(np.zeros(1, np.float32), float("inf"), False, False, np.zeros(3, np.float32))
    ep = _episode()
    bad = ep.observations.copy()
    bad[2, 1] = np.inf
    with pytest.raises(DatasetError, match="observations row 2 is not finite"):
        Episode(bad, ep.actions, ep.rewards, ep.terminations, ep.truncations)
    assert len(b) == 0


def test_pixel_observations_are_gzip_compressed_and_lossless(tmp_path):
    space = gym.spaces.Box(0, 255, (48, 48, 3), np.uint8)
    rng = np.random.default_rng(0)
    frames = np.zeros((6, 48, 48, 3), np.uint8)
    frames[:, 10:20, 10:30] = rng.integers(0, 255, (6, 10, 20, 3), dtype=np.uint8)
    ep = Episode(frames, np.zeros((5, 1), np.float32), np.ones(5), np.zeros(5, bool),
                 np.eye(5, dtype=bool)[-1])
    with _writer(tmp_path / "px", space) as w:
        w.add(ep)
    with h5py.File(tmp_path / "px/data/main_data.hdf5") as f:
        assert f["episode_0/observations"].compression == "gzip"
        assert f["episode_0/actions"].compression is None
    (got,) = minari.MinariDataset(tmp_path / "px/data").iterate_episodes()
    assert np.array_equal(got.observations, frames)
    assert json.loads((tmp_path / "px/data/metadata.json").read_text())["jpeg_encoding"] is False


def test_one_writer_at_a_time(tmp_path):
    with _writer(tmp_path / "ds"):
        with pytest.raises(DatasetError, match="another process"):
            DatasetWriter.append(tmp_path / "ds")


def test_recording_a_pixel_env_stores_its_frames_compressed(tmp_path):
    from agents.experts.teleop import ScriptedInput, Teleop

    env = "reacher-easy-pixels"
    polls = ["start"] + ["right"] * 12 + ["stop"]
    result = record(env, Teleop(env, ScriptedInput(polls)), 1, tmp_path / "px")
    assert result.episodes == 1 and result.steps == 12
    with h5py.File(tmp_path / "px/data/main_data.hdf5") as f:
        obs = f["episode_0/observations"]
        assert obs.dtype == np.uint8 and obs.shape[0] == 13 and obs.compression == "gzip"
        assert obs.id.get_storage_size() < obs.nbytes / 3
        frames = obs[()]
    (got,) = minari.MinariDataset(tmp_path / "px/data").iterate_episodes()
    assert np.array_equal(got.observations, frames)


KILLED_APPEND = """
import os, signal, sys
import h5py
from data import manifest as mf
from kinema.cli import main

real = h5py.File
def killed_mid_commit(path, *a, **k):  # the HDF5 file is copied: die before the commit point
    if mf.STAGED_MARK in str(path):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, *a, **k)
h5py.File = killed_mid_commit
main(["collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "1", "--out",
      sys.argv[1], "--append"])
"""


@pytest.fixture(scope="module")
def killed_append(pendulum_ds, tmp_path_factory):
    """A dataset a `kinema collect --append` was killed in: a staged copy of the whole HDF5
    file is left beside it, and the lock was released by the kernel."""
    ds = _copy(pendulum_ds, tmp_path_factory.mktemp("killed") / "ds")
    r = subprocess.run([sys.executable, "-c", KILLED_APPEND, str(ds)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    (left,) = [p for p in ds.rglob("*") if mf.is_leftover(p.name)]
    assert left.stat().st_size == (ds / "data/main_data.hdf5").stat().st_size
    return ds


def _open(ds):
    assert len(Dataset.open(ds)) == 3


def _append(ds):
    with DatasetWriter.append(ds) as w:
        assert w.episodes == 3


def _collect_append(ds):
    from kinema.cli import main

    assert main(["collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "1",
                 "--out", str(ds), "--append", "--json"]) == 0
    assert len(Dataset.open(ds)) == 4


@pytest.mark.parametrize("opener", [_open, _append, _collect_append],
                         ids=["open", "append", "collect-append"])
def test_what_a_killed_append_left_is_removed_when_the_dataset_is_next_opened(
        killed_append, tmp_path, opener):
    ds = _copy(killed_append, tmp_path / "ds")
    opener(ds)
    assert not [p for p in ds.rglob("*") if mf.is_leftover(p.name)]
    assert Dataset.open(ds).returns().shape[0] >= 3


def test_a_live_writers_staged_file_is_never_removed(pendulum_ds, tmp_path):
    ds = _copy(pendulum_ds, tmp_path / "ds")
    w = DatasetWriter.append(ds)
    staged = mf.staged_path(ds / "data/main_data.hdf5")
    staged.write_bytes((ds / "data/main_data.hdf5").read_bytes())  # its commit, in flight
    assert len(Dataset.open(ds)) == 3  # a reader meanwhile: reads, removes nothing
    with pytest.raises(DatasetError, match="another process"):
        DatasetWriter.append(ds)
    assert staged.exists()
    w.close()  # the writer is gone: now its staged file is a leftover
    Dataset.open(ds)
    assert not staged.exists()


def test_a_new_dataset_that_committed_nothing_leaves_nothing(tmp_path):
    root = tmp_path / "a" / "b" / "ds"
    w = _writer(root)
    assert (root / "data").is_dir()
    w.close()
    assert list(tmp_path.iterdir()) == []
    with _writer(tmp_path) as w:  # an existing empty folder stays, empty
        pass
    assert list(tmp_path.iterdir()) == []
    with _writer(root) as w:
        w.add(_episode())
    assert len(Dataset.open(root)) == 1


def test_a_lock_taken_on_a_deleted_lock_file_is_taken_again_on_the_new_one(tmp_path,
                                                                            monkeypatch):
    root = tmp_path / "ds"
    root.mkdir()
    real_flock, swapped = mf.fcntl.flock, []

    def flock_after_a_swap(fd, op):
        if not swapped:  # between this open and flock, the holder deletes the lock file and
            swapped.append(True)  # another writer makes a new one
            (root / mf.LOCK_FILE).unlink()
            (root / mf.LOCK_FILE).touch()
        return real_flock(fd, op)

    monkeypatch.setattr(mf.fcntl, "flock", flock_after_a_swap)
    lock = mf.Lock(root, exclusive=True)
    assert swapped and lock.held
    with pytest.raises(DatasetError, match="another process"):  # the new file is the one held
        mf.Lock(root, exclusive=True)
    lock.release()

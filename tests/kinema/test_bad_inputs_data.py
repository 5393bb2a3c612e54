"""Bad datasets and dataset folders through the real CLI: one line on stderr, exit 2, nothing
left behind (no run folder, no dataset files, the input unchanged)."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

import sim
from agents.experts.base import make_expert
from data import manifest as mf
from data.dataset import MAIN_REL, METADATA_REL
from data.record import open_writer, record
from kinema.cli import main


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every file and folder under `path` (or `path` itself), with the bytes of each file."""
    if path.is_file():
        return {".": path.read_bytes()}
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None
            for p in sorted(path.rglob("*"))}


def one_error_line(capsys, args: list[str]) -> str:
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"kinema {args[0]}: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def base_ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "ds"
    record("pendulum", make_expert("scripted", "pendulum"), 3, out, seed=0)
    return out


# --- kinema collect --out ----------------------------------------------------------------

def _a_file(root: Path, base: Path) -> Path:
    (root / "notes.txt").write_text("not a dataset\n")
    return root / "notes.txt"


def _under_a_file(root: Path, base: Path) -> Path:
    _a_file(root, base)
    return root / "notes.txt" / "ds"


def _minari_layout(root: Path, base: Path) -> Path:
    shutil.copytree(base / "data", root / "minari" / "data")  # Minari's files, no manifest
    return root / "minari"


def _minari_data_folder(root: Path, base: Path) -> Path:
    shutil.copytree(base / "data", root / "data-only")  # main_data.hdf5 at the top
    return root / "data-only"


def _foreign_files(root: Path, base: Path) -> Path:
    (root / "mine").mkdir()
    (root / "mine" / "results.csv").write_text("a,b\n1,2\n")
    return root / "mine"


def _foreign_file_in_data(root: Path, base: Path) -> Path:
    (root / "mine" / "data").mkdir(parents=True)
    (root / "mine" / "data" / "frames.npy").write_bytes(b"\x93NUMPY")
    return root / "mine"


OUT_CASES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "a-file": (_a_file, "notes.txt is a file, not a folder"),
    "under-a-file": (_under_a_file, "notes.txt is a file"),
    "minari-layout": (_minari_layout, "holds data/main_data.hdf5 but no manifest.json"),
    "minari-data-folder": (_minari_data_folder, "holds files that are not a Kinema dataset's"),
    "foreign-files": (_foreign_files, "holds files that are not a Kinema dataset's (results.csv)"),
    "foreign-file-in-data": (_foreign_file_in_data, "(data/frames.npy)"),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("append", [False, True], ids=["new", "append"])
@pytest.mark.parametrize("case", list(OUT_CASES))
def test_collect_refuses_an_out_that_is_not_a_dataset_folder(case, append, base_ds, tmp_path,
                                                             capsys):
    make, needle = OUT_CASES[case]
    out = make(tmp_path, base_ds)
    before = snapshot(tmp_path)
    line = one_error_line(capsys, ["collect", "--env", "pendulum", "--expert", "scripted",
                                   "--episodes", "1", "--out", str(out),
                                   *(["--append"] if append else [])])
    assert needle in line and str(out) in line, line
    assert snapshot(tmp_path) == before  # no manifest over someone's files, no lock, no data/


@pytest.mark.bad_input
def test_collect_append_of_another_env_leaves_the_dataset_as_it_was(base_ds, tmp_path, capsys):
    ds = shutil.copytree(base_ds, tmp_path / "ds")
    before = snapshot(ds)
    line = one_error_line(capsys, ["collect", "--env", "cartpole", "--expert", "scripted",
                                   "--episodes", "1", "--out", str(ds), "--append"])
    assert "holds 'pendulum' episodes; cannot append 'cartpole'" in line, line
    assert snapshot(ds) == before


def test_collect_into_a_folder_a_killed_writer_left_cleans_it(tmp_path, capsys):
    out = tmp_path / "ds"
    (out / "data").mkdir(parents=True)
    (out / mf.LOCK_FILE).touch()
    (out / "data" / ".main_data.hdf5.staged-999999").write_bytes(b"half a copy")
    (out / ".manifest.json.tmp-999999-abcd").write_bytes(b"{")
    assert main(["collect", "--env", "pendulum", "--expert", "scripted", "--episodes", "1",
                 "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    assert not [p for p in out.rglob("*") if mf.is_leftover(p.name)]
    assert mf.read_manifest(out)["episodes"] == 1


# --- kinema train bc / dagger --dataset: hashes that hold over content that does not -------

def _rehash(ds: Path, *, episodes: int | None = None, steps: int | None = None) -> None:
    """Commit the files as they are now, so every SHA-256 in the manifest matches them."""
    man = mf.read_manifest(ds)
    staged = {}
    for rel in man["files"]:
        staged[rel] = mf.staged_path(ds / rel)
        shutil.copyfile(ds / rel, staged[rel])
    mf.commit(ds, staged, episodes=man["episodes"] if episodes is None else episodes,
              steps=man["steps"] if steps is None else steps)
    mf.verify(ds)


def _truncated(ds: Path) -> None:
    raw = (ds / MAIN_REL).read_bytes()
    (ds / MAIN_REL).write_bytes(raw[: len(raw) // 2])


def _nan_observation(ds: Path) -> None:
    with h5py.File(ds / MAIN_REL, "r+") as f:
        f["episode_1/observations"][5, 0] = np.nan


def _inf_reward(ds: Path) -> None:
    with h5py.File(ds / MAIN_REL, "r+") as f:
        f["episode_2/rewards"][7] = np.inf


def _deleted_episode(ds: Path) -> None:
    with h5py.File(ds / MAIN_REL, "r+") as f:
        del f["episode_1"]


def _short_rewards(ds: Path) -> None:
    with h5py.File(ds / MAIN_REL, "r+") as f:
        r = f["episode_0/rewards"][()]
        del f["episode_0/rewards"]
        f["episode_0/rewards"] = r[:-1]


def _wide_actions(ds: Path) -> None:
    with h5py.File(ds / MAIN_REL, "r+") as f:
        a = f["episode_0/actions"][()]
        del f["episode_0/actions"]
        f["episode_0/actions"] = np.concatenate([a, a], axis=1)


def _missing_field(ds: Path) -> None:
    with h5py.File(ds / MAIN_REL, "r+") as f:
        del f["episode_2/terminations"]


def _text_observations(ds: Path) -> None:
    with h5py.File(ds / MAIN_REL, "r+") as f:
        n = len(f["episode_0/observations"])
        del f["episode_0/observations"]
        f["episode_0/observations"] = np.array([b"x"] * n)


def _metadata_without_env(ds: Path) -> None:
    meta = json.loads((ds / METADATA_REL).read_text())
    del meta["kinema"]["env"]
    (ds / METADATA_REL).write_text(json.dumps(meta))


def _metadata_space_of_another_env(ds: Path) -> None:
    meta = json.loads((ds / METADATA_REL).read_text())
    space = json.loads(meta["observation_space"])
    space.update(shape=[4], low=[-1.0] * 4, high=[1.0] * 4)
    meta["observation_space"] = json.dumps(space)
    (ds / METADATA_REL).write_text(json.dumps(meta))


BAD_CONTENT: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated-hdf5": (_truncated, "main_data.hdf5 cannot be read as HDF5"),
    "nan-observation": (_nan_observation, "episode_1: observations row 5 is not finite"),
    "inf-reward": (_inf_reward, "episode_2: rewards row 7 is not finite"),
    "deleted-episode": (_deleted_episode, "episode_1: is missing"),
    "short-rewards": (_short_rewards, "episode_0: rewards has 199 rows; an episode of 200"),
    "wide-actions": (_wide_actions, "episode_0: actions have shape [2]"),
    "missing-terminations": (_missing_field, "episode_2: has no terminations dataset"),
    "text-observations": (_text_observations, "episode_0: observations hold |S1 values"),
    "metadata-without-env": (_metadata_without_env, "metadata.json names no env"),
    "metadata-space": (_metadata_space_of_another_env,
                       "holds observations of shape [4]; pendulum gives [3]"),
}


def _empty_dataset(root: Path) -> Path:
    env = sim.make("pendulum")
    with open_writer(root / "empty", "pendulum", env, {"kind": "scripted"}) as w:
        w.add([])  # a dataset committed with 0 episodes
    env.close()
    return root / "empty"


def _train(algo: str, ds: Path, runs: Path) -> list[str]:
    extra = ["--expert", "scripted"] if algo == "dagger" else []
    return ["train", algo, "--env", "pendulum", "--dataset", str(ds), *extra, "--steps", "50",
            "--runs-dir", str(runs), "--no-progress"]


def _assert_no_run(runs: Path) -> None:
    assert not runs.exists() or not list(runs.iterdir()), list(runs.rglob("*"))


@pytest.mark.bad_input
@pytest.mark.parametrize("algo", ["bc", "dagger"])
@pytest.mark.parametrize("case", list(BAD_CONTENT))
def test_train_refuses_bad_content_before_the_run_folder(case, algo, base_ds, tmp_path, capsys):
    spoil, needle = BAD_CONTENT[case]
    ds = shutil.copytree(base_ds, tmp_path / "ds")
    spoil(ds)
    _rehash(ds)
    before = snapshot(ds)
    line = one_error_line(capsys, _train(algo, ds, tmp_path / "runs"))
    assert needle in line and str(ds) in line, line
    _assert_no_run(tmp_path / "runs")
    assert snapshot(ds) == before


@pytest.mark.bad_input
@pytest.mark.parametrize("algo", ["bc", "dagger"])
def test_train_refuses_an_empty_dataset(algo, tmp_path, capsys):
    ds = _empty_dataset(tmp_path)
    assert mf.read_manifest(ds)["episodes"] == 0
    before = snapshot(ds)
    line = one_error_line(capsys, _train(algo, ds, tmp_path / "runs"))
    assert f"{ds} holds no episodes" in line, line
    _assert_no_run(tmp_path / "runs")
    assert snapshot(ds) == before


@pytest.mark.bad_input
def test_train_refuses_a_dataset_that_is_a_file(tmp_path, capsys):
    (tmp_path / "demos.hdf5").write_bytes(b"\x89HDF\r\n")
    line = one_error_line(capsys, _train("bc", tmp_path / "demos.hdf5", tmp_path / "runs"))
    assert "demos.hdf5 is a file, not a dataset folder" in line, line
    _assert_no_run(tmp_path / "runs")


@pytest.mark.bad_input
def test_train_refuses_a_dataset_whose_spaces_do_not_fit_the_env(base_ds, tmp_path, capsys):
    ds = shutil.copytree(base_ds, tmp_path / "ds")
    line = one_error_line(capsys, ["train", "bc", "--env", "inverted-pendulum", "--dataset",
                                   str(ds), "--runs-dir", str(tmp_path / "runs"),
                                   "--no-progress"])
    assert "holds 'pendulum' episodes, not 'inverted-pendulum'" in line, line
    _assert_no_run(tmp_path / "runs")


# --- MuJoCo's log file ---------------------------------------------------------------------

UNSTABLE = """
import numpy as np
import sim
env = sim.make("hopper", seed=0)
env.unwrapped.data.qvel[:] = 1e12
_, _, terminated, _, info = env.step(np.zeros(3, np.float32))
assert terminated and info["sim_unstable"], info
print("unstable")
"""


@pytest.mark.parametrize("first", ["", "import mujoco\n"], ids=["sim-first", "mujoco-first"])
def test_a_mujoco_warning_leaves_no_log_file_in_the_working_folder(first, tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get(
        "PYTHONPATH", "")]), MUJOCO_GL="egl")
    r = subprocess.run([sys.executable, "-c", first + UNSTABLE], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "unstable"  # nothing of MuJoCo's on stdout
    assert "MuJoCo: Nan, Inf or huge value in QVEL" in r.stderr  # the warning, through logging
    assert list(tmp_path.iterdir()) == []  # no MUJOCO_LOG.TXT

"""Episode datasets in Minari's HDF5 layout, verified by a SHA-256 manifest.

    DIR/manifest.json        SHA-256 of every file below (data/manifest.py), checked before any read
    DIR/data/metadata.json   Minari's metadata (dataset_id, minari_version, data_format "hdf5",
                             observation_space, action_space, total_episodes, total_steps, ...)
                             plus ours under "kinema": format version, env name and spec, the
                             expert, control dt
    DIR/data/main_data.hdf5  one group per episode, as Minari's HDF5Storage writes them:
        episode_<i>/            attrs: id, total_steps, seed
            observations [T+1, ...], actions [T, ...], rewards [T], terminations [T],
            truncations [T], infos/ (expert_actions [T, ...] when labels differ from actions)

So `minari.MinariDataset(DIR / "data")` opens a Kinema dataset and sees the same episodes. Pixel
observations (uint8, two or more dims) are stored gzip-compressed, losslessly: metadata says
jpeg_encoding false, so Minari reads the raw arrays (h5py decompresses transparently).

Commits are copy-on-write: the HDF5 file is copied, the new episodes appended to the copy, and
the copy committed through the manifest's redo log. HDF5 updates its internal metadata in place,
so appending to the live file could leave it unreadable after a kill mid-write; the copy costs
O(dataset size) per commit, which is small next to collecting the episode for state datasets.
A new dataset goes only into a new or empty folder (`check_new_folder`) and exists from its first
commit; `Dataset.check` reads every episode back before a learner depends on them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import numpy as np

from data import manifest as mf
from data.episode import Episode, check_spaces, parse_space, serialize_space
from data.files import fsync_path, fsync_write
from data.manifest import DatasetError

FORMAT = "kinema-dataset/1"
MINARI_VERSION = "0.5.0"
"""The Minari release whose HDF5 layout we write (read by minari 0.5.0 .. 0.5.4 at least)."""
DATA_DIR, MAIN_FILE, METADATA_FILE = "data", "main_data.hdf5", "metadata.json"
MAIN_REL, METADATA_REL = f"{DATA_DIR}/{MAIN_FILE}", f"{DATA_DIR}/{METADATA_FILE}"


def is_dataset(root: Path) -> bool:
    """Whether `root` holds a Kinema dataset (committed, or with a commit to finish)."""
    return (root / mf.MANIFEST_FILE).is_file() or (root / mf.PENDING_FILE).is_file()


def is_pixels(shape: Sequence[int], dtype: np.dtype) -> bool:
    return np.dtype(dtype) == np.uint8 and len(shape) >= 2


class DatasetWriter:
    """Appends episodes to a dataset folder; each `add` is one atomic commit."""

    def __init__(self, root: Path, lock: mf.Lock, metadata: dict[str, Any],
                 made: Sequence[Path] = ()) -> None:
        self.root, self._lock, self._meta = root, lock, metadata
        self._made = list(made)  # what `create` made, removed again if nothing is committed

    @classmethod
    def create(cls, root: Path, *, observation_space: gym.Space, action_space: gym.Space,
               kinema: dict[str, Any], dataset_id: str, algorithm_name: str) -> DatasetWriter:
        """A writer of a new dataset at `root`: a new folder, an empty one, or one holding only
        what an interrupted Kinema writer left (see `check_new_folder`).

        The folder becomes a dataset at the first `add`; a writer closed before one removes
        what it made, so a recording that kept no episode leaves nothing behind.
        """
        root = Path(root)
        check_new_folder(root)
        meta = {
            "dataset_id": dataset_id, "minari_version": MINARI_VERSION, "data_format": "hdf5",
            "jpeg_encoding": False, "algorithm_name": algorithm_name,
            "observation_space": serialize_space(observation_space),
            "action_space": serialize_space(action_space),
            "total_episodes": 0, "total_steps": 0,
            "kinema": dict(kinema, format=FORMAT),
        }
        made = [p for p in (root / DATA_DIR, root, *root.parents) if not p.exists()]
        try:
            (root / DATA_DIR).mkdir(parents=True, exist_ok=True)
            if not (root / mf.LOCK_FILE).exists():
                made.insert(0, root / mf.LOCK_FILE)
        except OSError as e:
            _remove(made)
            raise DatasetError(f"cannot create the dataset folder {root} ({e.strerror or e})"
                               ) from None
        try:
            lock = mf.Lock(root, exclusive=True)
        except BaseException:
            _remove(made)
            raise
        try:
            mf.recover(root)  # what a killed writer left; no writer is live now
            check_new_folder(root)  # another writer may have committed meanwhile
        except BaseException:
            lock.release()
            _remove(made)
            raise
        return cls(root, lock, meta, made)

    @classmethod
    def append(cls, root: Path) -> DatasetWriter:
        """Open an existing dataset to add episodes (finishing a commit a crash interrupted and
        removing the staged copies a killed writer left)."""
        root = Path(root)
        _need_folder(root)
        lock = mf.Lock(root, exclusive=True)
        try:
            mf.recover(root)
            ds = Dataset.open(root)
        except BaseException:
            lock.release()
            raise
        return cls(root, lock, ds.minari_metadata)

    @property
    def metadata(self) -> dict[str, Any]:
        """Our metadata (the "kinema" part of metadata.json)."""
        return self._meta["kinema"]

    @property
    def episodes(self) -> int:
        return int(self._meta["total_episodes"])

    @property
    def steps(self) -> int:
        return int(self._meta["total_steps"])

    def add(self, episodes: Episode | Sequence[Episode]) -> None:
        """Commit one or more complete episodes; a crash meanwhile keeps the previous ones."""
        self._commit([episodes] if isinstance(episodes, Episode) else list(episodes))

    def _commit(self, episodes: list[Episode]) -> None:
        data = self.root / DATA_DIR
        main, meta_path = data / MAIN_FILE, data / METADATA_FILE
        tmp_main, tmp_meta = mf.staged_path(main), mf.staged_path(meta_path)
        obs_space = json.loads(self._meta["observation_space"])
        pixels = obs_space["type"] == "Box" and is_pixels(obs_space["shape"], obs_space["dtype"])
        try:
            if main.exists():
                shutil.copyfile(main, tmp_main)  # copy-on-write, see the module docstring
            with h5py.File(tmp_main, "a", track_order=True) as f:
                for ep in episodes:
                    _write_episode(f, self.episodes, ep, pixels=pixels)
                    self._meta["total_episodes"] += 1
                    self._meta["total_steps"] += ep.steps
            fsync_path(tmp_main)
            fsync_write(tmp_meta, json.dumps(self._meta, indent=1).encode())
            mf.commit(self.root, {MAIN_REL: tmp_main, METADATA_REL: tmp_meta},
                      episodes=self.episodes, steps=self.steps)
        except BaseException:
            if not (self.root / mf.PENDING_FILE).exists():  # past the commit point they are needed
                for p in (tmp_main, tmp_meta):
                    p.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        """Release the lock; a new dataset that never committed an episode is removed."""
        try:
            if self._made and not is_dataset(self.root):
                _remove(self._made)  # the lock file first, while it is still held
        finally:
            self._lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _need_folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file, not a dataset folder")
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")


def _remove(made: Sequence[Path]) -> None:
    """Remove the files and (empty) folders in `made`, in order; what cannot go stays."""
    for p in made:
        with contextlib.suppress(OSError):
            p.rmdir() if p.is_dir() else p.unlink()


def _entries(root: Path) -> list[str]:
    """Every name under `root` (one level) and under root/data, as relative paths."""
    names = [p.name for p in root.iterdir()]
    data = root / DATA_DIR
    if data.is_dir():
        names += [f"{DATA_DIR}/{p.name}" for p in data.iterdir()]
    return sorted(names)


def check_new_folder(root: Path) -> None:
    """Refuse a `root` that cannot become a new dataset, with one line saying why.

    Accepted: a path that does not exist (its parents are made), an empty folder, or a folder
    holding only what an interrupted Kinema writer leaves (the lock file, an empty data/,
    staged and temporary files). Anything else is someone's data: never written over.
    """
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file, not a folder; a dataset is written into a new "
                           "or empty folder")
    if not root.is_dir():
        parent = next(p for p in (*root.parents, Path(".")) if p.exists())
        if not parent.is_dir():
            raise DatasetError(f"cannot create the dataset folder {root}: {parent} is a file")
        return
    if is_dataset(root):
        raise DatasetError(f"{root} already holds a dataset; choose another folder or append "
                           "to it")
    try:
        names = _entries(root)
    except OSError as e:
        raise DatasetError(f"{root} cannot be listed ({e.strerror or e})") from None
    minari = [n for n in (MAIN_REL, METADATA_REL) if n in names]
    if minari:
        raise DatasetError(f"{root} holds {minari[0]} but no {mf.MANIFEST_FILE}: a dataset "
                           "Kinema did not write (Minari's?); it is not written over, choose a "
                           "new or empty folder")
    ours = {mf.LOCK_FILE, DATA_DIR} if (root / DATA_DIR).is_dir() else {mf.LOCK_FILE}
    foreign = [n for n in names if n not in ours and not mf.is_leftover(Path(n).name)]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise DatasetError(f"{root} holds files that are not a Kinema dataset's "
                           f"({', '.join(foreign[:3])}{more}); a dataset is written into a new "
                           "or empty folder")


def _write_episode(f: h5py.File, i: int, ep: Episode, *, pixels: bool) -> None:
    g = f.create_group(f"episode_{i}", track_order=True)
    g.attrs["id"] = i
    g.attrs["total_steps"] = ep.steps
    if ep.seed is not None:
        g.attrs["seed"] = ep.seed
    packed = dict(compression="gzip", compression_opts=4, shuffle=True, chunks=True)
    g.create_dataset("observations", data=ep.observations, **(packed if pixels else {}))
    g.create_dataset("actions", data=ep.actions)
    g.create_dataset("rewards", data=ep.rewards.astype(np.float64))
    g.create_dataset("terminations", data=ep.terminations.astype(bool))
    g.create_dataset("truncations", data=ep.truncations.astype(bool))
    infos = g.create_group("infos")
    if ep.expert_actions is not None:
        infos.create_dataset("expert_actions", data=ep.expert_actions)


class Dataset:
    """A verified dataset folder: every file's SHA-256 is checked before anything is read, and
    every episode's content as it is read (`check` reads them all)."""

    def __init__(self, root: Path, metadata: dict[str, Any], episodes: int) -> None:
        self.root, self.minari_metadata, self._n = root, metadata, episodes
        meta_path = root / METADATA_REL
        self.observation_space = parse_space(metadata, "observation_space", meta_path)
        self.action_space = parse_space(metadata, "action_space", meta_path)

    @classmethod
    def open(cls, root: Path | str) -> Dataset:
        root = Path(root)
        _need_folder(root)
        try:
            lock: mf.Lock | None = mf.Lock(root, exclusive=False)
        except OSError:  # a read-only folder: nothing to roll forward from here anyway
            lock = None
        try:
            if lock is not None and lock.held:  # no writer is live
                mf.recover(root)
            manifest = mf.verify(root)
        finally:
            if lock is not None:
                lock.release()
        meta_path = root / METADATA_REL
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DatasetError(f"{meta_path} cannot be read as JSON ({e})") from None
        kin = meta.get("kinema") if isinstance(meta, dict) else None
        if not isinstance(kin, dict) or kin.get("format") != FORMAT:
            raise DatasetError(f"{meta_path} is not {FORMAT} metadata")
        if not isinstance(kin.get("env"), str) or not isinstance(kin.get("expert", {}), dict):
            raise DatasetError(f"{meta_path} names no env, or its expert is not an object")
        if (meta.get("total_episodes"), meta.get("total_steps")) != (
                manifest["episodes"], manifest["steps"]):
            raise DatasetError(f"{meta_path} counts {meta.get('total_episodes')} episodes and "
                               f"{meta.get('total_steps')} steps; the manifest "
                               f"{manifest['episodes']} and {manifest['steps']}")
        return cls(root, meta, manifest["episodes"])

    @property
    def metadata(self) -> dict[str, Any]:
        """Our metadata: format, env, env_spec, expert, control_dt."""
        return self.minari_metadata["kinema"]

    @property
    def env(self) -> str:
        return str(self.metadata["env"])

    @property
    def total_steps(self) -> int:
        return int(self.minari_metadata["total_steps"])

    def __len__(self) -> int:
        return self._n

    def episodes(self, indices: Sequence[int] | None = None) -> Iterator[Episode]:
        """The episodes, each checked as it is read (`_check_episode`); a fault is one
        DatasetError naming the file, the episode and what is wrong."""
        idx = range(self._n) if indices is None else indices
        path = self.root / MAIN_REL
        spaces = (self.observation_space, self.action_space)
        try:
            f = h5py.File(path, "r")
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path} cannot be read as HDF5 ({_one_line(e)})") from None
        with f:
            for i in idx:
                try:
                    ep = _read_episode(f, i, spaces)
                except (OSError, KeyError, ValueError, RuntimeError, TypeError) as e:
                    fault = str(e) if isinstance(e, DatasetError) else (
                        f"cannot be read ({_one_line(e)})")
                    raise DatasetError(f"{path} episode_{i}: {fault}") from None
                yield ep

    def check(self) -> None:
        """Read every episode as a learner will, before anything depends on them: at least one,
        finite values, lengths that agree, shapes of the dataset's spaces, the manifest's
        step count."""
        if self._n == 0:
            raise DatasetError(f"{self.root} holds no episodes ({mf.MANIFEST_FILE} counts 0); "
                               "record some with kinema collect")
        steps = sum(ep.steps for ep in self.episodes())
        if steps != self.total_steps:
            raise DatasetError(f"{self.root / MAIN_REL} holds {steps} steps in its "
                               f"{self._n} episodes; {mf.MANIFEST_FILE} counts {self.total_steps}")

    def returns(self) -> np.ndarray:
        return np.array([ep.total_return for ep in self.episodes()])

    def transitions(self, max_episodes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(observations [N, *obs_shape], labels [N, ...]) of the steps, for imitation."""
        n = self._n if max_episodes is None else min(max_episodes, self._n)
        eps = list(self.episodes(range(n)))
        if not eps:
            raise DatasetError(f"{self.root} holds no episodes to learn from")
        return (np.concatenate([e.observations[:-1] for e in eps]),
                np.concatenate([e.labels for e in eps]))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


_FIELDS = ("observations", "actions", "rewards", "terminations", "truncations")


def _read_episode(f: h5py.File, i: int, spaces: tuple[dict[str, Any], dict[str, Any]]
                  ) -> Episode:
    g = f.get(f"episode_{i}")
    if not isinstance(g, h5py.Group):
        raise DatasetError("is missing: the manifest counts it, the HDF5 file has no such group")
    missing = [k for k in _FIELDS if not isinstance(g.get(k), h5py.Dataset)]
    if missing:
        raise DatasetError(f"has no {', '.join(missing)} dataset")
    infos = g.get("infos")
    has_labels = isinstance(infos, h5py.Group) and isinstance(infos.get("expert_actions"),
                                                               h5py.Dataset)
    labels = infos["expert_actions"][()] if has_labels else None
    seed = g.attrs.get("seed")
    arrays = {k: g[k][()] for k in _FIELDS}
    scalars = [k for k, v in arrays.items() if np.ndim(v) == 0]
    if scalars:
        raise DatasetError(f"{scalars[0]} is a scalar; [T] rows expected")
    ep = Episode(**arrays, expert_actions=labels, seed=None if seed is None else int(seed))
    check_spaces(ep, *spaces)
    steps = g.attrs.get("total_steps")
    if steps is not None and int(steps) != ep.steps:
        raise DatasetError(f"has {ep.steps} steps; its total_steps attribute says {int(steps)}")
    return ep

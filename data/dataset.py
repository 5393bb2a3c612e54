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
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import numpy as np

from data import manifest as mf
from data.episode import Episode
from data.files import fsync_path, fsync_write
from data.manifest import DatasetError

FORMAT = "kinema-dataset/1"
MINARI_VERSION = "0.5.0"
"""The Minari release whose HDF5 layout we write (read by minari 0.5.0 .. 0.5.4 at least)."""
DATA_DIR, MAIN_FILE, METADATA_FILE = "data", "main_data.hdf5", "metadata.json"
MAIN_REL, METADATA_REL = f"{DATA_DIR}/{MAIN_FILE}", f"{DATA_DIR}/{METADATA_FILE}"


def serialize_space(space: gym.Space) -> str:
    """A space as Minari serializes it (minari/serialization.py), Box and Discrete only."""
    if isinstance(space, gym.spaces.Box):
        d: dict[str, Any] = {"type": "Box", "dtype": str(space.dtype), "shape": list(space.shape),
                             "low": space.low.tolist(), "high": space.high.tolist()}
    elif isinstance(space, gym.spaces.Discrete):
        d = {"type": "Discrete", "dtype": "int64", "start": int(space.start), "n": int(space.n)}
    else:
        raise DatasetError(f"datasets hold Box or Discrete spaces, not {type(space).__name__}")
    return json.dumps(d)  # json writes inf bounds as Infinity, as Minari does


def is_pixels(shape: Sequence[int], dtype: np.dtype) -> bool:
    return np.dtype(dtype) == np.uint8 and len(shape) >= 2


class DatasetWriter:
    """Appends episodes to a dataset folder; each `add` is one atomic commit."""

    def __init__(self, root: Path, lock: mf.Lock, metadata: dict[str, Any]) -> None:
        self.root, self._lock, self._meta = root, lock, metadata

    @classmethod
    def create(cls, root: Path, *, observation_space: gym.Space, action_space: gym.Space,
               kinema: dict[str, Any], dataset_id: str, algorithm_name: str) -> DatasetWriter:
        """A new, empty dataset at `root` (which must not hold one already)."""
        root = Path(root)
        if (root / mf.MANIFEST_FILE).exists() or (root / DATA_DIR / METADATA_FILE).exists():
            raise DatasetError(f"{root} already holds a dataset; choose another folder or append "
                               "to it")
        (root / DATA_DIR).mkdir(parents=True, exist_ok=True)
        lock = mf.Lock(root, exclusive=True)
        meta = {
            "dataset_id": dataset_id, "minari_version": MINARI_VERSION, "data_format": "hdf5",
            "jpeg_encoding": False, "algorithm_name": algorithm_name,
            "observation_space": serialize_space(observation_space),
            "action_space": serialize_space(action_space),
            "total_episodes": 0, "total_steps": 0,
            "kinema": dict(kinema, format=FORMAT),
        }
        w = cls(root, lock, meta)
        w._commit([])
        return w

    @classmethod
    def append(cls, root: Path) -> DatasetWriter:
        """Open an existing dataset to add episodes (finishing a commit a crash interrupted)."""
        root = Path(root)
        lock = mf.Lock(root, exclusive=True) if root.is_dir() else None
        if lock is None:
            raise DatasetError(f"dataset folder {root} does not exist")
        try:
            mf.recover(root, writer=True)
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
        self._lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    """A verified dataset folder: every file's SHA-256 is checked before anything is read."""

    def __init__(self, root: Path, metadata: dict[str, Any], episodes: int) -> None:
        self.root, self.minari_metadata, self._n = root, metadata, episodes

    @classmethod
    def open(cls, root: Path | str) -> Dataset:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"dataset folder {root} does not exist")
        try:
            lock: mf.Lock | None = mf.Lock(root, exclusive=False)
        except OSError:  # a read-only folder: nothing to roll forward from here anyway
            lock = None
        try:
            if lock is not None and lock.held:
                mf.recover(root, writer=False)
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
        idx = range(self._n) if indices is None else indices
        path = self.root / MAIN_REL
        try:
            with h5py.File(path, "r") as f:
                for i in idx:
                    yield _read_episode(f, i)
        except (OSError, KeyError, ValueError) as e:
            if isinstance(e, DatasetError):
                raise
            raise DatasetError(f"{path} cannot be read ({e})") from None

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


def _read_episode(f: h5py.File, i: int) -> Episode:
    g = f[f"episode_{i}"]
    infos = g.get("infos")
    has_labels = infos is not None and "expert_actions" in infos
    labels = infos["expert_actions"][()] if has_labels else None
    seed = g.attrs.get("seed")
    return Episode(
        observations=g["observations"][()], actions=g["actions"][()], rewards=g["rewards"][()],
        terminations=g["terminations"][()], truncations=g["truncations"][()],
        expert_actions=labels, seed=None if seed is None else int(seed),
    )

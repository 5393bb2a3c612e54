"""One recorded episode, as Minari keeps it, a builder that refuses non-finite values, spaces as
Minari serializes them, and the checks of an episode read back against its dataset's spaces."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from data.manifest import DatasetError


@dataclass(frozen=True)
class Episode:
    """T steps of one episode (Minari's episode layout).

    observations has T + 1 rows: the reset observation, then the one after each step, so the
    last row is the final observation. terminations and truncations are kept apart (a time
    limit is not a failure). expert_actions, when present, are the expert's labels of the
    visited observations where they differ from the executed actions (DAgger); learners train
    on them, Minari readers find them in the episode's infos.
    """

    observations: np.ndarray  # [T + 1, *obs_shape]
    actions: np.ndarray  # [T, *act_shape] (float32) or [T] (int64, discrete)
    rewards: np.ndarray  # [T] float64
    terminations: np.ndarray  # [T] bool
    truncations: np.ndarray  # [T] bool
    expert_actions: np.ndarray | None = None  # [T, ...] like actions
    seed: int | None = None

    def __post_init__(self) -> None:
        T = len(self.actions)
        if T < 1:
            raise DatasetError("an episode needs at least one step")
        if len(self.observations) != T + 1:
            raise DatasetError(f"an episode of {T} steps needs {T + 1} observations (reset and "
                               f"one per step), got {len(self.observations)}")
        for name in ("rewards", "terminations", "truncations", "expert_actions"):
            v = getattr(self, name)
            if v is not None and len(v) != T:
                raise DatasetError(f"{name} has {len(v)} rows; an episode of {T} steps needs {T}")
        for name in ("observations", "actions", "rewards", "expert_actions"):
            check_finite(name, getattr(self, name))

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def total_return(self) -> float:
        return float(np.sum(self.rewards))

    @property
    def labels(self) -> np.ndarray:
        """What a learner imitates: the expert's labels where recorded, else the actions."""
        return self.actions if self.expert_actions is None else self.expert_actions


def check_finite(name: str, value: np.ndarray | None, where: str = "") -> None:
    if value is None or value.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(value)
    if bad.any():
        row = int(np.argwhere(bad)[0][0]) if value.ndim else 0
        raise DatasetError(f"{name}{where} row {row} is not finite "
                           f"({np.asarray(value).reshape(len(value), -1)[row].tolist()[:8]}); "
                           "datasets accept finite numbers only")


class EpisodeBuilder:
    """Collects one episode step by step, refusing a non-finite value the moment it arrives."""

    def __init__(self, obs: np.ndarray, *, seed: int | None = None, discrete: bool) -> None:
        check_finite("observation", np.asarray(obs)[None], " at reset,")
        self.seed, self.discrete = seed, discrete
        self._obs = [np.array(obs, copy=True)]
        self._act: list[np.ndarray] = []
        self._label: list[np.ndarray] = []
        self._rew: list[float] = []
        self._term: list[bool] = []
        self._trunc: list[bool] = []

    def __len__(self) -> int:
        return len(self._act)

    def add(self, action: np.ndarray, reward: float, terminated: bool, truncated: bool,
            next_obs: np.ndarray, *, label: np.ndarray | None = None) -> None:
        """One step: the executed action, what followed, and the expert's label if it differs."""
        at = f" at step {len(self._act)},"
        a = np.asarray(action, dtype=np.int64 if self.discrete else np.float32)
        check_finite("action", a[None], at)
        check_finite("reward", np.asarray([reward], dtype=np.float64), at)
        check_finite("observation", np.asarray(next_obs)[None], at)
        if label is not None:
            label = np.asarray(label, dtype=a.dtype)
            check_finite("expert action", label[None], at)
            if not self._label and self._act:  # earlier steps were labelled by their action
                self._label = [x.copy() for x in self._act]
        if label is not None or self._label:
            self._label.append(a.copy() if label is None else label)
        self._act.append(a.copy())
        self._rew.append(float(reward))
        self._term.append(bool(terminated))
        self._trunc.append(bool(truncated))
        self._obs.append(np.array(next_obs, copy=True))

    def truncate_last(self) -> None:
        """Mark the last step as the end by truncation (a person stopped the episode there)."""
        self._trunc[-1] = True

    def build(self) -> Episode:
        return Episode(
            observations=np.stack(self._obs),
            actions=np.stack(self._act),
            rewards=np.asarray(self._rew, dtype=np.float64),
            terminations=np.asarray(self._term, dtype=bool),
            truncations=np.asarray(self._trunc, dtype=bool),
            expert_actions=np.stack(self._label) if self._label else None,
            seed=self.seed,
        )


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


def parse_space(meta: dict[str, Any], key: str, where: Path) -> dict[str, Any]:
    """A space of a dataset's metadata.json (Minari's serialization, Box or Discrete), with
    shape as a tuple, checked enough to check episodes against."""
    try:
        d = dict(json.loads(meta[key]))
        if d["type"] == "Box":
            d["shape"] = tuple(int(n) for n in d["shape"])
            np.dtype(d["dtype"])
        elif d["type"] == "Discrete":
            d["start"], d["n"] = int(d.get("start", 0)), int(d["n"])
        else:
            raise ValueError(f"type {d['type']!r} is neither Box nor Discrete")
        return d
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{where} has no readable {key} ({e})") from None


def check_spaces(ep: Episode, obs: dict[str, Any], act: dict[str, Any]) -> None:
    """The episode's shapes and kinds against its dataset's spaces (`parse_space`)."""
    for name in ("observations", "actions", "rewards", "terminations", "truncations",
                 "expert_actions"):
        v = getattr(ep, name)
        if v is not None and v.dtype.kind not in "fiub":
            raise DatasetError(f"{name} hold {v.dtype} values; numbers expected")
    if obs["type"] == "Box" and ep.observations.shape[1:] != obs["shape"]:
        raise DatasetError(f"observations have shape {list(ep.observations.shape[1:])}; the "
                           f"observation space {list(obs['shape'])}")
    for name in ("actions", "expert_actions"):
        a = getattr(ep, name)
        if a is None:
            continue
        if act["type"] == "Discrete":
            lo, n = act["start"], act["n"]
            if a.ndim != 1 or a.dtype.kind not in "iu" or ((a < lo) | (a >= lo + n)).any():
                raise DatasetError(f"{name} are not integers in [{lo}, {lo + n}) of shape [T]")
        elif a.shape[1:] != act["shape"] or a.dtype.kind != "f":
            raise DatasetError(f"{name} have shape {list(a.shape[1:])} ({a.dtype}); the action "
                               f"space {list(act['shape'])} (float)")
    for name in ("rewards", "terminations", "truncations"):
        if getattr(ep, name).ndim != 1:
            raise DatasetError(f"{name} have shape {list(getattr(ep, name).shape)}; [T] expected")

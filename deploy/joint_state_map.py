"""How a `sensor_msgs/JointState` becomes the policy's observation vector, and back.

A bundle's contract may carry a `joint_state_map`: one entry per observation element, in
contract order, naming the joint, the JointState field (`position`, `velocity` or `effort`) and
a transform (`identity`, `cos` or `sin`; pendulum-like policies observe cos and sin of an angle).
Robots often publish joints in several JointState messages (arm and gripper apart), so
`JointStateAssembler` keeps the latest value of each mapped element and reports the oldest
receive time among them: one dead publisher makes the whole observation stale, which the
safety layer's watchdog then catches. numpy only: the runtime and the ROS node load this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FIELDS = ("position", "velocity", "effort")
TRANSFORMS = ("identity", "cos", "sin")
_KEYS = ("joint", "field", "transform")


class JointStateMapError(ValueError):
    """A joint_state_map that does not describe the observation exactly."""


@dataclass(frozen=True)
class JointField:
    """Observation element = transform(JointState.<field>[index of joint])."""

    joint: str
    field: str
    transform: str = "identity"

    def __post_init__(self) -> None:
        if not isinstance(self.joint, str) or not self.joint:
            raise JointStateMapError(f"joint {self.joint!r} must be a non-empty joint name")
        if self.field not in FIELDS:
            raise JointStateMapError(f"field {self.field!r} is not one of {', '.join(FIELDS)}")
        if self.transform not in TRANSFORMS:
            raise JointStateMapError(
                f"transform {self.transform!r} is not one of {', '.join(TRANSFORMS)}"
            )


def parse_joint_state_map(data: Any, obs_dim: int) -> tuple[JointField, ...]:
    """Validate JSON (a list of {"joint", "field", "transform"?} objects) against `obs_dim`.

    Strict on purpose: an unknown key is most likely a typo ("feild"), and a typo here would
    feed the policy the wrong joint, so nothing is guessed.
    """
    if not isinstance(data, (list, tuple)):
        raise JointStateMapError(f"must be a list of {obs_dim} entries, found "
                                 f"{type(data).__name__}")
    if len(data) != obs_dim:
        raise JointStateMapError(f"has {len(data)} entries; the observation has {obs_dim}")
    fields: list[JointField] = []
    for i, entry in enumerate(data):
        if isinstance(entry, JointField):
            fields.append(entry)
            continue
        if not isinstance(entry, dict):
            raise JointStateMapError(f"entry {i} is {entry!r}; expected an object with keys "
                                     f"{', '.join(_KEYS)}")
        unknown = sorted(set(entry) - set(_KEYS))
        if unknown:
            raise JointStateMapError(f"entry {i} has unknown key(s) {unknown}; allowed: "
                                     f"{', '.join(_KEYS)}")
        missing = [k for k in ("joint", "field") if k not in entry]
        if missing:
            raise JointStateMapError(f"entry {i} is missing {', '.join(missing)}")
        try:
            fields.append(JointField(entry["joint"], entry["field"],
                                     entry.get("transform", "identity")))
        except JointStateMapError as e:
            raise JointStateMapError(f"entry {i}: {e}") from None
    seen: set[JointField] = set()
    for i, f in enumerate(fields):
        if f in seen:
            raise JointStateMapError(f"entry {i} repeats {f.joint}.{f.field} ({f.transform})")
        seen.add(f)
    return tuple(fields)


def joint_state_map_to_json(fields: Sequence[JointField]) -> list[dict[str, str]]:
    return [{"joint": f.joint, "field": f.field, "transform": f.transform} for f in fields]


class JointStateAssembler:
    """Builds observation vectors from (possibly partial) JointState messages."""

    def __init__(self, fields: Sequence[JointField]) -> None:
        self.fields = tuple(fields)
        n = len(self.fields)
        self._raw = np.zeros(n, np.float64)  # untransformed field values, contract order
        self._stamp = np.full(n, -math.inf)  # receive time of each element; -inf: never seen
        self._by_joint: dict[str, list[tuple[int, str]]] = {}
        for i, f in enumerate(self.fields):
            self._by_joint.setdefault(f.joint, []).append((i, f.field))
        self._cos = np.array([f.transform == "cos" for f in self.fields])
        self._sin = np.array([f.transform == "sin" for f in self.fields])

    def update(
        self,
        names: Sequence[str],
        arrays: dict[str, Sequence[float]],
        stamp: float,
    ) -> None:
        """Fold one message in: `arrays` maps field -> values aligned with `names`.

        A field array shorter than `names` (JointState allows empty ones) leaves those
        elements untouched.
        """
        for j, name in enumerate(names):
            for i, field in self._by_joint.get(name, ()):
                values = arrays.get(field, ())
                if j < len(values):
                    self._raw[i] = values[j]
                    self._stamp[i] = stamp

    @property
    def complete(self) -> bool:
        """True once every mapped element has been received at least once."""
        return bool(np.all(np.isfinite(self._stamp)))

    def missing(self) -> list[str]:
        return [f"{f.joint}.{f.field}" for f, s in zip(self.fields, self._stamp, strict=True)
                if not np.isfinite(s)]

    def observation(self) -> tuple[np.ndarray, float]:
        """(obs [obs_dim] float32, oldest receive time among its elements)."""
        x = np.where(self._cos, np.cos(self._raw), self._raw)
        x = np.where(self._sin, np.sin(self._raw), x)
        return x.astype(np.float32), float(self._stamp.min())


def joint_state_from_obs(
    fields: Sequence[JointField], obs: np.ndarray
) -> tuple[list[str], dict[str, list[float]]]:
    """The inverse map, for a simulator that plays the robot: (names, field -> values).

    A position observed as cos and sin comes back as atan2(sin, cos). Fields no entry maps
    are left empty, as JointState allows; a field mapped for some joints only is NaN for the
    others (not measured). Raises when an element cannot be recovered (cos without sin).
    """
    obs = np.asarray(obs, np.float64).reshape(-1)
    if obs.shape[0] != len(fields):
        raise JointStateMapError(f"observation has {obs.shape[0]} values; the map has "
                                 f"{len(fields)}")
    names: list[str] = []
    for f in fields:
        if f.joint not in names:
            names.append(f.joint)
    values: dict[tuple[str, str], float] = {}
    by_key: dict[tuple[str, str], dict[str, float]] = {}
    for f, x in zip(fields, obs, strict=True):
        by_key.setdefault((f.joint, f.field), {})[f.transform] = float(x)
    for key, parts in by_key.items():
        if "identity" in parts:
            values[key] = parts["identity"]
        elif "cos" in parts and "sin" in parts:
            values[key] = math.atan2(parts["sin"], parts["cos"])
        else:
            raise JointStateMapError(f"{key[0]}.{key[1]} is observed only as "
                                     f"{' and '.join(parts)}; it cannot be recovered")
    used = {field for _, field in values}
    arrays = {field: [values.get((n, field), math.nan) for n in names] if field in used else []
              for field in FIELDS}
    return names, arrays

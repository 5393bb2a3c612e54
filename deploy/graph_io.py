"""The stateful part of a bundle's contract: carried state (`StateIO`) and runtime-drawn noise
(`NoiseInput`), parsed from contract.json or from a module's `graph_io` at export, and checked
(deploy.contract's docstring describes how the runtime uses them). No torch here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploy.contract_fields import BundleError, coerce, is_kind


@dataclass(frozen=True)
class StateIO:
    """Graph input `input` and output `output`, both float32 `shape`: the output of one call
    is the input of the next, and `initial` (filled) at an episode start."""

    input: str
    output: str
    shape: tuple[int, ...]
    initial: float = 0.0

    def __post_init__(self) -> None:
        _check_tensor(self, (self.input, self.output), self.shape, f"state {self.input!r}")
        if not is_kind(self.initial, float):
            raise BundleError(f"state {self.input!r} initial is {self.initial!r}; expected a "
                              "finite number")
        object.__setattr__(self, "initial", float(self.initial))


@dataclass(frozen=True)
class NoiseInput:
    """Graph input `name`, float32 `shape`, standard normal drawn by the runtime each call."""

    name: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_tensor(self, (self.name,), self.shape, f"noise {self.name!r}")


def _check_tensor(io: StateIO | NoiseInput, names: tuple[str, ...], shape: Any, what: str) -> None:
    if not all(isinstance(n, str) and n for n in names):
        raise BundleError(f"{what} needs non-empty string names, found {list(names)}")
    if not isinstance(shape, (list, tuple)) or not shape or not all(
            is_kind(d, int) and d >= 1 for d in shape):
        shown = list(shape) if isinstance(shape, (list, tuple)) else repr(shape)
        raise BundleError(f"{what} has shape {shown}; expected a list of one or more "
                          "positive integers")
    object.__setattr__(io, "shape", tuple(shape))


_STATE_KEYS: dict[str, Any] = {"input": str, "output": str, "shape": (int,), "initial": float}
_NOISE_KEYS: dict[str, Any] = {"name": str, "shape": (int,)}


def parse_graph_io(data: dict[str, Any], *, where: str) -> dict[str, Any]:
    """The `state`, `noise` and `noise_seed` entries of `data` (contract.json, or a module's
    `graph_io` at export) as Contract keyword arguments; absent keys are left out."""
    out: dict[str, Any] = {}
    for key, cls, keys in (("state", StateIO, _STATE_KEYS), ("noise", NoiseInput, _NOISE_KEYS)):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise BundleError(f"{where} field {key!r} is {value!r}; expected a list of objects")
        out[key] = tuple(_graph_tensor(v, cls, keys, f"{where} field {key!r}[{i}]")
                         for i, v in enumerate(value))
    if data.get("noise_seed") is not None:
        out["noise_seed"] = coerce(data["noise_seed"], int, False, f"{where} field 'noise_seed'")
    return out


def _graph_tensor(value: Any, cls: Any, keys: dict[str, Any], what: str) -> Any:
    if not isinstance(value, dict):
        raise BundleError(f"{what} is {value!r}; expected an object with {', '.join(keys)}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise BundleError(f"{what} has unknown key(s) {unknown}; allowed: {', '.join(keys)}")
    missing = [k for k in keys if k not in value and k != "initial"]  # initial defaults to 0
    if missing:
        raise BundleError(f"{what} is missing {missing[0]!r}")
    kwargs = {k: coerce(v, keys[k], False, f"{what}[{k!r}]") for k, v in value.items()}
    try:
        return cls(**kwargs)
    except BundleError as e:
        raise BundleError(f"{what}: {e}") from None


def check_graph_io(
    state: tuple[StateIO, ...], noise: tuple[NoiseInput, ...], noise_seed: int
) -> None:
    """State and noise entries are what they say, their graph names all differ (and differ
    from obs and action), and the seed is one numpy's PCG64 accepts. Export checks a module's
    graph_io with this before it exports anything."""
    for field, entries, kind in (("state", state, StateIO), ("noise", noise, NoiseInput)):
        if not isinstance(entries, tuple) or not all(isinstance(e, kind) for e in entries):
            raise BundleError(f"{field} must be a tuple of {kind.__name__}, found {entries!r}")
    if not is_kind(noise_seed, int) or noise_seed < 0:
        raise BundleError(f"noise_seed is {noise_seed!r}; expected an integer >= 0")
    if noise_seed and not noise:
        raise BundleError(f"noise_seed is {noise_seed} but there are no noise inputs; drop it "
                          "or declare noise")
    names = ["obs", "action"]
    for name in [n for s in state for n in (s.input, s.output)] + [n.name for n in noise]:
        if name in names:
            raise BundleError(f"graph name {name!r} is used twice in state/noise (or is "
                              "'obs'/'action'); every graph input and output needs its own name")
        names.append(name)

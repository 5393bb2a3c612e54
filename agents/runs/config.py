"""The options of a training run, declared once: the CLI's flags, help and resume rules come
from these fields (kinema/train.py), and configs round-trip through config.json here."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import torch

MAX_STEPS = 10**12
"""The largest env-step budget `kinema train` accepts: weeks of training even at a million
steps per second, so a larger number is a typo (or `1e23`), not a plan."""
MAX_SEED = 2**32 - 1
"""Seeds are integers in [0, MAX_SEED], what every simulator backend and numpy accept."""
MAX_THREADS = 1024
"""More torch threads than any machine here has cores (a larger count aborts inside OpenMP)."""
MAX_DEFAULT_EVAL_EVERY = 100_000
"""The default evaluation (and checkpoint) interval is steps / 20, but at most this many steps."""


def option(*, resume: bool = False, positive: bool = False,
           metavar: str | None = None) -> dict[str, Any]:
    """Field metadata of a TrainConfig option.

    resume: the option may change when a run is resumed (MUTABLE_ON_RESUME);
    positive: an integer that must be >= 1 (checked here and by the `kinema train` flag);
    metavar: the value's name in `kinema train --help` (the docstring refers to it).
    """
    meta = {"resume": resume, "positive": positive, "metavar": metavar}
    return {k: v for k, v in meta.items() if v}


RESUME = option(resume=True)
"""Field metadata: this option may change when a run is resumed."""


@dataclass(frozen=True)
class TrainConfig:
    """Options of a training run that are not the algorithm's hyperparameters."""

    algo: str
    """Algorithm name (kinema train --help lists them)."""
    env: str
    """Environment name (kinema envs lists them)."""
    steps: int | None = field(default=None, metadata=option(resume=True, positive=True))
    """Env-step budget, at most 10^12 (default: the algorithm's preset for the env)."""
    seed: int = 0
    """Seed of the networks, the sampling and the training envs (env i gets seed + i); an
    integer in [0, 2^32 - 1]."""
    device: str = field(default="auto", metadata=RESUME)
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    eval_every: int | None = field(default=None,
                                  metadata=option(resume=True, positive=True, metavar="N"))
    """Evaluate (and checkpoint) every N env steps (default: steps / 20, at most 100000)."""
    eval_episodes: int = field(default=10, metadata=option(resume=True, positive=True, metavar="K"))
    """Deterministic evaluation episodes, seeds 10000.. 10000+K-1."""
    target_return: float | None = field(default=None, metadata=option(resume=True, metavar="R"))
    """Stop at the first evaluation whose mean return reaches R."""
    checkpoint_every: int = field(default=0, metadata=option(resume=True, metavar="N"))
    """Checkpoint every N env steps (0: at each evaluation and at the end); a run also
    checkpoints after 10 minutes of wall time without one, so it can always be resumed."""
    keep_checkpoints: int = field(default=3, metadata=option(resume=True, metavar="N"))
    """Checkpoints kept in RUN/checkpoints: the newest N, older ones are deleted (0: keep all)."""
    threads: int = field(default=1, metadata=option(resume=True, positive=True))
    """torch CPU threads, at most 1024; 1 is fastest for small networks on few cores (see
    BENCHMARKS.md)."""
    runs_dir: str = field(default="runs", metadata=RESUME)
    """Folder that holds run directories."""
    learned_reward: str = ""
    """A gail, airl or gcl run whose learned reward (RUN/reward/) replaces the env's reward in the
    training envs; evaluation still reports the env's return ("": the env's reward)."""
    dynamics: str = field(default="", metadata=option(metavar="PARAM=SCALE,..."))
    """Changed physics for training and evaluation: each PARAM (mass, friction, damping or
    gain, as the env exposes them) multiplied by SCALE > 0, e.g. mass=1.3 for a robot 1.3x as
    heavy (sim.sim2real.DomainRandomization with a fixed factor; "": the env as registered)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.metadata.get("positive") and v is not None:
                require(_is_int(v) and v >= 1, _flag(f.name), v, "a positive integer")
        for name in ("algo", "env", "device", "runs_dir"):
            v = getattr(self, name)
            require(isinstance(v, str) and bool(v), _flag(name), v, "a non-empty string")
        require(self.steps is None or self.steps <= MAX_STEPS, "--steps", self.steps,
                f"at most {MAX_STEPS} (10^12 env steps)")
        require(_is_int(self.seed) and 0 <= self.seed <= MAX_SEED, "--seed", self.seed,
                f"an integer in [0, {MAX_SEED}]")
        require(self.threads <= MAX_THREADS, "--threads", self.threads, f"at most {MAX_THREADS}")
        for name in ("checkpoint_every", "keep_checkpoints"):
            v = getattr(self, name)
            require(_is_int(v) and v >= 0, _flag(name), v, "an integer >= 0")
        require(self.target_return is None or _is_finite(self.target_return),
                "--target-return", self.target_return, "a finite number")
        resolve_device(self.device)
        dynamics_scales(self.dynamics)


def dynamics_scales(text: str) -> dict[str, float]:
    """{param: scale} of a --dynamics value such as "mass=1.3,damping=0.8" ({} for "")."""
    from sim.physics import PARAMETERS

    accepted = (f"PARAM=SCALE pairs separated by commas, PARAM one of {', '.join(PARAMETERS)} "
                "and SCALE a number > 0 (e.g. mass=1.3)")
    require(isinstance(text, str), "--dynamics", text, accepted)
    scales: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = pair.partition("=")
        try:
            scale = float(value)
        except ValueError:
            scale = math.nan
        require(name.strip() in PARAMETERS and name.strip() not in scales and math.isfinite(scale)
                and scale > 0, "--dynamics", text, accepted)
        scales[name.strip()] = scale
    return scales


def env_options(dynamics: str) -> dict[str, Any]:
    """The sim.make options of a --dynamics value: domain randomization over the one-point
    ranges [scale, scale], so every episode has the same changed physics."""
    scales = dynamics_scales(dynamics)
    return {"domain_randomization": {k: (v, v) for k, v in scales.items()}} if scales else {}


def default_eval_every(steps: int) -> int:
    """The evaluation interval when --eval-every is not given: steps / 20, at most 100000."""
    return max(1, min(steps // 20, MAX_DEFAULT_EVAL_EVERY))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


MUTABLE_ON_RESUME = frozenset(f.name for f in dataclasses.fields(TrainConfig)
                              if f.metadata.get("resume"))
"""Options `kinema train --resume RUN` may change; any other difference is refused."""


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else must be a device torch accepts here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r} asked for CUDA, but torch sees no CUDA device here; "
                         "use auto or cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def require(ok: bool, what: str, value: object, accepted: str) -> None:
    """Refuse a config value in one line that names it and what is accepted."""
    if not ok:
        raise ValueError(f"{what} must be {accepted}, got {value!r}")


def require_positive(cfg: object, *names: str, prefix: str = "") -> None:
    """Each named field of `cfg` must be an integer >= 1."""
    for name in names:
        v = getattr(cfg, name)
        require(_is_int(v) and v >= 1, f"{prefix}{name}", v, "an integer >= 1")


def require_number(cfg: object, *names: str, low: float = -math.inf, high: float = math.inf,
                   low_open: bool = False, high_open: bool = False, optional: bool = False
                   ) -> None:
    """Each named field of `cfg` must be a finite number in the interval from `low` to `high`
    (open at an end with `low_open`/`high_open`); `optional`: None is accepted too.

    NaN and infinities are refused whatever the bounds: no hyperparameter means anything there.
    """
    lo = "" if low == -math.inf else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high == math.inf else f"{'<' if high_open else '<='} {high:g}"
    if lo and hi:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        accepted = f"a number in {left}{low:g}, {high:g}{right}"
    else:
        accepted = f"a finite number {lo or hi}".rstrip()
    if optional:
        accepted += " or None"
    for name in names:
        v = getattr(cfg, name)
        if v is None and optional:
            continue
        ok = _is_finite(v) and (v > low if low_open else v >= low) and (
            v < high if high_open else v <= high)
        require(ok, name, v, accepted)


def require_sizes(cfg: object, name: str, *, allow_empty: bool = True) -> None:
    """A tuple of layer sizes: every entry an integer >= 1 (and at least one unless
    `allow_empty`)."""
    v = getattr(cfg, name)
    ok = isinstance(v, tuple | list) and all(_is_int(h) and h >= 1 for h in v)
    accepted = "layer sizes that are integers >= 1"
    if not allow_empty:
        ok = ok and len(v) >= 1
        accepted = "one or more " + accepted
    require(ok, name, v, accepted)


def available_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on `device`, or None when that is not known here.

    CUDA: the driver's free memory. CPU: MemAvailable of /proc/meminfo (what can be allocated
    without swapping, page cache included), less by a cgroup limit (a container's), else the
    free pages os.sysconf reports.
    """
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    free = _meminfo_available()
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    limit = _cgroup_room()
    return free if limit is None else min(free, limit)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), when it has a limit."""
    try:
        limit = open("/sys/fs/cgroup/memory.max", encoding="ascii").read().strip()
        if limit == "max":
            return None
        used = open("/sys/fs/cgroup/memory.current", encoding="ascii").read().strip()
        return max(0, int(limit) - int(used))
    except (OSError, ValueError):
        return None


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    i = 0
    while abs(n) >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a frozen config dataclass from its JSON form (lists back to tuples).

    Values are checked as `typed_fields` does, then by the dataclass's own checks; either fault
    is a ValueError naming the field and what it accepts.
    """
    kwargs = typed_fields(cls, data)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a check that compares a value of a type it did not expect
        raise ValueError(" ".join(str(e).split())) from None


def typed_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of `cls` from their JSON form: every value must have its field's type (a JSON
    integer is accepted for a float field; lists become tuples), every field without a default
    must be there, and no other key may be; else a ValueError names the first fault."""
    if not isinstance(data, dict):
        raise ValueError(f"expected an object of {cls.__name__} fields, got {_json_name(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(fields)}"
        )
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"the {cls.__name__} field {missing[0]!r} is missing")
    hints = typing.get_type_hints(cls)
    return {k: _typed(k, v, hints[k]) for k, v in data.items()}


_NO = object()


def _typed(name: str, v: Any, tp: Any) -> Any:
    """`v` as field type `tp`, or ValueError naming the field and the type."""
    options = typing.get_args(tp) if _is_union(tp) else (tp,)
    if v is None and type(None) in options:
        return None
    for t in options:
        if t is not type(None) and (out := _as(v, t)) is not _NO:
            return out
    raise ValueError(f"{name} is {_shown(v)}, expected {_describe(tp)}")


def _as(v: Any, t: Any) -> Any:
    if t is bool:
        return v if isinstance(v, bool) else _NO
    if t is int:
        return v if _is_int(v) else _NO
    if t is float:
        if not isinstance(v, int | float) or isinstance(v, bool):
            return _NO
        try:
            return float(v)
        except OverflowError:
            return _NO
    if t is str:
        return v if isinstance(v, str) else _NO
    if typing.get_origin(t) is tuple:
        return _as_tuple(v, typing.get_args(t))
    return v  # a type JSON has no form for: the dataclass checks it


def _as_tuple(v: Any, args: tuple[Any, ...]) -> Any:
    if not isinstance(v, list | tuple):
        return _NO
    if len(args) == 2 and args[1] is Ellipsis:
        items = [_as(x, args[0]) for x in v]
    elif len(args) == len(v):
        items = [_as(x, a) for x, a in zip(v, args, strict=True)]
    else:
        return _NO
    return _NO if any(i is _NO for i in items) else tuple(items)


def _is_union(tp: Any) -> bool:
    return isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union


def _describe(tp: Any) -> str:
    if _is_union(tp):
        return " or ".join(_describe(t) for t in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        item = _describe(typing.get_args(tp)[0])
        return f"a list of {item.removeprefix('an ').removeprefix('a ')}s"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             type(None): "null"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _json_name(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(v), "a number")


def _shown(v: Any) -> str:
    text = "null" if v is None else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def config_difference(
    saved: dict[str, Any], asked: dict[str, Any], allowed: frozenset[str]
) -> list[str]:
    """'field: saved -> asked' for every field that differs and may not change."""
    return [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in asked.items()
            if k not in allowed and _jsonish(saved.get(k)) != _jsonish(v)]


def _jsonish(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v

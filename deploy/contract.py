"""The contract of an export bundle: what `policy.onnx` expects, returns and was checked against.

A bundle is a folder with `policy.onnx` and `contract.json`. The contract is what a robot
computer trusts before it sends a single command, so loading it is strict: every field is
type-checked, the bounds must be consistent, and the SHA-256 of `policy.onnx` must match, so a
stale or tampered graph never runs. Each failure is a `BundleError` whose message is one
sentence naming the file or field and what was expected. No torch here: the runtime loads this.

Stateful bundles. A feed-forward graph maps obs [batch, obs_dim] to action [batch, act_dim] and
its contract has no `state` or `noise`. A graph that carries something from one call to the
next (an MPC planner's warm-start plan, a recurrent policy's hidden state) declares it in
`state`: each `StateIO` names a graph input and the graph output of the same `shape` that the
runtime feeds back as the next call's input, refilled with `initial` at every episode start. A
graph that samples (a CEM planner) takes its randomness as `noise` inputs instead of drawing it
inside: before every call the runtime fills each, in declaration order, with
`Generator(PCG64(noise_seed)).standard_normal(shape, dtype=float32)`, one generator per loaded
policy and never reseeded (a reset leaves it running), so the same seed, observations and
episode starts give the same actions, and export compares torch and onnxruntime on the same
noise. Such a graph runs one observation at a time:
obs [1, obs_dim] and action [1, act_dim], state and noise exactly their declared shapes. A
contract.json without these fields is a feed-forward bundle, as every bundle before them was.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from data.files import kinema_version, sha256_bytes, write_atomic
from deploy.contract_fields import BundleError, coerce
from deploy.graph_io import NoiseInput, StateIO, check_graph_io, parse_graph_io
from deploy.joint_state_map import (
    JointField,
    JointStateMapError,
    joint_state_map_to_json,
    parse_joint_state_map,
)

FORMAT_VERSION = 1
POLICY_FILE = "policy.onnx"
CONTRACT_FILE = "contract.json"
FILE_MODE = 0o644
"""Bundle files are readable by every user whatever the umask: a robot's runtime user (a ROS
node) reads what another user exported."""


QUANT_SCHEMES = ("int8-dynamic",)
QUANT_METRICS = ("max_abs_error_over_range", "action_mismatch_rate")


@dataclass(frozen=True)
class Quantization:
    """How policy.onnx was quantized and what that cost, measured at export.

    `error` is `metric` of the shipped (quantized) graph against the torch policy over
    `samples` observations: for a continuous policy the largest |difference| divided by the
    action range (high - low), for a discrete one the fraction of observations whose action
    index differs. Export refused the graph if `error` exceeded `bound`.
    """

    scheme: str
    metric: str
    error: float
    bound: float
    max_abs_error: float
    """Largest |quantized - torch| in the robot's units (action indices for discrete)."""
    samples: int
    float_p50_us: float
    """onnxruntime latency of the float graph, one observation, one thread."""
    quantized_p50_us: float

    def __post_init__(self) -> None:
        if self.scheme not in QUANT_SCHEMES:
            raise BundleError(f"quantization scheme {self.scheme!r} is not one of "
                              f"{', '.join(QUANT_SCHEMES)}")
        if self.metric not in QUANT_METRICS:
            raise BundleError(f"quantization metric {self.metric!r} is not one of "
                              f"{', '.join(QUANT_METRICS)}")
        if not (0 <= self.error <= self.bound) or self.max_abs_error < 0 or self.samples < 1:
            raise BundleError(f"quantization error {self.error} must be within [0, bound "
                              f"{self.bound}], max_abs_error >= 0 and samples >= 1")
        if not (self.float_p50_us > 0 and self.quantized_p50_us > 0):
            raise BundleError("quantization latencies must be positive microseconds")


@dataclass(frozen=True)
class Contract:
    """Everything a runner must know about a bundle's policy, in the robot's units."""

    env: str
    obs_names: tuple[str, ...]
    obs_dim: int
    action_names: tuple[str, ...]
    act_dim: int
    discrete: bool
    n_actions: int | None
    action_low: tuple[float, ...]
    """Lower bounds in the robot's units; for a discrete policy, 0 (the first index)."""
    action_high: tuple[float, ...]
    """Upper bounds in the robot's units; for a discrete policy, n_actions - 1."""
    rate_hz: float
    """Control rate the policy was trained at (1 / env dt)."""
    safe_action: tuple[float, ...]
    """What a latched stop sends, in the robot's units."""
    source_run: str | None
    policy_sha256: str
    opset: int
    parity_max_abs_error: float
    """Largest |torch - onnxruntime| measured over `parity_samples` observations at export."""
    parity_samples: int
    joint_state_map: tuple[JointField, ...] | None = None
    """How a sensor_msgs/JointState fills the observation (one entry per element, contract
    order); None: the bundle takes only flat observation arrays. Optional in contract.json."""
    quantization: Quantization | None = None
    """Set when policy.onnx is a quantized graph; `parity_max_abs_error` then describes the
    float graph export checked, and `quantization.error` the shipped one. Optional."""
    state: tuple[StateIO, ...] = ()
    """Carried graph inputs/outputs (module docstring); empty for a feed-forward graph."""
    noise: tuple[NoiseInput, ...] = ()
    """Standard normal graph inputs the runtime draws before every call, in this order."""
    noise_seed: int = 0
    """Seed of the runtime's noise generator, np.random.PCG64(noise_seed)."""
    obs_shape: tuple[int, ...] | None = None
    """The observation's own shape when it is not flat: camera frames (a `-pixels` env's
    stacked uint8 RGB frames [H, W, 3k], values 0..255). The graph, the safety layer and the
    runtime still take it flattened in C order, [obs_dim] with obs_dim = prod(obs_shape), and
    `obs_names` may then be empty. None: a flat observation [obs_dim]. Optional in
    contract.json."""
    created: str = dataclasses.field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    kinema_version: str = dataclasses.field(default_factory=lambda: kinema_version())
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        _check_consistent(self)

    @property
    def stateful(self) -> bool:
        """The graph takes state or noise besides obs, one observation per call (batch 1)."""
        return bool(self.state or self.noise)

    # ---------------------------------------------------------------- (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.joint_state_map is not None:
            d["joint_state_map"] = joint_state_map_to_json(self.joint_state_map)
        if self.stateful:
            d["state"] = [{**s, "shape": list(s["shape"])} for s in d["state"]]
            d["noise"] = [{**n, "shape": list(n["shape"])} for n in d["noise"]]
        else:  # a feed-forward contract.json is exactly what it was before stateful bundles
            del d["state"], d["noise"], d["noise_seed"]
        if self.obs_shape is None:  # and a flat one before image observations
            del d["obs_shape"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = CONTRACT_FILE) -> Contract:
        """Build from parsed JSON, refusing missing fields and wrong types with one sentence."""
        if not isinstance(data, dict):
            raise BundleError(f"{where} must hold a JSON object, found {type(data).__name__}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise BundleError(
                f"{where} has format_version {version!r}; this Kinema reads format_version "
                f"{FORMAT_VERSION}"
            )
        kwargs: dict[str, Any] = {}
        for name, (kind, nullable) in _SCHEMA.items():
            if name not in data:
                raise BundleError(f"{where} is missing the required field {name!r}")
            kwargs[name] = coerce(data[name], kind, nullable, f"{where} field {name!r}")
        # Optional fields, added after format 1 shipped: absent means None, so older bundles
        # still load; present means checked as strictly as the rest.
        obs_dim = kwargs["obs_dim"]
        if data.get("joint_state_map") is not None:
            try:
                kwargs["joint_state_map"] = parse_joint_state_map(data["joint_state_map"], obs_dim)
            except JointStateMapError as e:
                raise BundleError(f"{where} field 'joint_state_map' {e}") from None
        if data.get("quantization") is not None:
            kwargs["quantization"] = _quantization(data["quantization"],
                                                   f"{where} field 'quantization'")
        if data.get("obs_shape") is not None:
            kwargs["obs_shape"] = coerce(data["obs_shape"], (int,), False,
                                         f"{where} field 'obs_shape'")
        kwargs.update(parse_graph_io(data, where=where))
        try:
            return cls(**kwargs)
        except BundleError as e:
            raise BundleError(f"{where}: {e}") from None

    def save(self, bundle_dir: str | os.PathLike[str]) -> Path:
        """Write contract.json atomically (data.files.write_atomic: temp file, fsync, rename)."""
        path = Path(bundle_dir) / CONTRACT_FILE
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        write_atomic(path, text.encode(), mode=FILE_MODE)
        return path

    @classmethod
    def load(cls, bundle_dir: str | os.PathLike[str], *, check_hash: bool = True) -> Contract:
        """Read and validate a bundle's contract; with `check_hash`, verify policy.onnx too."""
        bundle = Path(bundle_dir)
        if not bundle.is_dir():
            raise BundleError(f"bundle folder {str(bundle)!r} does not exist or is not a folder")
        path = bundle / CONTRACT_FILE
        if not path.is_file():
            raise BundleError(f"{str(path)!r} is missing; a bundle needs {CONTRACT_FILE}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BundleError(f"{str(path)!r} is not valid JSON ({e})") from None
        contract = cls.from_dict(data, where=str(path))
        if check_hash:
            contract.verify_policy(bundle)
        return contract

    def verify_policy(self, bundle_dir: str | os.PathLike[str]) -> bytes:
        """Return policy.onnx's bytes after checking them against `policy_sha256`.

        Returning the checked bytes lets a loader build its session from exactly what was
        hashed, instead of re-reading a file that could change in between.
        """
        path = Path(bundle_dir) / POLICY_FILE
        if not path.is_file():
            raise BundleError(f"{str(path)!r} is missing; a bundle needs {POLICY_FILE}")
        blob = path.read_bytes()
        digest = sha256_bytes(blob)
        if digest != self.policy_sha256:
            raise BundleError(
                f"{str(path)!r} has sha256 {digest}, but {CONTRACT_FILE} expects "
                f"{self.policy_sha256}; the graph was changed after export, export it again"
            )
        return blob


# Field name -> (type, nullable). Tuples hold the element type.
_SCHEMA: dict[str, tuple[Any, bool]] = {
    "env": (str, False),
    "obs_names": ((str,), False),
    "obs_dim": (int, False),
    "action_names": ((str,), False),
    "act_dim": (int, False),
    "discrete": (bool, False),
    "n_actions": (int, True),
    "action_low": ((float,), False),
    "action_high": ((float,), False),
    "rate_hz": (float, False),
    "safe_action": ((float,), False),
    "source_run": (str, True),
    "policy_sha256": (str, False),
    "opset": (int, False),
    "parity_max_abs_error": (float, False),
    "parity_samples": (int, False),
    "created": (str, False),
    "kinema_version": (str, False),
    "format_version": (int, False),
}

_QUANT_SCHEMA: dict[str, Any] = {
    "scheme": str, "metric": str, "error": float, "bound": float, "max_abs_error": float,
    "samples": int, "float_p50_us": float, "quantized_p50_us": float,
}


def _quantization(value: Any, what: str) -> Quantization:
    if not isinstance(value, dict):
        raise BundleError(f"{what} is {value!r}; expected an object or null")
    unknown = sorted(set(value) - set(_QUANT_SCHEMA))
    if unknown:
        raise BundleError(f"{what} has unknown key(s) {unknown}; allowed: "
                          f"{', '.join(_QUANT_SCHEMA)}")
    kwargs = {}
    for key, kind in _QUANT_SCHEMA.items():
        if key not in value:
            raise BundleError(f"{what} is missing {key!r}")
        kwargs[key] = coerce(value[key], kind, False, f"{what}[{key!r}]")
    try:
        return Quantization(**kwargs)
    except BundleError as e:
        raise BundleError(f"{what}: {e}") from None


def _check_consistent(c: Contract) -> None:
    """Cross-field rules; a contract that breaks one would let a runner misread the graph."""
    _check_shapes(c)
    _check_actions(c)
    if not c.rate_hz > 0:
        raise BundleError(f"rate_hz is {c.rate_hz}; expected a positive control rate")
    if len(c.policy_sha256) != 64 or any(ch not in "0123456789abcdef" for ch in c.policy_sha256):
        raise BundleError("policy_sha256 must be 64 lowercase hex digits")
    if c.parity_max_abs_error < 0 or c.parity_samples < 1:
        raise BundleError("parity_max_abs_error must be >= 0 and parity_samples >= 1")
    if c.joint_state_map is not None:
        try:
            fields = parse_joint_state_map(c.joint_state_map, c.obs_dim)
        except JointStateMapError as e:
            raise BundleError(f"joint_state_map {e}") from None
        object.__setattr__(c, "joint_state_map", fields)  # JSON-like entries -> JointField
    if c.quantization is not None and c.discrete != (
        c.quantization.metric == "action_mismatch_rate"
    ):
        raise BundleError(f"quantization metric {c.quantization.metric!r} does not fit a "
                          f"{'discrete' if c.discrete else 'continuous'} policy")
    _check_graph_io(c)


def _check_graph_io(c: Contract) -> None:
    check_graph_io(c.state, c.noise, c.noise_seed)
    if c.stateful and c.quantization is not None:
        raise BundleError("a stateful contract cannot be quantized; quantization covers "
                          "feed-forward graphs only")


def _check_shapes(c: Contract) -> None:
    """Names and per-dimension lists agree with obs_dim (and obs_shape) and act_dim."""
    if c.obs_shape is not None and (len(c.obs_shape) < 2 or min(c.obs_shape) < 1
                                    or math.prod(c.obs_shape) != c.obs_dim):
        raise BundleError(f"obs_shape {list(c.obs_shape)} must be at least 2 positive sizes "
                          f"whose product is obs_dim {c.obs_dim}")
    unnamed = c.obs_shape is not None and not c.obs_names  # frames: no per-pixel names
    if c.obs_dim < 1 or (len(c.obs_names) != c.obs_dim and not unnamed):
        raise BundleError(f"obs_names has {len(c.obs_names)} names but obs_dim is {c.obs_dim}")
    if c.act_dim < 1 or len(c.action_names) != c.act_dim:
        raise BundleError(
            f"action_names has {len(c.action_names)} names but act_dim is {c.act_dim}"
        )
    for name in ("action_low", "action_high", "safe_action"):
        if len(getattr(c, name)) != c.act_dim:
            raise BundleError(f"{name} has {len(getattr(c, name))} values; expected {c.act_dim}")
    if any(lo > hi for lo, hi in zip(c.action_low, c.action_high, strict=True)):
        raise BundleError("action_low must be <= action_high in every dimension")
    bounds = zip(c.action_low, c.safe_action, c.action_high, strict=True)
    if any(not lo <= s <= hi for lo, s, hi in bounds):
        raise BundleError(f"safe_action {list(c.safe_action)} lies outside the action bounds")


def _check_actions(c: Contract) -> None:
    """A discrete contract is one index in [0, n_actions - 1]; a continuous one has no n."""
    if c.discrete:
        if c.n_actions is None or c.n_actions < 1 or c.act_dim != 1:
            raise BundleError("a discrete contract needs n_actions >= 1 and act_dim 1")
        if c.action_low != (0.0,) or c.action_high != (float(c.n_actions - 1),):
            raise BundleError(f"discrete bounds must be [0] and [{c.n_actions - 1}]")
        if c.safe_action[0] != round(c.safe_action[0]):
            raise BundleError(f"discrete safe_action {c.safe_action[0]} is not an action index")
    elif c.n_actions is not None:
        raise BundleError("n_actions must be null for a continuous contract")

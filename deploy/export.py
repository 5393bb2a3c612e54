"""Export a torch policy to an ONNX bundle that a robot computer can trust.

The policy is an `nn.Module` from float32 obs [batch, obs_dim] to float32 action
[batch, act_dim] in the robot's units, with normalizer, squashing, scaling and clipping inside
(an agent's `inference_module()`); for a discrete env act_dim is 1 and the value is the action
index. Export refuses, writing nothing, when the module's outputs have the wrong shape, are not
finite, leave the action bounds (a sign that scaling or clipping is missing), or when
onnxruntime disagrees with torch by more than `max_error` on 1000 observations. The bundle is
built in a temporary sibling folder and renamed into place, so a crash never leaves a
half-written bundle and an older bundle is replaced only by a complete one. The output folder
may be new, empty, or hold exactly a bundle (policy.onnx and contract.json): a folder holding
anything else is refused, naming what it holds, so an export never deletes someone's files.
The graph ships without the exporter's metadata (deploy.onnx_meta): no file path or source
line of the exporting machine reaches a robot.

Stateful graphs. A module that carries state between calls or samples noise (an MPC planner:
warm-start plan in, CEM noise in) declares it in a plain attribute `graph_io`, a dict that
needs no import of deploy (agents may not import it):
`{"state": [{"input": "plan", "output": "plan_out", "shape": [H, A], "initial": 0.0}],
"noise": [{"name": "noise", "shape": [I, K, H, A]}]}`. Its forward is then
`forward(obs [1, obs_dim], *state_inputs, *noise_inputs) -> (action [1, act_dim],
*state_outputs)`, in graph_io's order, and it is exported with those names and fixed shapes
(batch 1; deploy.contract describes how the runtime feeds state and noise). Parity runs it one
call at a time on STATEFUL_PARITY_SAMPLES observations: the first half chained from the
initial state through torch's own state outputs (what the runtime does in an episode), the
second half from states uniform in [-1, 1], with noise drawn as the runtime draws it; actions
and state outputs of torch and onnxruntime must agree within `max_error`, and the same
refusals (shapes, finite, action bounds) apply. Quantization is refused for such graphs.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, NamedTuple, cast

import gymnasium as gym
import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

import sim
from data.files import publish_dir, sha256_bytes, write_atomic
from deploy import quantize as quant
from deploy.contract import (
    CONTRACT_FILE,
    FILE_MODE,
    POLICY_FILE,
    BundleError,
    Contract,
    NoiseInput,
    Quantization,
    StateIO,
    check_graph_io,
    parse_graph_io,
)
from deploy.joint_state_map import JointStateMapError, parse_joint_state_map
from deploy.onnx_meta import strip_metadata
from deploy.runtime.policy import check_stateful_io
from models.normalizer import FittedNorm, RunningNorm

OPSET = 20
"""ai.onnx opset we ask the dynamo exporter for (its default in torch 2.13); pinned so a torch
upgrade cannot silently change what robots must run."""
PARITY_SAMPLES = 1000
STATEFUL_PARITY_SAMPLES = 32
"""Random observations for a stateful graph's parity (plus at most as many rollout ones): it
runs one observation per call, and a planner graph takes tens of milliseconds a call."""


class ExportError(ValueError):
    """The policy cannot be exported faithfully; nothing was written."""


class GraphIO(NamedTuple):
    """A stateful module's graph_io, parsed (deploy.contract's types), and its noise seed."""

    state: tuple[StateIO, ...]
    noise: tuple[NoiseInput, ...]
    noise_seed: int

    @property
    def input_names(self) -> list[str]:
        return ["obs", *(s.input for s in self.state), *(n.name for n in self.noise)]

    @property
    def output_names(self) -> list[str]:
        return ["action", *(s.output for s in self.state)]

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """State then noise shapes, after obs: forward's argument order."""
        return [*(s.shape for s in self.state), *(n.shape for n in self.noise)]


class _Exported(nn.Module):
    """Names the graph's input `obs` and makes the output float32 (discrete indices included)."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy(obs).to(torch.float32)


class _ExportedStateful(nn.Module):
    """forward(obs, *state, *noise) -> (action, *state_out), every output float32; a module
    with no state may return the bare action."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.policy(obs, *inputs)
        outs = (out,) if isinstance(out, torch.Tensor) else tuple(out)
        return tuple(t.to(torch.float32) for t in outs)


def export_bundle(
    policy: nn.Module,
    *,
    env: str,
    out_dir: str | os.PathLike[str],
    source_run: str | None = None,
    rollout_obs: np.ndarray | None = None,
    max_error: float = 1e-4,
    obs_names: Sequence[str] | None = None,
    action_names: Sequence[str] | None = None,
    safe_action: Sequence[float] | None = None,
    seed: int = 0,
    joint_state_map: Sequence[Any] | None = None,
    quantize: str | None = None,
    quantize_bound: float | None = None,
    noise_seed: int = 0,
) -> Contract:
    """Export `policy` for `env` to the bundle folder `out_dir` and return its contract.

    `rollout_obs` [n, obs_dim] are observations from real rollouts, added to the random ones
    so parity is also measured where the policy actually operates. `joint_state_map` (JSON
    entries or JointFields, see deploy.joint_state_map) lets the ROS node take JointState.
    `quantize="int8"` ships a dynamically quantized graph instead of the float one, after the
    float graph passed parity and the int8 one stayed within `quantize_bound`
    (deploy.quantize's defaults when None); its error and speed go into the contract.
    A module with `graph_io` is exported stateful (module docstring); `noise_seed` seeds the
    runtime's noise generator and applies only when graph_io declares noise.
    """
    _check_options(quantize, quantize_bound, source_run)
    io = _graph_io(policy, noise_seed, quantize)
    info = sim.spec(env).info
    if len(info.obs_shape) != 1:
        raise ExportError(f"env {env!r} has observations of shape {info.obs_shape}; export "
                          "supports flat observations [obs_dim] only")
    out = Path(out_dir)
    check_out_dir(out)
    obs_dim = info.obs_shape[0]
    joint_map = None
    if joint_state_map is not None:
        try:
            joint_map = parse_joint_state_map(joint_state_map, obs_dim)
        except JointStateMapError as e:
            raise ExportError(f"joint_state_map {e}") from None
    low: tuple[float, ...]
    high: tuple[float, ...]
    if info.discrete:
        assert info.n_actions is not None
        act_dim, low, high = 1, (0.0,), (float(info.n_actions - 1),)
    else:
        if info.action_low is None or info.action_high is None or not all(
            math.isfinite(b) for b in (*info.action_low, *info.action_high)
        ):
            raise ExportError(f"env {env!r} has no finite action bounds; export needs them to "
                              "put scaling and clipping in the graph")
        act_dim, low, high = math.prod(info.action_shape), info.action_low, info.action_high
    _check_normalizers(policy)
    shape = _Shape(obs_dim, act_dim, tuple(low), tuple(high), info.discrete)
    quantization: Quantization | None = None
    if io is None:
        blob, error, samples, quantization = _export_feed_forward(
            policy, env, rollout_obs, shape, seed=seed, max_error=max_error, quantize=quantize,
            quantize_bound=quantize_bound)
    else:
        blob, error, samples = _export_stateful(policy, io, env, rollout_obs, shape, seed=seed,
                                                max_error=max_error)

    contract = Contract(
        env=env,
        obs_names=tuple(obs_names or (f"obs_{i}" for i in range(obs_dim))),
        obs_dim=obs_dim,
        action_names=tuple(action_names or (f"act_{i}" for i in range(act_dim))),
        act_dim=act_dim,
        discrete=info.discrete,
        n_actions=info.n_actions,
        action_low=tuple(low),
        action_high=tuple(high),
        rate_hz=info.rate_hz,
        safe_action=_safe_action(safe_action, low, high),
        source_run=source_run,
        policy_sha256=sha256_bytes(blob),
        opset=_opset(onnx.load_from_string(blob)),
        parity_max_abs_error=error,
        parity_samples=samples,
        joint_state_map=joint_map,
        quantization=quantization,
        state=() if io is None else io.state,
        noise=() if io is None else io.noise,
        noise_seed=0 if io is None else io.noise_seed,
    )
    _write_bundle(out, blob, contract)
    return contract


class _Shape(NamedTuple):
    """What the env needs of the graph: sizes and the action bounds, robot units."""

    obs_dim: int
    act_dim: int
    low: tuple[float, ...]
    high: tuple[float, ...]
    discrete: bool


def _export_feed_forward(
    policy: nn.Module,
    env: str,
    rollout_obs: np.ndarray | None,
    shape: _Shape,
    *,
    seed: int,
    max_error: float,
    quantize: str | None,
    quantize_bound: float | None,
) -> tuple[bytes, float, int, Quantization | None]:
    """obs [batch, obs_dim] -> action [batch, act_dim]: (graph, parity error, samples,
    quantization), parity over PARITY_SAMPLES observations in one batch."""
    obs = parity_observations(env, rollout_obs, n=PARITY_SAMPLES, seed=seed)

    module = _Exported(policy)
    modes = {m: m.training for m in module.modules()}
    module.eval()  # dropout / batch-norm must be in inference mode for the graph and parity
    try:
        with torch.no_grad():
            expected = module(torch.from_numpy(obs)).numpy()
        _check_outputs(expected, obs.shape[0], shape, "torch")
        blob = _to_onnx(module, shape.obs_dim)
    finally:
        for m, training in modes.items():
            m.train(training)

    got = _run_onnxruntime(blob, obs)
    _check_outputs(got, obs.shape[0], shape, "onnxruntime")
    error = float(np.max(np.abs(expected.astype(np.float64) - got.astype(np.float64))))
    if not error <= max_error:
        raise ExportError(f"onnxruntime differs from torch by up to {error:.3g} over {len(obs)} "
                          f"observations; export accepts at most max_error={max_error:g}")
    quantization: Quantization | None = None
    if quantize is not None:
        float_blob = blob
        try:
            blob = quant.quantize_int8(float_blob)
            quantization = quant.measure(float_blob, blob, obs, expected, discrete=shape.discrete,
                                         low=shape.low, high=shape.high, bound=quantize_bound)
        except (quant.QuantizationError, BundleError) as e:
            raise ExportError(str(e)) from e

    return blob, error, len(obs), quantization


def _graph_io(policy: nn.Module, noise_seed: int, quantize: str | None) -> GraphIO | None:
    """The module's `graph_io` parsed and checked as strictly as a contract's, or None for a
    feed-forward module (no graph_io, or one declaring nothing)."""
    spec = getattr(policy, "graph_io", None)
    if spec is not None and not isinstance(spec, dict):
        raise ExportError(f"the policy's graph_io is a {type(spec).__name__}; expected a dict "
                          "with 'state' and/or 'noise' lists")
    unknown = sorted(set(spec or {}) - {"state", "noise"})
    if unknown:
        raise ExportError(f"the policy's graph_io has unknown key(s) {unknown}; allowed: "
                          "state, noise")
    try:
        parsed = parse_graph_io(spec or {}, where="the policy's graph_io")
        io = GraphIO(parsed.get("state", ()), parsed.get("noise", ()), noise_seed)
        check_graph_io(*io)
    except BundleError as e:
        raise ExportError(str(e)) from None
    if not (io.state or io.noise):
        return None
    if quantize is not None:
        raise ExportError(f"quantize {quantize!r} applies to feed-forward graphs only; this "
                          "policy declares graph_io state/noise: export it without quantize")
    return io


def _export_stateful(
    policy: nn.Module,
    io: GraphIO,
    env: str,
    rollout_obs: np.ndarray | None,
    shape: _Shape,
    *,
    seed: int,
    max_error: float,
) -> tuple[bytes, float, int]:
    """(graph, parity error over actions and state outputs, samples), one call at a time."""
    rollout = _check_rollout(rollout_obs, shape.obs_dim)
    if rollout is not None and len(rollout) > STATEFUL_PARITY_SAMPLES:  # evenly spaced subset
        rollout = rollout[np.linspace(0, len(rollout) - 1, STATEFUL_PARITY_SAMPLES).astype(int)]
    obs = parity_observations(env, rollout, n=STATEFUL_PARITY_SAMPLES, seed=seed)
    module = _ExportedStateful(policy)
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        feeds, expected = _stateful_torch(module, io, obs, shape, seed)
        _check_stateful_outputs(expected, io, shape, "torch")
        blob = _to_onnx(module, shape.obs_dim, io)
    finally:
        for m, training in modes.items():
            m.train(training)
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    try:
        check_stateful_io(session, shape.obs_dim, shape.act_dim, io.state, io.noise)
    except BundleError as e:
        raise ExportError(f"the exported graph does not match the policy's graph_io: {e}") from e
    got = [[np.asarray(o) for o in session.run(io.output_names, feed)] for feed in feeds]
    _check_stateful_outputs(got, io, shape, "onnxruntime")
    error = max(float(np.max(np.abs(e.astype(np.float64) - g.astype(np.float64))))
                for want, have in zip(expected, got, strict=True)
                for e, g in zip(want, have, strict=True))
    if not error <= max_error:
        raise ExportError(f"onnxruntime differs from torch by up to {error:.3g} (actions and "
                          f"state outputs) over {len(obs)} calls; export accepts at most "
                          f"max_error={max_error:g}")
    return blob, error, len(obs)


def _stateful_torch(
    module: nn.Module, io: GraphIO, obs: np.ndarray, shape: _Shape, seed: int
) -> tuple[list[dict[str, np.ndarray]], list[list[np.ndarray]]]:
    """Each call's graph inputs (by name) and torch's outputs. Noise is drawn as the runtime
    draws it; the first half of the calls carry torch's state outputs from the initial state
    on, as an episode does, the second half take states uniform in [-1, 1]."""
    noise_rng = np.random.Generator(np.random.PCG64(io.noise_seed))
    state_rng = np.random.default_rng([seed, 1])
    state = [np.full(s.shape, s.initial, np.float32) for s in io.state]
    feeds: list[dict[str, np.ndarray]] = []
    outputs: list[list[np.ndarray]] = []
    for i, o in enumerate(obs):
        if i >= len(obs) // 2:
            state = [state_rng.uniform(-1.0, 1.0, s.shape).astype(np.float32) for s in io.state]
        noise = [noise_rng.standard_normal(n.shape, dtype=np.float32) for n in io.noise]
        inputs = [o[None], *state, *noise]
        try:
            with torch.no_grad():
                out = [t.numpy() for t in module(*(torch.from_numpy(a) for a in inputs))]
        except Exception as e:  # most often inputs that do not fit the module: name them
            shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in zip(io.input_names, inputs,
                                                                        strict=True))
            raise ExportError(f"the policy raised {type(e).__name__} on its graph_io inputs "
                              f"({shapes}): {str(e).splitlines()[0] if str(e) else ''}") from e
        _check_call(out, io, shape, "torch")  # before its state feeds the next call
        feeds.append(dict(zip(io.input_names, inputs, strict=True)))
        outputs.append(out)
        state = [np.array(s, np.float32) for s in out[1:len(io.state) + 1]]
    return feeds, outputs


def _check_stateful_outputs(
    outs: list[list[np.ndarray]], io: GraphIO, shape: _Shape, who: str
) -> None:
    """Every call's outputs (_check_call); then the actions together as a feed-forward
    policy's are checked (bounds, indices)."""
    for out in outs:
        _check_call(out, io, shape, who)
    _check_outputs(np.concatenate([out[0] for out in outs]), len(outs), shape, who)


def _check_call(out: list[np.ndarray], io: GraphIO, shape: _Shape, who: str) -> None:
    """One call gave the action [1, act_dim] and every declared state output, finite."""
    if len(out) != 1 + len(io.state):
        raise ExportError(f"the policy run by {who} returned {len(out)} output(s); its "
                          f"graph_io needs the action and {len(io.state)} state output(s)")
    if out[0].shape != (1, shape.act_dim):
        raise ExportError(f"the policy run by {who} returned an action of shape "
                          f"{tuple(out[0].shape)}; a stateful graph needs [1, "
                          f"{shape.act_dim}]")
    for s, value in zip(io.state, out[1:], strict=True):
        if value.shape != s.shape:
            raise ExportError(f"the policy run by {who} returned state {s.output!r} of "
                              f"shape {tuple(value.shape)}; graph_io declares {list(s.shape)}")
        if not np.all(np.isfinite(value)):
            raise ExportError(f"the policy run by {who} returned non-finite values in "
                              f"state {s.output!r}; state outputs must be finite")


def parity_observations(
    env: str, rollout_obs: np.ndarray | None, *, n: int, seed: int
) -> np.ndarray:
    """`n` random observations covering the env's observation scale, then `rollout_obs`.

    Bounded dimensions are drawn uniformly within their bounds. Unbounded ones take their
    scale from `rollout_obs` when given (mean +- 3 std), else span magnitudes 0.1 to 10, so
    saturating layers are exercised as well as linear ones.
    """
    e = sim.make(env)
    try:
        space = cast(gym.spaces.Box, e.observation_space)  # sim.make's observations are a Box
        lo = np.asarray(space.low, np.float64)
        hi = np.asarray(space.high, np.float64)
    finally:
        e.close()
    obs_dim = lo.shape[0]
    rollout = _check_rollout(rollout_obs, obs_dim)
    rng = np.random.default_rng(seed)
    bounded = np.isfinite(lo) & np.isfinite(hi) & (hi - lo < 1e6)
    unit = rng.uniform(0.0, 1.0, (n, obs_dim))
    obs = np.where(bounded, lo + unit * np.where(bounded, hi - lo, 0.0), 0.0)
    if rollout is not None and len(rollout):
        mean, std = rollout.mean(0), rollout.std(0) + 1e-3
        wide = mean + 3.0 * std * rng.uniform(-1.0, 1.0, (n, obs_dim))
    else:
        wide = rng.standard_normal((n, obs_dim)) * 10.0 ** rng.uniform(-1.0, 1.0, (n, obs_dim))
    obs = np.where(bounded, obs, wide).astype(np.float32)
    return obs if rollout is None else np.concatenate([obs, rollout])


def _check_normalizers(policy: nn.Module) -> None:
    """Refuse observation normalizers without statistics: a graph that normalizes with
    mean 0 and variance 1 because training never filled them in would run, and be wrong.

    An intentional identity (PPO with norm_obs=False, BC without normalization) is marked by
    an infinite clip and passes.
    """
    for name, m in policy.named_modules():
        where = f"normalizer {name!r}" if name else "normalizer"
        if isinstance(m, FittedNorm) and int(m.count) == 0:  # a learned model never fitted
            raise ExportError(f"the policy's {where} was never fitted to data; export a "
                              "trained run, whose model statistics go into the graph")
        if not isinstance(m, RunningNorm):
            continue
        stats = (m.mean, m.var, m.count)
        if not all(bool(torch.all(torch.isfinite(t))) for t in stats) or bool(
            torch.any(m.var < 0)
        ):
            raise ExportError(f"the policy's observation {where} has non-finite or negative "
                              "statistics; export from a healthy checkpoint")
        if math.isfinite(m.clip) and float(m.count) <= _UNFITTED_COUNT:
            raise ExportError(f"the policy's observation {where} has no statistics (it was "
                              "never updated); export a trained policy, whose normalizer "
                              "statistics go into the graph")


_UNFITTED_COUNT = 1e-3
"""RunningNorm starts at count 1e-4; one observation makes it >= 1."""


def _check_rollout(rollout_obs: np.ndarray | None, obs_dim: int) -> np.ndarray | None:
    if rollout_obs is None:
        return None
    r = np.asarray(rollout_obs, dtype=np.float32)
    if r.ndim != 2 or r.shape[1] != obs_dim:
        raise ExportError(f"rollout_obs has shape {r.shape}; expected [n, {obs_dim}]")
    if not np.all(np.isfinite(r)):
        raise ExportError("rollout_obs contains non-finite values; pass finite observations")
    return r


def _check_outputs(out: np.ndarray, batch: int, shape: _Shape, who: str) -> None:
    act_dim, low, high = shape.act_dim, shape.low, shape.high
    if out.shape != (batch, act_dim):
        raise ExportError(f"the policy run by {who} returned shape {tuple(out.shape)} for "
                          f"{batch} observations; the env needs [batch, {act_dim}]")
    if not np.all(np.isfinite(out)):
        raise ExportError(f"the policy run by {who} returned non-finite actions; a policy "
                          "must map every observation to finite numbers")
    lo, hi = np.asarray(low), np.asarray(high)
    tol = 1e-5 * np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))
    if np.any(out < lo - tol) or np.any(out > hi + tol):
        raise ExportError(f"the policy run by {who} returned actions in "
                          f"[{out.min():.4g}, {out.max():.4g}] outside the bounds "
                          f"{list(low)}..{list(high)}; put scaling and clipping in the module")
    if shape.discrete and np.any(out != np.round(out)):
        raise ExportError(f"the policy run by {who} returned non-integer values; a discrete "
                          "policy must return the action index (e.g. argmax) as a float")


def _to_onnx(module: nn.Module, obs_dim: int, io: GraphIO | None = None) -> bytes:
    """Dynamo export, checked by the ONNX checker: with a dynamic batch dimension, or for a
    stateful module (`io`) with the fixed shapes obs [1, obs_dim], state and noise."""
    if io is None:
        example: tuple[torch.Tensor, ...] = (torch.zeros(2, obs_dim),)  # batch 2: torch.export
        names = (["obs"], ["action"])  # specializes sizes 0 and 1
        dynamic: tuple[dict[int, Any], ...] | None = ({0: torch.export.Dim("batch")},)
    else:
        example = tuple(torch.zeros(shape) for shape in ((1, obs_dim), *io.input_shapes))
        names = (io.input_names, io.output_names)
        dynamic = None
    try:
        with warnings.catch_warnings():
            # torch 2.13's exporter trips its own pytree deprecation; it is not about the policy
            warnings.filterwarnings("ignore", "`isinstance.treespec, LeafSpec.`", FutureWarning)
            # ...and logs that torchvision's detection ops are absent; policies never use them
            logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
            program = torch.onnx.export(
                module,
                example,
                input_names=names[0],
                output_names=names[1],
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
                dynamic_shapes=dynamic,
                # onnxscript's optimizer takes ~30 s on an unrolled planner (PETS: iterations x
                # horizon model steps) and onnxruntime's own graph optimization makes the
                # unoptimized graph run as fast (pendulum preset: 13.6 vs 13.2 ms per call)
                optimize=io is None,
            )
    except Exception as e:  # the exporter raises many types; one sentence for the user
        raise ExportError(f"torch.onnx.export failed for this policy: {e}") from e
    assert program is not None
    proto = strip_metadata(program.model_proto)  # before parity, so the hashed bytes ran
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"the exported graph fails the ONNX checker: {e}") from e
    return proto.SerializeToString()


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _run_onnxruntime(blob: bytes, obs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    (out,) = session.run(["action"], {"obs": obs})
    return np.asarray(out)


def _safe_action(
    given: Sequence[float] | None, low: Sequence[float], high: Sequence[float]
) -> tuple[float, ...]:
    """Zeros clipped into the bounds unless given; for a discrete env that is index 0."""
    if given is None:
        return tuple(float(np.clip(0.0, lo, hi)) for lo, hi in zip(low, high, strict=True))
    if len(given) != len(low):
        raise ExportError(f"safe_action has {len(given)} values; expected {len(low)}")
    if not all(lo <= a <= hi for a, lo, hi in zip(given, low, high, strict=True)):
        raise ExportError(f"safe_action {list(given)} lies outside the action bounds "
                          f"{list(low)}..{list(high)}")
    return tuple(float(a) for a in given)


def _check_options(quantize: str | None, bound: float | None, source_run: str | None) -> None:
    if quantize is not None and quantize not in quant.SCHEMES:
        raise ExportError(f"quantize {quantize!r} is not supported; use one of "
                          f"{', '.join(quant.SCHEMES)} or none")
    if bound is not None:
        if quantize is None:
            raise ExportError(f"quantize_bound {bound:g} applies only to a quantized export; "
                              "pass quantize='int8' with it, or no bound")
        if not (math.isfinite(bound) and bound >= 0):
            raise ExportError(f"quantize_bound is {bound}; expected a finite number >= 0")
    if source_run is not None and (PurePosixPath(source_run).is_absolute() or PureWindowsPath(
            source_run).is_absolute() or source_run.startswith("~")):
        raise ExportError(f"source_run {source_run!r} is an absolute path; pass the run's name "
                          "(a bundle carries no paths of the machine that exported it)")


BUNDLE_FILES = (POLICY_FILE, CONTRACT_FILE)


def check_out_dir(out: Path) -> None:
    """`out` may be absent, an empty folder, or a folder holding exactly a bundle
    (policy.onnx and contract.json, which an export replaces whole); anything else is
    refused with ExportError, naming what is there, so no one's files are ever deleted."""
    where = str(out)
    if out.is_symlink():
        raise ExportError(f"{where!r} is a symbolic link; give the folder itself as the output")
    if not out.exists():
        parent = next((p for p in out.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ExportError(f"{where!r} cannot be created: {str(parent)!r} is a file")
        return
    if not out.is_dir():
        raise ExportError(f"{where!r} exists and is a file, not a bundle folder; choose another "
                          "output folder")
    names = sorted(p.name for p in out.iterdir())
    foreign = [n for n in names if n not in BUNDLE_FILES or not (out / n).is_file()]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise ExportError(f"{where!r} holds {shown}, which export did not write; it replaces "
                          f"only a folder holding exactly a bundle ({', '.join(BUNDLE_FILES)}): "
                          "move those away or choose another output folder")
    if names and len(names) != len(BUNDLE_FILES):
        missing = ", ".join(n for n in BUNDLE_FILES if n not in names)
        raise ExportError(f"{where!r} holds {', '.join(names)} but no {missing}: not a bundle "
                          "export wrote, so it is not replaced; choose another output folder")


def _write_bundle(out: Path, blob: bytes, contract: Contract) -> None:
    """Build the bundle in a temporary sibling, then rename it into place (data.files)."""
    check_out_dir(out)  # again: the folder may have changed while the graph was checked
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a robot's runtime user must read it
        write_atomic(tmp / POLICY_FILE, blob, mode=FILE_MODE)
        contract.save(tmp)
        publish_dir(tmp, out, out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

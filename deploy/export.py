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
from typing import Any, cast

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
    Quantization,
)
from deploy.joint_state_map import JointStateMapError, parse_joint_state_map
from deploy.onnx_meta import strip_metadata
from models.normalizer import RunningNorm

OPSET = 20
"""ai.onnx opset we ask the dynamo exporter for (its default in torch 2.13); pinned so a torch
upgrade cannot silently change what robots must run."""
PARITY_SAMPLES = 1000


class ExportError(ValueError):
    """The policy cannot be exported faithfully; nothing was written."""


class _Exported(nn.Module):
    """Names the graph's input `obs` and makes the output float32 (discrete indices included)."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy(obs).to(torch.float32)


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
) -> Contract:
    """Export `policy` for `env` to the bundle folder `out_dir` and return its contract.

    `rollout_obs` [n, obs_dim] are observations from real rollouts, added to the random ones
    so parity is also measured where the policy actually operates. `joint_state_map` (JSON
    entries or JointFields, see deploy.joint_state_map) lets the ROS node take JointState.
    `quantize="int8"` ships a dynamically quantized graph instead of the float one, after the
    float graph passed parity and the int8 one stayed within `quantize_bound`
    (deploy.quantize's defaults when None); its error and speed go into the contract.
    """
    _check_options(quantize, quantize_bound, source_run)
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
    obs = parity_observations(env, rollout_obs, n=PARITY_SAMPLES, seed=seed)

    module = _Exported(policy)
    modes = {m: m.training for m in module.modules()}
    module.eval()  # dropout / batch-norm must be in inference mode for the graph and parity
    try:
        with torch.no_grad():
            expected = module(torch.from_numpy(obs)).numpy()
        _check_outputs(expected, obs.shape[0], act_dim, low, high, info.discrete, "torch")
        blob = _to_onnx(module, obs_dim)
    finally:
        for m, training in modes.items():
            m.train(training)

    got = _run_onnxruntime(blob, obs)
    _check_outputs(got, obs.shape[0], act_dim, low, high, info.discrete, "onnxruntime")
    error = float(np.max(np.abs(expected.astype(np.float64) - got.astype(np.float64))))
    if not error <= max_error:
        raise ExportError(f"onnxruntime differs from torch by up to {error:.3g} over {len(obs)} "
                          f"observations; export accepts at most max_error={max_error:g}")
    quantization: Quantization | None = None
    if quantize is not None:
        float_blob = blob
        try:
            blob = quant.quantize_int8(float_blob)
            quantization = quant.measure(float_blob, blob, obs, expected, discrete=info.discrete,
                                         low=low, high=high, bound=quantize_bound)
        except (quant.QuantizationError, BundleError) as e:
            raise ExportError(str(e)) from e

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
        parity_samples=len(obs),
        joint_state_map=joint_map,
        quantization=quantization,
    )
    _write_bundle(out, blob, contract)
    return contract


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
        if not isinstance(m, RunningNorm):
            continue
        where = f"normalizer {name!r}" if name else "normalizer"
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


def _check_outputs(
    out: np.ndarray,
    batch: int,
    act_dim: int,
    low: Sequence[float],
    high: Sequence[float],
    discrete: bool,
    who: str,
) -> None:
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
    if discrete and np.any(out != np.round(out)):
        raise ExportError(f"the policy run by {who} returned non-integer values; a discrete "
                          "policy must return the action index (e.g. argmax) as a float")


def _to_onnx(module: nn.Module, obs_dim: int) -> bytes:
    """Dynamo export with a dynamic batch dimension, checked by the ONNX checker."""
    example = torch.zeros(2, obs_dim)  # batch 2: torch.export specializes sizes 0 and 1
    try:
        with warnings.catch_warnings():
            # torch 2.13's exporter trips its own pytree deprecation; it is not about the policy
            warnings.filterwarnings("ignore", "`isinstance.treespec, LeafSpec.`", FutureWarning)
            # ...and logs that torchvision's detection ops are absent; policies never use them
            logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
            program = torch.onnx.export(
                module,
                (example,),
                input_names=["obs"],
                output_names=["action"],
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
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

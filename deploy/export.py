"""Export a torch policy to an ONNX bundle that a robot computer can trust.

The policy is an `nn.Module` from float32 obs [batch, obs_dim] to float32 action
[batch, act_dim] in the robot's units, with normalizer, squashing, scaling and clipping inside
(an agent's `inference_module()`); for a discrete env act_dim is 1 and the value is the action
index. An env that observes camera frames (the `-pixels` envs, [H, W, 3k] uint8) exports the
same way: the graph takes the frames flattened in C order as float32, obs_dim = H W 3k (the
module reshapes them), and the contract records their `obs_shape`.
Export refuses, writing nothing, when the module's outputs have the wrong shape, are not
finite, leave the action bounds (a sign that scaling or clipping is missing), or when
onnxruntime disagrees with torch by more than `max_error` on 1000 observations. The bundle is
built in a temporary sibling folder and renamed into place, so a crash never leaves a
half-written bundle and an older bundle is replaced only by a complete one. The output folder
may be new, empty, or hold exactly a bundle (policy.onnx and contract.json): a folder holding
anything else is refused, naming what it holds, so an export never deletes someone's files.
The graph ships without the exporter's metadata (deploy.onnx_meta): no file path or source
line of the exporting machine reaches a robot.

Stateful graphs (a module with `graph_io`: a planner's warm start and noise) are exported by
deploy.export_stateful; the pieces both paths share are in deploy.export_graph.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import onnx
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
from deploy.export_graph import (
    OPSET,
    ExportError,
    Shape,
    check_outputs,
    opset_of,
    parity_observations,
    run_onnxruntime,
    to_onnx,
)
from deploy.export_stateful import export_stateful, graph_io_of
from deploy.joint_state_map import JointStateMapError, parse_joint_state_map
from models.normalizer import FittedNorm, RunningNorm

__all__ = ["OPSET", "ExportError", "check_out_dir", "export_bundle", "parity_observations"]

PARITY_SAMPLES = 1000
"""Observations of a feed-forward graph's parity, run as one batch."""


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
    io = graph_io_of(policy, noise_seed, quantize)
    info = sim.spec(env).info
    out = Path(out_dir)
    check_out_dir(out)
    obs_dim = math.prod(info.obs_shape)
    obs_shape = tuple(info.obs_shape) if len(info.obs_shape) > 1 else None
    joint_map = None
    if joint_state_map is not None and obs_shape is not None:
        raise ExportError(f"env {env!r} observes camera frames {list(obs_shape)}; a "
                          "joint_state_map fills flat joint observations only: drop it")
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
    shape = Shape(obs_dim, act_dim, tuple(low), tuple(high), info.discrete)
    quantization: Quantization | None = None
    if io is None:
        blob, error, samples, quantization = _export_feed_forward(
            policy, env, rollout_obs, shape, seed=seed, max_error=max_error, quantize=quantize,
            quantize_bound=quantize_bound)
    else:
        blob, error, samples = export_stateful(policy, io, env, rollout_obs, shape, seed=seed,
                                                max_error=max_error)

    default_names = () if obs_shape else tuple(f"obs_{i}" for i in range(obs_dim))  # frames
    contract = Contract(
        env=env,
        obs_names=tuple(obs_names or default_names),
        obs_dim=obs_dim,
        obs_shape=obs_shape,
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
        opset=opset_of(onnx.load_from_string(blob)),
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


def _export_feed_forward(
    policy: nn.Module,
    env: str,
    rollout_obs: np.ndarray | None,
    shape: Shape,
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
        check_outputs(expected, obs.shape[0], shape, "torch")
        blob = to_onnx(module, shape.obs_dim)
    finally:
        for m, training in modes.items():
            m.train(training)

    got = run_onnxruntime(blob, obs)
    check_outputs(got, obs.shape[0], shape, "onnxruntime")
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

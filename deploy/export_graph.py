"""What both exports share (deploy.export, deploy.export_stateful): the error type, the
graph's interface, parity observations, output checks, and torch -> ONNX with the checker."""

from __future__ import annotations

import logging
import warnings
from typing import Any, NamedTuple, cast

import gymnasium as gym
import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

import sim
from deploy.contract import NoiseInput, StateIO
from deploy.onnx_meta import strip_metadata

OPSET = 20
"""ai.onnx opset we ask the dynamo exporter for (its default in torch 2.13); pinned so a torch
upgrade cannot silently change what robots must run."""
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


class Shape(NamedTuple):
    """What the env needs of the graph: sizes and the action bounds, robot units."""

    obs_dim: int
    act_dim: int
    low: tuple[float, ...]
    high: tuple[float, ...]
    discrete: bool


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
        lo = np.asarray(space.low, np.float64).reshape(-1)  # frames: flattened, as exported
        hi = np.asarray(space.high, np.float64).reshape(-1)
    finally:
        e.close()
    obs_dim = lo.shape[0]
    rollout = check_rollout(rollout_obs, obs_dim)
    rng = np.random.default_rng(seed)
    bounded = np.isfinite(lo) & np.isfinite(hi) & (hi - lo < 1e6)
    unit = rng.uniform(0.0, 1.0, (n, obs_dim))
    obs = np.where(bounded, lo + unit * np.where(bounded, hi - lo, 0.0), 0.0)
    if bounded.all():  # camera frames: nothing to widen (and no more copies of n frames)
        obs = obs.astype(np.float32)
        return obs if rollout is None else np.concatenate([obs, rollout])
    if rollout is not None and len(rollout):
        mean, std = rollout.mean(0), rollout.std(0) + 1e-3
        wide = mean + 3.0 * std * rng.uniform(-1.0, 1.0, (n, obs_dim))
    else:
        wide = rng.standard_normal((n, obs_dim)) * 10.0 ** rng.uniform(-1.0, 1.0, (n, obs_dim))
    obs = np.where(bounded, obs, wide).astype(np.float32)
    return obs if rollout is None else np.concatenate([obs, rollout])


def check_rollout(rollout_obs: np.ndarray | None, obs_dim: int) -> np.ndarray | None:
    if rollout_obs is None:
        return None
    r = np.asarray(rollout_obs, dtype=np.float32)
    if r.ndim != 2 or r.shape[1] != obs_dim:
        raise ExportError(f"rollout_obs has shape {r.shape}; expected [n, {obs_dim}]")
    if not np.all(np.isfinite(r)):
        raise ExportError("rollout_obs contains non-finite values; pass finite observations")
    return r


def check_outputs(out: np.ndarray, batch: int, shape: Shape, who: str) -> None:
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


def to_onnx(module: nn.Module, obs_dim: int, io: GraphIO | None = None) -> bytes:
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
        # No autograd while tracing: the same graph, byte for byte, traced in about 2/3 of
        # the time (an open-loop planner: 20 -> 14 s).
        with warnings.catch_warnings(), torch.no_grad():
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


def opset_of(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def run_onnxruntime(blob: bytes, obs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    (out,) = session.run(["action"], {"obs": obs})
    return np.asarray(out)

"""Export of a stateful policy (deploy.export.export_bundle calls it).

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

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from deploy.contract import BundleError, check_graph_io, parse_graph_io
from deploy.export_graph import (
    ExportError,
    GraphIO,
    Shape,
    check_outputs,
    check_rollout,
    parity_observations,
    to_onnx,
)
from deploy.runtime.policy import check_stateful_io

STATEFUL_PARITY_SAMPLES = 32
"""Random observations for a stateful graph's parity (plus at most as many rollout ones): it
runs one observation per call, and a planner graph takes tens of milliseconds a call."""


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


def graph_io_of(policy: nn.Module, noise_seed: int, quantize: str | None) -> GraphIO | None:
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


def export_stateful(
    policy: nn.Module,
    io: GraphIO,
    env: str,
    rollout_obs: np.ndarray | None,
    shape: Shape,
    *,
    seed: int,
    max_error: float,
) -> tuple[bytes, float, int]:
    """(graph, parity error over actions and state outputs, samples), one call at a time."""
    rollout = check_rollout(rollout_obs, shape.obs_dim)
    if rollout is not None and len(rollout) > STATEFUL_PARITY_SAMPLES:  # evenly spaced subset
        rollout = rollout[np.linspace(0, len(rollout) - 1, STATEFUL_PARITY_SAMPLES).astype(int)]
    obs = parity_observations(env, rollout, n=STATEFUL_PARITY_SAMPLES, seed=seed)
    module = _ExportedStateful(policy)
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        feeds, expected = _stateful_torch(module, io, obs, shape, seed)
        _check_stateful_outputs(expected, io, shape, "torch")
        blob = to_onnx(module, shape.obs_dim, io)
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
    module: nn.Module, io: GraphIO, obs: np.ndarray, shape: Shape, seed: int
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
    outs: list[list[np.ndarray]], io: GraphIO, shape: Shape, who: str
) -> None:
    """Every call's outputs (_check_call); then the actions together as a feed-forward
    policy's are checked (bounds, indices)."""
    for out in outs:
        _check_call(out, io, shape, who)
    check_outputs(np.concatenate([out[0] for out in outs]), len(outs), shape, who)


def _check_call(out: list[np.ndarray], io: GraphIO, shape: Shape, who: str) -> None:
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

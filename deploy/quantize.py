"""Optional int8 quantization of an exported policy graph, measured before it is shipped.

onnxruntime's dynamic quantization stores weights as int8 and quantizes activations per call
(`DynamicQuantizeLinear` + `MatMulInteger`); it needs no calibration data, which suits
policies whose observation distribution shifts on the robot. It trades accuracy for size and,
on large layers, speed; for small policy MLPs at batch 1 the per-call activation quantization
can make it slower, which is why the speed of both graphs is measured and recorded rather
than assumed. The error is measured against the torch policy on the same observations export
uses for parity, and a graph above the bound is refused.

Weights are quantized to 7 bits (`reduce_range`): on x86 CPUs without VNNI (AVX2 and AVX-512
without it, common on robot computers) onnxruntime's u8s8 MatMulInteger multiplies pairs with
VPMADDUBSW, whose 16-bit sums saturate with full-range int8 weights, and the same bundle then
acts differently on different CPUs. Measured on an AVX2-only CPU: the test pendulum policy's
int8 error was 0.107 of its action range with 8-bit weights and within 0.02 with 7-bit ones.
See onnxruntime's quantization guide, "When to use reduce-range".
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from deploy.contract import Quantization
from deploy.onnx_meta import strip_metadata
from deploy.runtime.stats import percentile_us, time_calls

SCHEMES = ("int8",)
CONTINUOUS_BOUND = 0.02
"""Default bound for a continuous policy: max |error| <= 2% of the action range."""
DISCRETE_BOUND = 0.01
"""Default bound for a discrete policy: at most 1% of observations get another action."""


class QuantizationError(ValueError):
    """The quantized graph is not good enough (or cannot be built); nothing was written."""


def quantize_int8(blob: bytes) -> bytes:
    """Dynamic int8 quantization (weights int8, activations quantized per call) of a graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="kinema-quant-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(blob)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # it advises pre-processing for CNNs; policies are MLPs
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, reduce_range=True)
        except Exception as e:  # the quantizer raises many types; one sentence for the user
            raise QuantizationError(f"onnxruntime could not quantize the graph: {e}") from e
        finally:
            root.setLevel(level)
        model = strip_metadata(onnx.load(dst))  # the quantizer's notes ship nowhere either
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def measure(
    float_blob: bytes,
    quant_blob: bytes,
    obs: np.ndarray,
    expected: np.ndarray,
    *,
    discrete: bool,
    low: Sequence[float],
    high: Sequence[float],
    bound: float | None = None,
) -> Quantization:
    """Error of `quant_blob` against the torch outputs `expected` on `obs`, and both speeds.

    Raises QuantizationError when the error is above `bound` (default: CONTINUOUS_BOUND or
    DISCRETE_BOUND).
    """
    got = session(quant_blob).run(["action"], {"obs": obs})[0]
    diff = np.abs(np.asarray(got, np.float64) - expected.astype(np.float64))
    if not np.all(np.isfinite(diff)):
        raise QuantizationError("the quantized graph returned non-finite actions")
    max_abs = float(diff.max())
    if discrete:
        metric, error = "action_mismatch_rate", float(np.mean(np.any(diff > 0.5, axis=1)))
        bound = DISCRETE_BOUND if bound is None else bound
    else:
        span = np.maximum(np.asarray(high, np.float64) - np.asarray(low, np.float64), 1e-12)
        metric, error = "max_abs_error_over_range", float(np.max(diff / span))
        bound = CONTINUOUS_BOUND if bound is None else bound
    if not error <= bound:
        raise QuantizationError(f"int8 quantization has {metric.replace('_', ' ')} {error:.4g} "
                                f"over {len(obs)} observations; the bound is {bound:g} (export "
                                "the float graph, or raise the bound knowingly)")
    one = obs[:1].copy()
    return Quantization(
        scheme="int8-dynamic", metric=metric, error=error, bound=float(bound),
        max_abs_error=max_abs, samples=len(obs),
        float_p50_us=p50_us(float_blob, one), quantized_p50_us=p50_us(quant_blob, one),
    )


def session(blob: bytes) -> ort.InferenceSession:
    """An onnxruntime session as the runtime uses it: CPU, one thread."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # as the runtime runs it: one thread, one observation
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])


def p50_us(blob: bytes, one: np.ndarray, calls: int = 2000) -> float:
    """Median time of one `session.run` on the single observation `one` [1, obs_dim]."""
    sess = session(blob)
    feed = {"obs": one}
    p50 = percentile_us(time_calls(lambda f: sess.run(["action"], f), feed, calls), 50)
    assert p50 is not None
    return max(p50, 1e-3)

"""BinaryDense/TernaryDense weights and binary_tanh/ternary_tanh activations of early Keras BNN code, read exactly."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import QuantizationError
from ..ir.ops import Dense, Threshold
from ..ir.types import FixedType
from .quant import grid_type

__all__ = ["BNN_DENSE_LAYERS", "BNN_ACTIVATIONS", "bnn_weights", "bnn_threshold", "fold_bn_activation"]

#: Dense layers of the BinaryNet/TernaryNet Keras code (DingKe's nn_playground) that hls4ml's example models use.
BNN_DENSE_LAYERS = ("BinaryDense", "TernaryDense")
#: Their activations, named by string in the model's JSON.
BNN_ACTIVATIONS = ("binary_tanh", "ternary_tanh")

#: The levels of both activations: -1, +1 (binary) or -1, 0, +1 (ternary), on fixed<2,2>.
_LEVEL_TYPE = FixedType(2, 2, signed=True, rounding="RND_CONV", overflow="SAT")


def _float_dtype(layer: Any) -> type:
    """The dtype the layer computes in (float32, or float64 for files written with that dtype)."""
    return np.float64 if str(getattr(layer, "dtype", "float32")) == "float64" else np.float32


def _h(layer: Any, cls: str) -> float:
    """The layer's H: a positive number whose +-H (and 0) are fixed-point values, i.e. a power of two."""
    h = getattr(layer, "H", None)
    try:
        hv = float(h)
    except (TypeError, ValueError):
        hv = float("nan")
    m, _ = np.frexp(hv) if np.isfinite(hv) else (0.0, 0)
    if not (np.isfinite(hv) and hv > 0 and m == 0.5):
        raise QuantizationError(f"layer '{layer.name}': {cls} H must be a positive power of two (its weights are +-H), "
                                f"not {h!r}")
    return hv


def bnn_weights(layer: Any, cls: str, w: np.ndarray) -> tuple[np.ndarray, FixedType]:
    """The layer's forward kernel (values, narrowest exact type), computed as the source code does in its dtype.

    BinaryDense: H * binary_tanh(W / H), binary_tanh(x) = 2 * round(clip(0.5x + 0.5, 0, 1)) - 1 with round half to even,
    so W = 0 gives -H. TernaryDense: W / H > 0.5 -> +H, W / H <= -0.5 -> -H, else 0; its straight-through form
    W + (Wt - W) must equal Wt in the layer's dtype (true for |W| <= 2H), else one line.
    """
    dt = _float_dtype(layer)
    h = dt(_h(layer, cls))
    w = np.asarray(w, dtype=dt)
    x = w / h
    if cls == "BinaryDense":
        hard = np.clip(dt(0.5) * x + dt(0.5), dt(0), dt(1))
        q = h * (dt(2) * np.round(hard) - dt(1))  # round_through's h + (round(h) - h) is round(h) exactly for h in [0, 1]
    else:
        t = np.where(x > dt(0.5), dt(1), np.where(x <= dt(-0.5), dt(-1), dt(0))) * h
        q = w + (t - w)
        if not np.array_equal(q, t):
            bad = w.flat[int(np.argmax(q != t))]
            raise QuantizationError(f"layer '{layer.name}': TernaryDense weights must ternarize exactly in {dt.__name__} "
                                    f"(W + (Wt - W) == Wt), not e.g. W = {bad} with H = {h}")
    return q.astype(np.float64), grid_type(q.astype(np.float64), f"layer '{layer.name}' {cls} weights")


def bnn_threshold(fn: str, xt: FixedType, name: str, inp: str, layer: str, dtype: type = np.float32) -> Threshold:
    """binary_tanh / ternary_tanh on the exact value before it, as raw compares (levels in fixed<2,2>).

    binary_tanh is +1 where round(0.5x + 0.5) is 1, i.e. where the float sum 0.5x + 0.5 rounds above 0.5 (a tie goes
    to the even 0.5): x > 2^-p for a p-bit significand (x = 0 and tinier x give -1). ternary_tanh (ternarize(clip(x, -1, 1))): +1 for x > 0.5, -1 for
    x <= -0.5, else 0; its straight-through sum is exact for |x| <= 1.
    """
    f = xt.frac_bits
    if fn == "binary_tanh":
        p = np.finfo(dtype).nmant + 1  # 24 (float32) or 53 (float64) significant bits
        raw = [(1 << (f - p)) + 1 if f >= p else 1]  # the smallest raw value above 2^-p
    elif fn == "ternary_tanh":
        # x > 0.5 iff raw > 2^(f-1), x > -0.5 iff raw > -2^(f-1); on an integer (or coarser) grid: x >= 1, x >= 0
        raw = [1 - (1 << (f - 1)), 1 + (1 << (f - 1))] if f >= 1 else [0, 1]
    else:
        raise QuantizationError(f"layer '{layer}': activation must be one of {BNN_ACTIVATIONS}, not {fn}")
    thresholds = np.clip(np.array([raw], dtype=np.int64), xt.min_raw, xt.max_raw + 1)
    if fn == "binary_tanh":
        return Threshold(name=name, input=inp, result_type=_LEVEL_TYPE, thresholds=thresholds, step=2, offset=-1)
    return Threshold(name=name, input=inp, result_type=_LEVEL_TYPE, thresholds=thresholds, step=1, offset=-1)


def fold_bn_activation(dense: Dense, bn: Any, act: Any, fn: str) -> tuple[Dense, Threshold]:
    """BatchNormalization then binary_tanh/ternary_tanh on a BNN Dense's exact sums, as per-channel raw thresholds.

    hls4ml fuses the pair the same way (BatchNormalizationQuantizedTanh). Here each threshold is found by bisection of
    the loaded layers' own arithmetic (BatchNormalization in its float dtype, then the activation) over the sums' raw
    grid: monotone, so exact, and the golden model equals Keras for every sum. A channel whose scale is negative
    (decreasing) has its Dense column and bias negated, exactly, so every channel compares increasing sums.
    """
    import tensorflow as tf
    at = dense.result_type  # the exact sums (a BNN Dense before BatchNormalization keeps them)
    weights = bn.get_weights()
    cfg = bn.get_config()
    gamma = np.asarray(weights[0], dtype=np.float64) if cfg.get("scale", True) else np.ones(dense.n_out)
    neg = gamma < 0  # sqrt(var + eps) > 0: the sign of the scale is gamma's
    dt = tf.as_dtype(bn.dtype)

    def level(raw: np.ndarray) -> np.ndarray:
        """The activation's level for each channel's raw sum (negated channels read -raw)."""
        x = np.ldexp(np.where(neg, -raw, raw).astype(np.float64), -at.frac_bits)[None, :]
        return np.asarray(act(bn(tf.constant(x, dtype=dt), training=False)), dtype=np.float64)[0]

    targets = [1.0] if fn == "binary_tanh" else [0.0, 1.0]  # the levels whose first sum each threshold marks
    rows = []
    for target in targets:  # the smallest raw sum whose level reaches the target, per channel
        lo = np.full(dense.n_out, at.min_raw - 1, dtype=np.int64)  # level below the target (never evaluated)
        hi = np.full(dense.n_out, at.max_raw + 1, dtype=np.int64)  # level at or above it (one past the type)
        while np.any(hi - lo > 1):
            mid = lo + (hi - lo) // 2
            ok = level(mid) >= target
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        rows.append(hi)
    thresholds = np.stack(rows, axis=1)
    sign = np.where(neg, -1, 1).astype(np.int64)
    bias = dense.bias * sign
    if bias.size and (bias.max() > dense.bias_type.max_raw or bias.min() < dense.bias_type.min_raw):
        raise QuantizationError(f"layer '{dense.name}': biases negated for BatchNormalization '{bn.name}' (negative gamma) "
                                f"must fit {dense.bias_type}, not overflow it")
    # +-H and {-H, 0, H} on their grid type (one value more below than above) negate in place
    folded = dataclasses.replace(dense, weight=dense.weight * sign[None, :], bias=bias)
    proto = bnn_threshold(fn, at, act.name, dense.name, act.name)
    return folded, dataclasses.replace(proto, thresholds=thresholds)

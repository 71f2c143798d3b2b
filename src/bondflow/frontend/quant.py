"""Mapping of QKeras quantizers and user precisions to FixedType, exactly as hls4ml 1.3 maps them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QuantizationError
from ..ir.ops import Dense, PRelu, Threshold
from ..ir.tensor_ops import Conv
from ..ir.types import FixedType

__all__ = ["grid_type", "VALUE_QUANTIZERS", "SIGN_ACTIVATIONS", "is_sign_quantizer", "sign_threshold", "qkeras_type", "exact_raw", "quantize_checked", "accum_type_for", "sidecar_options", "scale_shift_op", "DEFAULT_INPUT_PRECISION", "slope_type", "slopes_type", "prelu_op", "qkeras_relu_bound"]

#: hls4ml's default precision, rounded and saturated because inputs come from floats.
DEFAULT_INPUT_PRECISION = "fixed<16,6,RND_CONV,SAT>"


#: Width of a leaky ReLU slope that no short exact type holds: one DSP operand, rounded to nearest.
SLOPE_WIDTH = 18


def slope_type(alpha: float, layer: str) -> tuple[float, FixedType]:
    """A leaky ReLU slope as the IR stores it: (value, type). A slope with at most SLOPE_WIDTH significant bits
    (0.125, 0.25, 0.375) keeps its exact value in the smallest signed type holding it; any other (0.3) rounds to
    nearest on SLOPE_WIDTH signed bits. (hls4ml types its ``param_t`` with the model's default precision; bondflow
    states its own type and writes it into the hls4ml config, so both multiply by the same constant.)"""
    a = float(alpha)
    if not np.isfinite(a) or abs(a) >= 2.0 ** 16:
        raise QuantizationError(f"layer '{layer}': leaky ReLU slope must be finite and below 2^16, not {alpha!r}")
    mant, exp = np.frexp(a)  # a = mant * 2**exp, 0.5 <= |mant| < 1
    for frac in range(0, 64):
        raw = np.ldexp(a, frac)
        if raw == np.floor(raw):
            width = int(abs(int(raw))).bit_length() + 1
            if width <= SLOPE_WIDTH:
                return a, FixedType(width, width - frac)
            break
    t = FixedType(SLOPE_WIDTH, int(exp) + 1)  # |a| < 2**exp: exp integer bits plus the sign
    q = float(t.to_float(t.with_modes(rounding="RND", overflow="SAT").quantize(a)))
    return q, t


def slopes_type(alphas: np.ndarray, layer: str) -> tuple[np.ndarray, FixedType]:
    """PReLU slopes as the IR stores them: (raw values, one type). Slopes that share a type of at most SLOPE_WIDTH bits
    keep their exact values (the smallest such type); others round to nearest on SLOPE_WIDTH signed bits with the
    integer bits of the largest slope."""
    a = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)) or np.any(np.abs(a) >= 2.0 ** 16):
        raise QuantizationError(f"layer '{layer}': PReLU slopes must be finite and below 2^16, not {a.min()!r}..{a.max()!r}")
    types = [slope_type(float(v), layer)[1] for v in np.unique(a)]
    frac = max(t.frac_bits for t in types)
    int_bits = max(t.int_bits for t in types)
    if frac + int_bits <= SLOPE_WIDTH and all(t.frac_bits >= 0 for t in types):
        t = FixedType(max(frac + int_bits, 2), max(int_bits, 2 - frac))
        if t.representable(a):
            return t.quantize(a), t
    top = float(np.max(np.abs(a))) or 1.0
    t = FixedType(SLOPE_WIDTH, int(np.frexp(top)[1]) + 1)
    return t.with_modes(rounding="RND", overflow="SAT").quantize(a), t


def prelu_op(name: str, cur: str, rtype: FixedType, alphas: np.ndarray, shape: tuple[int, ...], layer: str,
             alpha_type: FixedType | None = None) -> PRelu:
    """A PRelu op from float slopes broadcast over the per-sample ``shape`` (channels last): per channel when every
    pixel of an image has the same slopes, else per element (or one slope for all). ``alpha_type`` (bondflow's own
    export) holds every slope exactly; without it slopes_type chooses."""
    full = np.broadcast_to(np.asarray(alphas, dtype=np.float64), shape)
    if np.all(full == full.reshape(-1)[0]):
        a = full.reshape(-1)[:1]
    elif len(shape) > 1 and np.all(full == full.reshape(-1, shape[-1])[:1]):
        a = full.reshape(-1, shape[-1])[0]
    else:
        a = full.reshape(-1)
    if alpha_type is not None and alpha_type.representable(a):
        raw, t = alpha_type.quantize(a), alpha_type
    else:
        raw, t = slopes_type(a, layer)
    return PRelu(name=name, input=cur, result_type=rtype, alpha=raw, alpha_type=t)


def qkeras_relu_bound(config: dict[str, Any], t: FixedType, layer: str) -> float | None:
    """The clamp of quantized_relu(relu_upper_bound=b): None when QKeras ignores it (is_quantized_clip, its default,
    clips at the type's maximum instead) or when b >= that maximum; b itself when it is a value of ``t``, where
    QKeras's min(cast(x), b) equals the IR's cast(min(x, b)). Any other bound is not a fixed-point output."""
    b = config.get("relu_upper_bound")
    if b is None or bool(config.get("is_quantized_clip", True)) or float(b) >= t.max_value:
        return None
    if not t.representable(float(b)):
        raise QuantizationError(f"layer '{layer}': quantized_relu relu_upper_bound must be a value of {t} (a multiple of "
                                f"{t.lsb:g}), not {b}")
    return float(b)


def qkeras_type(class_name: str, config: dict[str, Any], layer: str) -> FixedType:
    """quantized_bits(b, i) -> fixed<b, i+1, RND_CONV, SAT> (SAT_SYM when symmetric); quantized_relu(b, i) -> ufixed<b, i, RND_CONV, SAT>."""
    if class_name not in ("quantized_bits", "quantized_relu"):
        raise QuantizationError(f"layer '{layer}': quantizer must be quantized_bits or quantized_relu (or, for weights, "
                                f"{', '.join(VALUE_QUANTIZERS)}), not {class_name}")
    bits = int(config["bits"])
    integer = int(config["integer"] if config.get("integer") is not None else bits - 1)  # hls4ml's default
    alpha = config.get("alpha")
    if alpha not in (None, 1, 1.0, "1"):
        raise QuantizationError(f"layer '{layer}': {class_name} alpha must be 1 or None, not {alpha!r} (scaled quantizers are not fixed point)")
    if class_name == "quantized_relu":
        if float(config.get("negative_slope", 0.0) or 0.0) != 0.0:
            raise QuantizationError(f"layer '{layer}': quantized_relu negative_slope must be 0, not {config['negative_slope']}")
        return FixedType(bits, integer, signed=False, rounding="RND_CONV", overflow="SAT")
    keep_negative = bool(config.get("keep_negative", True))
    # symmetric=1 drops the most negative code: ap_fixed's SAT_SYM clip (checked equal to QKeras, ties included)
    sym = bool(int(config.get("symmetric", 0) or 0)) and keep_negative
    return FixedType(bits, integer + (1 if keep_negative else 0), signed=keep_negative, rounding="RND_CONV",
                     overflow="SAT_SYM" if sym else "SAT")


#: QKeras quantizers whose outputs are not a declared ap_fixed range (signs, powers of two): the type is the
#: smallest signed fixed-point grid holding the values they produce.
VALUE_QUANTIZERS = ("binary", "ternary", "quantized_po2")


#: QKeras quantizers whose activation output is a sign: a few levels chosen by comparing x with constants.
SIGN_ACTIVATIONS = ("binary", "ternary")


def is_sign_quantizer(class_name: str, config: dict[str, Any]) -> bool:
    """binary/ternary, or a 1-bit signed quantized_bits (QKeras returns sign(x) for it, whatever its ``integer``)."""
    return class_name in SIGN_ACTIVATIONS or (class_name == "quantized_bits" and int(config.get("bits", 8)) == 1
                                              and bool(config.get("keep_negative", True)))


def sign_threshold(class_name: str, config: dict[str, Any], xt: FixedType, name: str, inp: str, layer: str) -> Threshold:
    """A QKeras binary/ternary activation as an exact Threshold op on the raw input.

    binary: +alpha for x >= 0 (QKeras makes sign(0) = +1), else -alpha (0 with use_01); ternary: sign(x) where
    |x| >= threshold (float32, default 0.33), else 0, times alpha. QKeras's straight-through form x + (q - x)
    (with tanh when alpha is None) returns q itself in float32 for these levels.
    """
    if config.get("use_stochastic_rounding"):
        raise QuantizationError(f"layer '{layer}': {class_name} activation must be deterministic, not use_stochastic_rounding=True")
    alpha = config.get("alpha")
    if isinstance(alpha, str) or (alpha is not None and np.ndim(alpha) > 0):
        raise QuantizationError(f"layer '{layer}': {class_name} activation alpha must be one number or None, not {alpha!r}"
                                " (an 'auto' scale is computed from each batch)")
    a = float(np.float32(1.0 if alpha is None else alpha))  # TF multiplies by alpha in float32
    f = xt.frac_bits
    if class_name == "ternary":
        thr = float(np.float32(0.33 if config.get("threshold") is None else config["threshold"]))
        t = np.ldexp(thr, f)
        # -1 iff x < 0 and |x| >= thr; +1 iff x > 0 and x >= thr (sign(0) = 0): two raw compares.
        raw = [min(0, int(np.floor(-t)) + 1), max(1, int(np.ceil(t)))]
        levels = np.array([-a, 0.0, a])
    else:
        raw = [0]
        levels = np.array([0.0, a] if config.get("use_01") else [-a, a])
    rt = grid_type(levels, f"layer '{layer}' {class_name} levels")
    if levels.min() >= 0 and rt.width > 1:  # {0, alpha}: no sign bit needed
        rt = FixedType(rt.width - 1, rt.int_bits - 1, signed=False, rounding=rt.rounding, overflow=rt.overflow)
    raw_levels = rt.quantize(levels)
    thresholds = np.clip(np.array([raw], dtype=np.int64), xt.min_raw, xt.max_raw + 1)
    return Threshold(name=name, input=inp, result_type=rt, thresholds=thresholds,
                     step=int(raw_levels[1] - raw_levels[0]), offset=int(raw_levels[0]))


def grid_type(values: np.ndarray, what: str) -> FixedType:
    """The narrowest signed fixed-point type whose grid holds every value exactly (binary +-1 -> fixed<2,2>)."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise QuantizationError(f"{what} must be finite, not NaN/inf")
    frac = 0
    while frac <= 32 and not np.array_equal(np.ldexp(v, frac), np.round(np.ldexp(v, frac))):
        frac += 1
    if frac > 32:
        bad = v.flat[int(np.argmax(np.abs(np.ldexp(v, 32) - np.round(np.ldexp(v, 32)))))]
        raise QuantizationError(f"{what} must lie on a power-of-two grid (fixed point), not e.g. {bad} (a non-power-of-two scale?)")
    raw = np.round(np.ldexp(v, frac)).astype(np.int64)
    m = int(max(raw.max(initial=0), -raw.min(initial=0) - 1, 1))
    width = m.bit_length() + 1
    return FixedType(width, width - frac, signed=True, rounding="RND_CONV", overflow="SAT")


def exact_raw(values: np.ndarray, t: FixedType, what: str) -> np.ndarray:
    """Raw integers of values that must already lie on ``t``'s grid (quantized weights)."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise QuantizationError(f"{what} must be finite, not NaN/inf")
    scaled = np.ldexp(v, t.frac_bits)
    raw = np.round(scaled)
    if np.any(np.abs(scaled - raw) > 1e-6):
        raise QuantizationError(f"{what} must lie on the grid of {t}, not e.g. {v.flat[int(np.argmax(np.abs(scaled - raw)))]}")
    raw = raw.astype(np.int64)
    if raw.size and (raw.min() < t.min_raw or raw.max() > t.max_raw):
        bad = v.flat[int(np.argmax(np.abs(v)))]
        raise QuantizationError(f"{what} must fit {t} (range {t.min_value}..{t.max_value}), not {bad}")
    return raw


def quantize_checked(values: np.ndarray, t: FixedType, what: str) -> np.ndarray:
    """Float constants -> values on ``t``'s grid; a value beyond the type's range is an error, never wrapped."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise QuantizationError(f"{what} must be finite, not NaN/inf")
    half = t.lsb / 2
    bad = (v < t.min_value - half) | (v > t.max_value + half)
    if np.any(bad):
        raise QuantizationError(f"{what} must fit {t} (range {t.min_value}..{t.max_value}), not {v[bad].flat[0]}")
    return t.to_float(t.quantize(v))


def accum_type_for(x: FixedType, w: FixedType, b: FixedType, n_in: int) -> FixedType:
    """The exact accumulator: no product or sum (bias included) can round or overflow."""
    frac = max(x.frac_bits + w.frac_bits, b.frac_bits)
    prod_int = x.int_bits + w.int_bits + (0 if (x.signed or w.signed) else 0)
    signed = x.signed or w.signed or b.signed
    int_bits = max(prod_int, b.int_bits) + max(n_in, 1).bit_length() + 1
    return FixedType(int_bits + frac, int_bits, signed=signed)


def sidecar_options(model_path: Path) -> dict[str, Any]:
    """Options saved next to a model as ``<model>.bondflow.json`` (e.g. input_precision)."""
    side = model_path.with_name(model_path.name + ".bondflow.json")
    if not side.is_file():
        return {}
    try:
        return dict(json.loads(side.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError):
        raise QuantizationError(f"{side} must be a JSON object, not invalid") from None


def scale_shift_op(name: str, cur: str, xt: FixedType, shape: tuple[int, ...], s: np.ndarray, t: np.ndarray,
                   precision: FixedType, where: str) -> Dense | Conv:
    """y = s*x + t per channel (a BatchNormalization no layer absorbs): s and t rounded to ``precision``, the exact
    sum cast once to it (hls4ml's BatchNormalization layer); a diagonal Dense on a vector, a 1x1 convolution with one
    group per channel on an image, so one product per value."""
    c = int(shape[-1])
    s_raw = exact_raw(quantize_checked(s, precision, f"{where} scale"), precision, f"{where} scale")
    t_raw = exact_raw(quantize_checked(t, precision, f"{where} shift"), precision, f"{where} shift")
    common = dict(name=name, input=cur, result_type=precision, weight_type=precision, bias=t_raw, bias_type=precision,
                  accum_type=accum_type_for(xt, precision, precision, 1))
    diag = np.diag(s_raw)
    if len(shape) == 1:
        return Dense(weight=diag, **common)
    nd = len(shape) - 1
    return Conv(weight=diag.reshape((1,) * nd + (c, c)), strides=(1,) * nd, pads=((0, 0),) * nd, groups=c, **common)

"""What the HGQ2 and HGQ v1 proxy readers share: quantizer settings, exact types and ranges, conv/pool geometry, one-line load errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import BondflowError, ModelLoadError, QuantizationError, UnsupportedOpError
from ..ir.element_quant import ElementQuant, element_types, widest_type
from ..ir.graph import Graph
from ..ir.ops import Activation, Op
from ..ir.tensor_ops import Pool, same_pads
from ..ir.types import MAX_WIDTH, FixedType, Overflow, Rounding
from ..render_names import unique_name

__all__ = ["SUPPORTED_HGQ_LAYERS", "POOLS", "ROUND", "OVERFLOW", "Quantizer", "hgq_quantize", "fit_type", "elem_ranges",
           "safe_name", "add_relu", "input_type", "exact_accum", "ints", "conv_geometry", "pool_op", "load_or_one_line"]


def load_or_one_line(load: Callable[[Path], Graph], path: Path | str, what: str) -> Graph:
    """``load(path)``; any failure that is not already a bondflow error becomes one line naming ``what`` the file must be
    (a damaged config or weights file can break reading anywhere: never a traceback)."""
    try:
        return load(Path(path))
    except BondflowError:
        raise
    except Exception as e:
        msg = " ".join(str(e).split())[:160]
        raise ModelLoadError(f"{path} must be {what}, not fail with {type(e).__name__}: {msg}") from None


SUPPORTED_HGQ_LAYERS = ("InputLayer", "QDense", "QBatchNormDense", "QConv1D", "QConv2D", "QMaxPooling1D/2D", "QAveragePooling1D/2D",
                        "QGlobalMaxPooling1D/2D", "QGlobalAveragePooling1D/2D", "MaxPooling1D/2D", "QBatchNormalization",
                        "QEinsumDense (a dense over the last axis)", "QSum (over every position)", "Quantizer", "ReLU",
                        "Activation (relu, linear)", "Dropout", "Flatten", "Add", "QAdd", "Concatenate")


POOLS = {"QMaxPooling1D": "max", "QMaxPooling2D": "max", "QAveragePooling1D": "average", "QAveragePooling2D": "average",
          "MaxPooling1D": "max", "MaxPooling2D": "max", "QGlobalMaxPooling1D": "max", "QGlobalMaxPooling2D": "max",
          "QGlobalAveragePooling1D": "average", "QGlobalAveragePooling2D": "average"}


ROUND = {"TRN": Rounding.TRN, "RND": Rounding.RND, "RND_CONV": Rounding.RND_CONV,
          "S_RND": Rounding.RND, "S_RND_CONV": Rounding.RND_CONV}  # stochastic rounding is training-only


OVERFLOW = {"WRAP": Overflow.WRAP, "SAT": Overflow.SAT, "SAT_SYM": Overflow.SAT_SYM}


class Quantizer:
    """One HGQ fixed-point quantizer: per-element (k, i, f) and its modes, read from config + weights."""

    def __init__(self, conf: Any, vars_: list[np.ndarray], where: str, layer_trainable: bool = True) -> None:
        if not isinstance(conf, dict) or conf.get("class_name") != "QuantizerConfig":
            cls = conf.get("class_name") if isinstance(conf, dict) else type(conf).__name__
            raise QuantizationError(f"{where} must be an HGQ QuantizerConfig, not {cls}")
        c = conf.get("config", {})
        q_type = c.get("q_type")
        if q_type not in ("kif", "kbi"):
            raise QuantizationError(f"{where} must be a fixed-point quantizer (q_type kif or kbi), not q_type {q_type!r}")
        for key in ("scaler", "affine"):
            if c.get(key) is not None:
                raise QuantizationError(f"{where} must have no {key} (a plain fixed-point grid), not {key}={c[key]!r}")
        bw = c.get("bw_mapper")
        if bw is not None and (not isinstance(bw, dict) or bw.get("class_name") != "DefaultBitwidthMapper"):
            raise QuantizationError(f"{where} must use HGQ's default bit-width mapper, not "
                                    f"{bw.get('class_name') if isinstance(bw, dict) else bw!r}")
        rnd, ovf = str(c.get("round_mode", "")).upper(), str(c.get("overflow_mode", "")).upper()
        if rnd not in ROUND or ovf not in OVERFLOW:
            raise QuantizationError(f"{where} must round with one of {sorted(ROUND)} and overflow with one of "
                                    f"{sorted(OVERFLOW)}, not {rnd}/{ovf}")
        self.rounding, self.overflow = ROUND[rnd], OVERFLOW[ovf]
        self.hgq_round, self.where, self.q_type = rnd.removeprefix("S_"), where, q_type
        self.trainable = bool(c.get("trainable", True)) and layer_trainable  # a frozen layer freezes its quantizers
        self.is_weight = bool(c.get("is_weight", False))
        # Keras 3 saves a layer's trainable variables, then its non-trainable ones, each in creation order:
        # KIF creates k, i, f; KBI k, b, i; both then i_decay_speed under WRAP. k never trains; i trains unless WRAP.
        names = ["k", "i", "f"] if q_type == "kif" else ["k", "b", "i"]
        trains = {"k": False, "i": ovf != "WRAP", "f": True, "b": True}
        order = [n for n in names if trains[n]] + [n for n in names if not trains[n]]
        if len(vars_) < 3:
            raise ModelLoadError(f"{where} must have its k/i/{'f' if q_type == 'kif' else 'b'} variables in "
                                 f"model.weights.h5, not {len(vars_)} variables")
        v = dict(zip(order, vars_))
        k = np.asarray(v["k"]).astype(np.int64)
        i = np.round(np.asarray(v["i"], dtype=np.float32)).astype(np.int64)  # HGQ's round_conv: half to even
        if q_type == "kif":
            f = np.round(np.asarray(v["f"], dtype=np.float32)).astype(np.int64)
        else:
            f = np.round(np.asarray(v["b"], dtype=np.float32)).astype(np.int64) - i
        if not (k.shape == i.shape == f.shape):
            raise ModelLoadError(f"{where} k, i, f variables must have one shape, not {k.shape}, {i.shape}, {f.shape}")
        self.k, self.i, self.f = k, i, f

    def broadcast(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k, i, f) per element of a tensor of ``shape`` (HGQ's bw_to_x: a broadcast)."""
        try:
            return tuple(np.broadcast_to(a, shape).copy() for a in (self.k, self.i, self.f))  # type: ignore[return-value]
        except ValueError:
            raise ModelLoadError(f"{self.where} bit widths of shape {self.k.shape} must broadcast to the tensor's "
                                 f"{shape}, not differ") from None

    def per_element(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k, i, f) for each value of a sample of ``shape``, flattened channels last (the batch axis dropped)."""
        full = (1,) + shape if self.k.ndim == len(shape) + 1 else shape
        return tuple(a.reshape(-1) for a in self.broadcast(full))  # type: ignore[return-value]

    def datalane(self, shape: tuple[int, ...], name: str, inp: str, in_type: FixedType | None) -> ElementQuant:
        """The element_quant op of this quantizer on a sample of ``shape`` (its batch axis dropped)."""
        if self.is_weight and self.overflow is Overflow.WRAP and self.trainable:
            raise QuantizationError(f"{self.where} is a data-lane quantizer with is_weight=True and WRAP, which HGQ "
                                    "applies without its overflow (unbounded values); it must be is_weight=False, not True")
        k, i, f = self.per_element(shape)
        types = element_types(k, i, f, self.rounding, self.overflow)
        return ElementQuant(name=name, input=inp, result_type=widest_type(types), k=k, i=i, f=f,
                            rounding=self.rounding, overflow=self.overflow)

    def constants(self, w: np.ndarray) -> tuple[np.ndarray, FixedType]:
        """HGQ's quantized constant ``w`` as raw integers of the layer's widest element type (exact)."""
        k, i, f = self.broadcast(w.shape)
        round_only = self.is_weight and self.overflow is Overflow.WRAP and self.trainable and \
            (self.q_type == "kif" or self.hgq_round == "RND")
        q = hgq_quantize(w, k, i, f, self.hgq_round, self.overflow.value, round_only)
        live = (k + i + f > 0) & (q != 0)
        frac = int(f[live].max()) if live.any() else 0
        raw = np.ldexp(q.astype(np.float64), frac)
        if not np.all(raw == np.round(raw)):
            raise QuantizationError(f"{self.where} quantized values must lie on a 2^-{frac} grid, not off it")
        raw = raw.astype(np.int64)
        return raw, fit_type(int(raw.min(initial=0)), int(raw.max(initial=0)), frac, f"{self.where} constants")


def hgq_quantize(x: np.ndarray, k: np.ndarray, i: np.ndarray, f: np.ndarray, round_mode: str, overflow: str,
                 round_only: bool = False) -> np.ndarray:
    """HGQ2's fixed-point quantizer at inference, in float32 as HGQ computes it (quantizers' FixedPointQuantizer)."""
    f32 = np.float32
    x = np.asarray(x, dtype=f32)
    k, i, f = (np.asarray(a, dtype=f32) for a in (k, i, f))
    with np.errstate(over="ignore", invalid="ignore"):
        i_eff = np.maximum(i, -f)
        scale = np.exp2(f).astype(f32)

        def rnd(v: np.ndarray) -> np.ndarray:
            y = (v * scale).astype(f32)
            if round_mode == "TRN":
                y = np.floor(y)
            elif round_mode == "RND":
                y = np.floor((y + f32(0.5)).astype(f32))
            else:  # RND_CONV: ops.round, half to even
                y = np.round(y)
            return (y / scale).astype(f32)

        if round_only:  # HGQ's trainable weight quantizers under WRAP only round (KIF always, KBI when RND)
            return rnd(x)
        if overflow != "WRAP":
            hi = (np.exp2(i_eff) - np.exp2(-f)).astype(f32)
            lo = (-hi * k if overflow == "SAT_SYM" else -k * np.exp2(i_eff)).astype(f32)
            x = np.where(x > hi, hi, np.where(x < lo, lo, x)).astype(f32)
        x = rnd(x)
        if overflow == "WRAP":
            bk = i_eff + k
            bias = (k * np.exp2(bk - 1)).astype(f32)
            x = (np.mod((x + bias).astype(f32), np.exp2(bk).astype(f32)) - bias).astype(f32)
        return np.where(k + i + f > 0, x, f32(0)).astype(f32)


def fit_type(lo: int, hi: int, frac: int, what: str) -> FixedType:
    """The narrowest type on the 2^-frac grid holding raw values lo..hi (signed only when lo < 0)."""
    signed = lo < 0
    width = max(hi.bit_length() + int(signed), (-lo - 1).bit_length() + 1 if signed else 0, 1)
    if width > MAX_WIDTH:
        raise QuantizationError(f"{what} must fit {MAX_WIDTH} bits exactly, not need {width}")
    return FixedType(width, width - frac, signed=signed)


def elem_ranges(op: Op, xt: FixedType, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw min and max per element of a tensor of type xt (per element when an element_quant made it)."""
    if isinstance(op, ElementQuant):
        lo, hi = np.zeros(n, dtype=object), np.zeros(n, dtype=object)
        for j, t in enumerate(op.types()):
            if t is not None:
                sh = xt.frac_bits - t.frac_bits
                lo[j], hi[j] = t.min_raw << sh, t.max_raw << sh
                if t.overflow is Overflow.SAT_SYM and t.signed and t.width > 1:
                    lo[j] = -(t.max_raw << sh)
        return lo, hi
    return np.full(n, xt.min_raw, dtype=object), np.full(n, xt.max_raw, dtype=object)


def safe_name(name: str) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9_]", "_", str(name)) or "hgq_model"


def add_relu(ops: list[Op], names: set[str], lname: str, cur: str, t: FixedType) -> None:
    """ReLU of an exact value: the unsigned type of its non-negative half (exact)."""
    rt = FixedType(max(t.width - 1, 1), t.int_bits - 1, signed=False) if t.signed else t
    ops.append(Activation(name=unique_name(lname, names), input=cur, result_type=rt, function="relu"))


def input_type(q: Quantizer, shape: tuple[int, ...]) -> FixedType:
    """The graph input: rounded once onto a grid from which each element's own cast is exact.

    One fraction width for all elements: the widest element type with the quantizer's rounding. Several: TRN is
    exact from the finest grid, RND (floor(x + 1/2)) from one bit finer, truncated; RND_CONV cannot be (ties).
    """
    k, i, f = q.per_element(shape)
    types = element_types(k, i, f, q.rounding, q.overflow)
    live = [t for t in types if t is not None]
    wide = widest_type(types)
    fracs = sorted({t.frac_bits for t in live})
    ovf = Overflow.WRAP if q.overflow is Overflow.WRAP else Overflow.SAT
    if len(fracs) <= 1 or q.rounding is Rounding.TRN:
        return wide.with_modes(q.rounding, ovf)
    if q.rounding is Rounding.RND:
        return FixedType(wide.width + 1, wide.int_bits, signed=wide.signed, rounding=Rounding.TRN, overflow=ovf)
    raise QuantizationError(f"{q.where} with RND_CONV must give every input element one fraction width (the input "
                            f"is rounded once), not {fracs[0]}..{fracs[-1]} fraction bits")


def exact_accum(lo: np.ndarray, hi: np.ndarray, xt: FixedType, w: np.ndarray, wt: FixedType, b: np.ndarray,
                 bt: FixedType, lname: str) -> FixedType:
    """The exact accumulator of x @ W + b for raw input ranges lo..hi per row of W (nothing rounds, nothing wraps)."""
    pf = xt.frac_bits + wt.frac_bits
    frac = max(pf, bt.frac_bits)
    wo = w.astype(object)
    p1, p2 = lo[:, None] * wo, hi[:, None] * wo
    sh = frac - pf
    mins = [int(v) << sh for v in np.minimum(p1, p2).sum(axis=0)]
    maxs = [int(v) << sh for v in np.maximum(p1, p2).sum(axis=0)]
    bs = [int(v) << (frac - bt.frac_bits) for v in b]
    lo_all = min([m + c for m, c in zip(mins, bs)] + [0])
    hi_all = max([m + c for m, c in zip(maxs, bs)] + [0])
    return fit_type(lo_all, hi_all, frac, f"layer '{lname}' accumulator")


def ints(v: Any, nd: int) -> tuple[int, ...]:
    """A Keras size argument (an int or a list) as nd ints."""
    t = tuple(int(x) for x in (v if isinstance(v, (list, tuple)) else [v] * nd))
    return t if len(t) == nd else t[:1] * nd


def conv_geometry(lname: str, cls: str, lc: dict[str, Any], shape: tuple[int, ...],
                   kernel: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Strides and explicit pads of an HGQ convolution (channels last, no dilation or groups); else one line."""
    nd = len(kernel)
    if lc.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedOpError(f"{cls} data_format={lc['data_format']}", lname, list(SUPPORTED_HGQ_LAYERS),
                                 "bondflow's HGQ reader (channels_last only)")
    for k in ("dilation_rate", "groups"):
        if any(d != 1 for d in ints(lc.get(k, 1), nd)):
            raise UnsupportedOpError(f"{cls} {k}={lc[k]}", lname, list(SUPPORTED_HGQ_LAYERS),
                                     f"bondflow's HGQ reader ({k} must be 1)")
    strides = ints(lc.get("strides", 1), nd)
    padding = str(lc.get("padding", "valid"))
    if padding not in ("valid", "same"):
        raise UnsupportedOpError(f"{cls} padding={padding}", lname, list(SUPPORTED_HGQ_LAYERS),
                                 "bondflow's HGQ reader (valid or same padding only)")
    pads = tuple(same_pads(n, k, st) for n, k, st in zip(shape[:-1], kernel, strides)) if padding == "same" \
        else ((0, 0),) * nd
    return strides, pads


def pool_op(lname: str, cls: str, lc: dict[str, Any], shape: tuple[int, ...], cur: str, xt: FixedType, name: str) -> Pool:
    """Max pooling (exact, the input's type) or average pooling (an exact mean: log2(window) more fraction bits);
    global pooling averages or maxes each channel over the whole image (a vector of channels)."""
    nd = 1 if cls.endswith("1D") else 2
    if len(shape) != nd + 1 or lc.get("data_format", "channels_last") not in (None, "channels_last"):
        raise UnsupportedOpError(f"{cls} on a tensor of shape {shape}", lname, list(SUPPORTED_HGQ_LAYERS),
                                 f"bondflow's HGQ reader (it needs a {nd}-D channels-last input)")
    if "Global" in cls:
        if lc.get("keepdims", False):
            raise UnsupportedOpError(f"{cls} keepdims=True", lname, list(SUPPORTED_HGQ_LAYERS),
                                     "bondflow's HGQ reader (keepdims=False: a vector of channels)")
        n = int(np.prod(shape[:-1]))
        rt = xt if POOLS[cls] == "max" else FixedType(xt.width + n.bit_length() - 1, xt.int_bits, signed=xt.signed)
        return Pool(name=name, input=cur, result_type=rt, function=POOLS[cls], pool=(0,) * nd, strides=(1,) * nd,
                    pads=((0, 0),) * nd)
    pool = ints(lc.get("pool_size", 2), nd)
    strides = ints(lc.get("strides") or pool, nd)
    padding = str(lc.get("padding", "valid"))
    function = POOLS[cls]
    if padding not in ("valid", "same") or (padding == "same" and function == "average"):
        raise UnsupportedOpError(f"{cls} padding={padding}", lname, list(SUPPORTED_HGQ_LAYERS),
                                 "bondflow's HGQ reader (valid padding; same for max pooling)")
    pads = tuple(same_pads(n, k, st) for n, k, st in zip(shape[:-1], pool, strides)) if padding == "same" \
        else ((0, 0),) * nd
    rt = xt
    if function == "average":
        extra = int(np.prod(pool)).bit_length() - 1
        rt = FixedType(xt.width + extra, xt.int_bits, signed=xt.signed)
    return Pool(name=name, input=cur, result_type=rt, function=function, pool=pool, strides=strides, pads=pads)

"""The golden model: bit-exact integer execution of a Graph, vectorized over the batch."""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Callable

import numpy as np

from ..errors import QuantizationError, UnsupportedOpError
from .graph import Graph
from .ops import Activation, Dense, Elu, ExpLinear, Flatten, Op, ParamRelu, PRelu, Selu, Sigmoid, Softmax, TableActivation, Tanh, Threshold
from .merge import ELEMENTWISE, Merge, combine, merge_result_type
from .element_quant import ElementQuant, element_quant_kernel
from .tensor_kernels import conv_kernel, pool_kernel, upsample_kernel
from .tensor_ops import Conv, Pool, Upsample
from .types import FixedType, Overflow

__all__ = ["run", "run_raw", "trace_raw", "quantize_input", "merge_raw"]

Kernel = Callable[[Op, np.ndarray, FixedType], np.ndarray]


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Real-valued inputs [batch, n] -> raw integers of the graph's input type."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    x = x.reshape(x.shape[0], -1)
    if x.shape[1] != graph.input.size:
        raise QuantizationError(f"input must have {graph.input.size} features per sample, not {x.shape[1]}")
    return graph.input.type.quantize(x)


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Real inputs -> real outputs, exactly as the hardware computes them (values on the output type's grid)."""
    return graph.output.type.to_float(run_raw(graph, quantize_input(graph, x)))


#: Values (int64) the golden model may hold at once: about 512 MB. A batch of big images runs in chunks of rows
#: (100 samples of a 512x512 CNN held every tensor at once and took 18 GB).
CHUNK_VALUES = 1 << 26


def rows_per_chunk(graph: Graph) -> int:
    """Samples run together so that every tensor of the graph (and a convolution's window gather) fits CHUNK_VALUES."""
    shapes = graph.shapes()
    per_sample = graph.input.size + sum(int(np.prod(shapes[op.name])) for op in graph.ops)
    for op in graph.ops:
        if isinstance(op, Conv):
            positions = int(np.prod(shapes[op.name][:-1]))
            per_sample += positions * int(np.prod(op.kernel)) * int(shapes[op.input][-1])
    return max(1, CHUNK_VALUES // max(per_sample, 1))


def run_raw(graph: Graph, x_raw: np.ndarray) -> np.ndarray:
    """Raw input integers [batch, n_in] -> raw output integers [batch, n_out] (in chunks of rows for big images)."""
    x = np.asarray(x_raw, dtype=np.int64)
    if x.ndim == 1:
        x = x[None, :]
    rows, last = rows_per_chunk(graph), graph.ops[-1].name
    if len(x) <= rows:
        return trace_raw(graph, x)[last]
    return np.concatenate([trace_raw(graph, x[i:i + rows])[last] for i in range(0, len(x), rows)])


def trace_raw(graph: Graph, x_raw: np.ndarray) -> dict[str, np.ndarray]:
    """Raw values of every tensor, by node name (for per-layer diffs)."""
    x = np.asarray(x_raw, dtype=np.int64)
    if x.ndim == 1:
        x = x[None, :]
    t = graph.input.type
    if x.shape[1:] != (graph.input.size,):
        raise QuantizationError(f"raw input must have shape [batch, {graph.input.size}], not {list(x.shape)}")
    if x.size and (x.min() < t.min_raw or x.max() > t.max_raw):
        raise QuantizationError(f"raw inputs must lie in {t.min_raw}..{t.max_raw} for {t}, not {x.min()}..{x.max()}")
    values = {graph.input.name: x}
    types = graph.types()
    shapes = graph.shapes()
    # Shaped ops read their input's per-sample shape (samples travel flat, channels last).
    shaped = {Conv: conv_kernel(_dense, shapes), Pool: pool_kernel(shapes), Upsample: upsample_kernel(shapes)}
    for op in graph.ops:
        kernel = _KERNELS.get(type(op)) or shaped.get(type(op))
        if kernel is None and not isinstance(op, Merge):
            raise UnsupportedOpError(op.kind, op.name, [k.kind for k in (*_KERNELS, *shaped, Merge)], "the golden model")
        if isinstance(op, Merge):
            values[op.name] = merge_raw(op, [values[s] for s in op.inputs], [types[s] for s in op.inputs],
                                     [shapes[s] for s in op.inputs])
            continue
        values[op.name] = kernel(op, values[op.input], types[op.input])
    return values


def merge_raw(op: Merge, xs: list[np.ndarray], xts: list[FixedType], in_shapes: list[tuple[int, ...]]) -> np.ndarray:
    """Element-wise merges compute exactly (inputs aligned to the finest fraction bits by a left shift; products
    keep every bit), then cast once; concatenate casts each input (hls4ml's ``res[i] = data[i]``) and joins them."""
    if op.function in ELEMENTWISE:
        exact = merge_result_type(op.function, xts)
        if exact.width > 62:
            what = {"add": "sum", "subtract": "difference", "multiply": "product"}.get(op.function, "values")
            raise QuantizationError(f"{op.function} '{op.name}' exact {what} must fit 62 bits, not need {exact.width}; narrow the types")
        # a product keeps every fraction bit; the others align their inputs to the finest grid first (exact)
        al = xs if op.function == "multiply" else [x << (exact.frac_bits - t.frac_bits) for x, t in zip(xs, xts)]
        return op.result_type.requantize(combine(op.function, al), exact.frac_bits)
    parts = [op.result_type.requantize(x, t.frac_bits).reshape((len(x),) + tuple(s)) for x, t, s in zip(xs, xts, in_shapes)]
    return np.concatenate(parts, axis=1 + op.axis).reshape(len(xs[0]), -1)


def _dense(op: Dense, x: np.ndarray, xt: FixedType) -> np.ndarray:
    acc_t = op.accum_type
    prod_frac = xt.frac_bits + op.weight_type.frac_bits
    acc = acc_t.requantize(np.broadcast_to(op.bias, (x.shape[0], op.n_out)), op.bias_type.frac_bits)
    need = xt.width + op.weight_type.width + max(op.n_in, 1).bit_length() + max(acc_t.frac_bits - prod_frac, 0)
    if need > 62:
        raise QuantizationError(f"dense '{op.name}' exact sums must fit 62 bits, not need {need}; narrow the types")
    exact_sum = acc_t.frac_bits >= prod_frac and acc_t.overflow is Overflow.WRAP
    if exact_sum:
        # Wrapping adds are modular, so one exact sum then one cast equals hls4ml's cast after every add.
        shift = acc_t.frac_bits - prod_frac
        total = acc + (_exact_matmul(x, op.weight, need) << shift)
        return op.result_type.requantize(acc_t.requantize(total, acc_t.frac_bits), acc_t.frac_bits)
    for i in range(op.n_in):  # hls4ml's dense_latency: mult = (accum_t)(x * w); acc += mult, input by input
        prod = acc_t.requantize(x[:, i:i + 1] * op.weight[i][None, :], prod_frac)
        acc = acc_t.requantize(acc + prod, acc_t.frac_bits)
    return op.result_type.requantize(acc, acc_t.frac_bits)


def _exact_matmul(x: np.ndarray, w: np.ndarray, bits: int) -> np.ndarray:
    """Integer x @ w; through float64 BLAS when every partial sum fits the 53-bit mantissa (exact, ~10x faster)."""
    if bits <= 52:
        return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return x @ w


def _activation(op: Activation, x: np.ndarray, xt: FixedType) -> np.ndarray:
    if op.function == "relu":
        x = np.maximum(x, 0)
    return op.result_type.requantize(x, xt.frac_bits)


def param_relu_kernel(op: ParamRelu, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """Exact bounded/leaky ReLU: both branches on the grid of x * alpha (exact), one cast, the clamp to cast(max)."""
    af = op.alpha_type.frac_bits if op.alpha_type is not None else 0
    if op.alpha_type is not None and xt.width + op.alpha_type.width > 62:
        raise QuantizationError(f"param_relu '{op.name}' exact products must fit 62 bits, not {xt.width} + {op.alpha_type.width}")
    v = np.where(x >= 0, x << af, x * np.int64(op.alpha_raw))
    y = op.result_type.requantize(v, xt.frac_bits + af)
    thr = op.threshold_raw(xt)
    return y if thr is None else np.where(x > thr, np.int64(op.max_raw()), y)


def _flatten(op: Flatten, x: np.ndarray, xt: FixedType) -> np.ndarray:
    return op.result_type.requantize(x, xt.frac_bits)


def sigmoid_table(op: Sigmoid) -> np.ndarray:
    """hls4ml's sigmoid table, raw in ``op.table_type``: float32 arithmetic as its C++ does, then the cast."""
    n = op.table_size
    ii = np.arange(n, dtype=np.float64)
    x = (2 * 8.0 * (ii - n / 2.0) / n).astype(np.float32)
    e = np.exp(-x).astype(np.float32)
    y = (1.0 / (np.float32(1) + e).astype(np.float64)).astype(np.float32)
    return op.table_type.quantize(y.astype(np.float64))


def prelu_kernel(op: PRelu, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """Exact PReLU: x, or x times its element's slope, on the grid of x * alpha (exact), then the one cast."""
    af = op.alpha_type.frac_bits
    if xt.width + op.alpha_type.width > 62:
        raise QuantizationError(f"prelu '{op.name}' exact products must fit 62 bits, not {xt.width} + {op.alpha_type.width}")
    v = np.where(x >= 0, x << af, x * op.slopes(x.shape[1])[None, :])
    return op.result_type.requantize(v, xt.frac_bits + af)


def _libm_float(name: str, x: np.ndarray, fallback: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The C library's float function ``name`` (tanhf, expf) at float32 points, as hls4ml's C++ calls it; without a
    loadable libm, ``fallback`` in float64 rounded to float32."""
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        f = getattr(libm, name)
        f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
        return np.array([f(float(v)) for v in x], dtype=np.float32)
    except (OSError, AttributeError):
        return fallback(x.astype(np.float64)).astype(np.float32)


@lru_cache(maxsize=8)
def _libm_tanhf_table(n: int) -> np.ndarray:
    """The C library's tanhf at hls4ml's table points (float32 in, float32 out), as hls4ml's C++ computes them.

    glibc before 2.41 does not round tanhf correctly: a float64 tanh rounded to float32 differs from it in ~15 % of
    entries, which a table type with 13 or more fraction bits can see."""
    x = (2 * 4.0 * (np.arange(n, dtype=np.float64) - n / 2.0) / n).astype(np.float32)
    y = _libm_float("tanhf", x, np.tanh)
    y.setflags(write=False)
    return y


@lru_cache(maxsize=8)
def _libm_expm1_points(n: int) -> np.ndarray:
    """expf(v) - 1. in double at hls4ml's ELU/SELU table points v = (float)(-8.0 * i / N), float64 (exact)."""
    x = (-8.0 * np.arange(n, dtype=np.float64) / n).astype(np.float32)
    y = _libm_float("expf", x, np.exp).astype(np.float64) - 1.0
    y.setflags(write=False)
    return y


def exp_linear_table(op: ExpLinear) -> np.ndarray:
    """hls4ml's init_elu_table / init_selu_table, raw in ``op.table_type``: the float the C++ function returns, then
    the cast. SELU scales in double (lambda * (alpha * (e^v - 1))) before that float."""
    y = _libm_expm1_points(op.table_size)
    if isinstance(op, Selu):
        y = Selu.LAMBDA * (Selu.ALPHA * y)
    return op.table_type.quantize(y.astype(np.float32).astype(np.float64))


def exp_linear_index(op: ExpLinear, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """min(floor(-x * N / 8), N - 1) for x < 0 (hls4ml's int index = x * N / -8, truncated: positive), else 0."""
    neg = -np.minimum(x, 0) * np.int64(op.table_size)  # raw, xt.frac_bits fraction bits; >= 0
    k = (op.RANGE.bit_length() - 1) + xt.frac_bits  # divide by 8 * 2^frac
    q = neg >> k if k >= 0 else neg << (-k)
    return np.minimum(q, op.table_size - 1)


def exp_linear_kernel(op: ExpLinear, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """ELU: cast(x) | cast(alpha * table[i]); SELU: cast(lambda * x) | cast(table[i]); exact products, one cast each."""
    t = exp_linear_table(op)[exp_linear_index(op, x, xt)]
    yt = op.result_type
    if isinstance(op, Elu):
        neg = yt.requantize(t * np.int64(op.alpha_raw), op.table_type.frac_bits + op.alpha_type.frac_bits)
        pos = yt.requantize(x, xt.frac_bits)
    else:
        if xt.width + Selu.LAMBDA_TYPE.width > 62:
            raise QuantizationError(f"selu '{op.name}' exact products must fit 62 bits, not {xt.width} + {Selu.LAMBDA_TYPE.width}")
        neg = yt.requantize(t, op.table_type.frac_bits)
        pos = yt.requantize(x * np.int64(op.lambda_raw), xt.frac_bits + Selu.LAMBDA_TYPE.frac_bits)
    return np.where(x >= 0, pos, neg)


def tanh_table(op: Tanh) -> np.ndarray:
    """hls4ml's tanh table, raw in ``op.table_type``: tanhf of the float32 point, then the cast (init_tanh_table)."""
    return op.table_type.quantize(_libm_tanhf_table(op.table_size).astype(np.float64))


def activation_table(op: TableActivation) -> np.ndarray:
    """The table of a Sigmoid or Tanh op, raw in ``op.table_type``."""
    return tanh_table(op) if isinstance(op, Tanh) else sigmoid_table(op)


def table_index(op: TableActivation, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """index = trunc(x * N / (2 * half_range)) + N / 2, clipped to the table (hls4ml's nnet::sigmoid and nnet::tanh)."""
    n, span = op.table_size, 2 * op.half_range
    num = x * n  # raw, frac bits xt.frac_bits; divide by span * 2^frac and truncate toward zero
    if xt.frac_bits < 0:
        up = (x << (-xt.frac_bits)) * n
        q = np.abs(up) // span * np.sign(up)
    else:
        q = np.abs(num) // (span << xt.frac_bits) * np.sign(num)
    return np.clip(q + n // 2, 0, n - 1)


def _table_activation(op: TableActivation, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """result = cast(table[index]): the table entry, already in ``table_type``, cast to the result type."""
    return op.result_type.requantize(activation_table(op)[table_index(op, x, xt)], op.table_type.frac_bits)


#: hls4ml 1.3's fixed defaults for the softmax sum (``accum_t``) and the inverse-table address (``inv_inp_t``).
SOFTMAX_ACCUM_TYPE = FixedType(18, 8, rounding="RND", overflow="SAT")


def _float32_exp(x: np.ndarray) -> np.ndarray:
    """std::exp(float): correctly rounded float32 of e^x (glibc's expf, within its < 0.502 ulp error)."""
    return np.exp(np.asarray(x, dtype=np.float32).astype(np.float64)).astype(np.float32)


def softmax_sizes(op: Softmax, xt: FixedType) -> tuple[int, int, FixedType]:
    """(exp table size, inverse table size, exp-table address type), after hls4ml's size fixes."""
    size = op.table_size
    cap = 1 << min(xt.width, op.inv_table_type.width)  # hls4ml's fix_softmax_table_size pass
    size = min(size, cap)
    if op.implementation == "stable":
        s = int(xt.signed)
        addr = FixedType(xt.width - s, xt.int_bits - s, signed=False)  # inp_norm_t = ap_ufixed<W-s, I-s>
        exp_size = min(size, 1 << addr.width) if xt.signed else size
        return exp_size, size, addr
    return size, size, xt


def _table_top_bits(raw: np.ndarray, t: FixedType, size: int) -> np.ndarray:
    """softmax_idx_from_real_val: the top log2(size) bits of the raw bit pattern, as an unsigned index."""
    n = (size - 1).bit_length()
    bits = np.asarray(raw, dtype=np.int64) & ((np.int64(1) << t.width) - 1)
    return bits >> (t.width - n)


def _table_values(t: FixedType, size: int) -> np.ndarray:
    """softmax_real_val_from_idx for every index: the value whose top log2(size) bits are the index (float32)."""
    n = (size - 1).bit_length()
    raw = np.arange(size, dtype=np.int64) << (t.width - n)
    if t.signed:
        raw = np.where(raw >= (np.int64(1) << (t.width - 1)), raw - (np.int64(1) << t.width), raw)
    return t.to_float(raw).astype(np.float32)


def softmax_tables(op: Softmax, xt: FixedType) -> tuple[np.ndarray, np.ndarray]:
    """hls4ml's exp and inverse tables, raw in ``op.exp_table_type`` / ``op.inv_table_type``."""
    exp_size, inv_size, addr = softmax_sizes(op, xt)
    x = _table_values(addr, exp_size)
    if op.implementation == "stable":
        x = -x  # the table is addressed by x_max - x
    exp_t = op.exp_table_type.quantize(_float32_exp(x).astype(np.float64))
    inv_x = _table_values(SOFTMAX_ACCUM_TYPE, inv_size)
    with np.errstate(divide="ignore"):
        inv = (np.float32(1) / inv_x).astype(np.float32).astype(np.float64)
    # 1/0 = inf: ap_fixed saturates or wraps it like any too-large value; the stable sum never reaches index 0.
    t = op.inv_table_type
    inv = np.where(np.isfinite(inv), inv, t.max_value)
    return exp_t, t.quantize(inv)


def _reduce_sum(v: list[np.ndarray], t: FixedType) -> np.ndarray:
    """nnet::reduce with Op_add<t>: a balanced tree, left part the largest power of two below n, cast per add."""
    n = len(v)
    if n == 1:
        return v[0]
    left = 1 << ((n - 1).bit_length() - 1)
    return t.requantize(_reduce_sum(v[:left], t) + _reduce_sum(v[left:], t), t.frac_bits)


def _softmax(op: Softmax, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """hls4ml's softmax_stable / softmax_latency: exp table, tree sum, inverse table, one product per output."""
    exp_size, inv_size, addr = softmax_sizes(op, xt)
    exp_table, inv_table = softmax_tables(op, xt)
    acc = SOFTMAX_ACCUM_TYPE
    if op.implementation == "stable":
        d = x.max(axis=1, keepdims=True) - x  # exact, then cast to inp_norm_t (same fraction bits: wraps only)
        d = addr.requantize(d, xt.frac_bits)
        idx = _table_top_bits(d, addr, exp_size)
    else:
        idx = _table_top_bits(x, xt, exp_size)
    e = acc.requantize(exp_table[idx], op.exp_table_type.frac_bits)
    total = _reduce_sum([e[:, i] for i in range(e.shape[1])], acc)
    inv = inv_table[_table_top_bits(total, acc, inv_size)]  # acc_t -> inv_inp_t: the same type here
    prod = e * inv[:, None]
    return op.result_type.requantize(prod, acc.frac_bits + op.inv_table_type.frac_bits)


def _threshold(op: Threshold, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """Count the thresholds each raw input reaches (integer compares: exact), then one level per count."""
    count = (x[:, :, None] >= op.thresholds[None, :, :]).sum(axis=2, dtype=np.int64)
    return op.offset + op.step * count


_KERNELS: dict[type, Kernel] = {Dense: _dense, Activation: _activation, ParamRelu: param_relu_kernel, PRelu: prelu_kernel,
                                Flatten: _flatten,
                                Softmax: _softmax, Sigmoid: _table_activation, Tanh: _table_activation, Elu: exp_linear_kernel,
                                Selu: exp_linear_kernel, Threshold: _threshold,
                                ElementQuant: element_quant_kernel}

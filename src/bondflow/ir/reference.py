"""The golden model: bit-exact integer execution of a Graph, vectorized over the batch."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import QuantizationError, UnsupportedOpError
from .graph import Graph
from .ops import Activation, Dense, Flatten, Op, Sigmoid, Softmax
from .types import FixedType, Overflow

__all__ = ["run", "run_raw", "trace_raw", "quantize_input"]

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


def run_raw(graph: Graph, x_raw: np.ndarray) -> np.ndarray:
    """Raw input integers [batch, n_in] -> raw output integers [batch, n_out]."""
    return trace_raw(graph, x_raw)[graph.ops[-1].name]


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
    for op in graph.ops:
        kernel = _KERNELS.get(type(op))
        if kernel is None:
            raise UnsupportedOpError(op.kind, op.name, [k.kind for k in _KERNELS], "the golden model")
        values[op.name] = kernel(op, values[op.input], types[op.input])
    return values


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
    for i in range(op.n_in):  # hls4ml's accumulation order: input by input, cast after every add
        prod = x[:, i:i + 1] * op.weight[i][None, :]
        shift = acc_t.frac_bits - prod_frac
        aligned = (acc << (-shift)) if shift < 0 else acc
        prod_aligned = (prod << shift) if shift > 0 else prod
        acc = acc_t.requantize(aligned + prod_aligned, max(acc_t.frac_bits, prod_frac))
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


def _sigmoid(op: Sigmoid, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """index = trunc(x * N / 16) + N / 2, clipped; result = cast(table[index]) (hls4ml's nnet::sigmoid)."""
    n = op.table_size
    num = x * n  # raw, frac bits xt.frac_bits; divide by 16 * 2^frac and truncate toward zero
    den = 16 << xt.frac_bits if xt.frac_bits >= 0 else None
    if den is None:
        q = (x << (-xt.frac_bits)) * n // 16
        q = np.where((x < 0) & ((x << (-xt.frac_bits)) * n % 16 != 0), q + 1, q)
    else:
        q = np.abs(num) // den * np.sign(num)
    idx = np.clip(q + n // 2, 0, n - 1)
    return op.result_type.requantize(sigmoid_table(op)[idx], op.table_type.frac_bits)


def _unsupported_table(op: Op, x: np.ndarray, xt: FixedType) -> np.ndarray:
    raise UnsupportedOpError(op.kind, op.name, ["dense", "activation", "sigmoid", "flatten"], "the golden model yet")


_KERNELS: dict[type, Kernel] = {Dense: _dense, Activation: _activation, Flatten: _flatten,
                                Softmax: _unsupported_table, Sigmoid: _sigmoid}

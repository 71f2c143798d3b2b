"""Per-layer precision from calibration data: each default-typed result gets the integer bits its float range needs."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError
from .graph import Graph
from .merge import Merge, combine, merge_result_type
from .ops import Activation, Dense, Elu, Flatten, ParamRelu, PRelu, Selu, Sigmoid, Softmax, Tanh
from .tensor_kernels import patches
from .tensor_ops import Conv, Pool, pool_result_type
from .types import FixedType

__all__ = ["float_trace", "auto_precision", "PrecisionChoice", "HEADROOM_BITS"]

#: One integer bit above the largest calibration value, so inputs slightly beyond the calibration set do
#: not overflow (the default precision wraps).
HEADROOM_BITS = 1


@dataclass(frozen=True)
class PrecisionChoice:
    """What auto-precision chose for one op: the range it saw and the type it gave the op's result."""

    op: str
    min_value: float
    max_value: float
    before: str
    after: str

    def to_dict(self) -> dict[str, object]:
        return {"op": self.op, "min": self.min_value, "max": self.max_value, "before": self.before, "after": self.after}


def float_trace(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor computed in float64 with the graph's (quantized) constants and no result casts: the float model's ranges."""
    values = {graph.input.name: np.asarray(x, dtype=np.float64).reshape(len(x), -1)}
    shapes = graph.shapes()
    for op in graph.ops:
        v = values[op.input]
        if isinstance(op, Merge):
            xs = [values[s].reshape((len(v),) + shapes[s]) for s in op.inputs]
            out = np.concatenate(xs, axis=1 + op.axis) if op.function == "concatenate" else combine(op.function, xs)
            values[op.name] = out.reshape(len(v), -1)
        elif isinstance(op, Dense):
            w = op.weight_type.to_float(op.weight)
            b = op.bias_type.to_float(op.bias)
            values[op.name] = v @ w + b
        elif isinstance(op, Activation):
            values[op.name] = np.maximum(v, 0) if op.function == "relu" else v
        elif isinstance(op, ParamRelu):
            y = np.where(v >= 0, v, op.alpha * v)
            values[op.name] = y if op.max_value is None else np.minimum(y, op.max_value)
        elif isinstance(op, Softmax):
            e = np.exp(v - v.max(axis=1, keepdims=True))
            values[op.name] = e / e.sum(axis=1, keepdims=True)
        elif isinstance(op, Sigmoid):
            values[op.name] = 1.0 / (1.0 + np.exp(-v))
        elif isinstance(op, Tanh):
            values[op.name] = np.tanh(v)
        elif isinstance(op, PRelu):
            a = op.alpha_type.to_float(op.slopes(v.shape[1]))
            values[op.name] = np.where(v >= 0, v, a[None, :] * v)
        elif isinstance(op, Elu):
            values[op.name] = np.where(v >= 0, v, op.alpha * np.expm1(np.minimum(v, 0)))
        elif isinstance(op, Selu):
            values[op.name] = Selu.LAMBDA * np.where(v >= 0, v, Selu.ALPHA * np.expm1(np.minimum(v, 0)))
        elif isinstance(op, Flatten):
            values[op.name] = v
        elif isinstance(op, Conv):
            xs = v.reshape((len(v),) + shapes[op.input])
            p = patches(xs, op.kernel, op.strides, op.pads)
            w = op.weight_type.to_float(op.weight).reshape(-1, op.c_out)
            values[op.name] = (p.reshape(-1, w.shape[0]) @ w + op.bias_type.to_float(op.bias)).reshape(len(v), -1)
        elif isinstance(op, Pool):
            win = op.window(shapes[op.input])
            strides = tuple(s if q else n for s, q, n in zip(op.strides, op.pool, shapes[op.input][:-1]))
            p = patches(v.reshape((len(v),) + shapes[op.input]), win, strides, op.pads, fill=-np.inf if op.function == "max" else 0)
            axes = tuple(range(1 + len(win), 1 + 2 * len(win)))
            values[op.name] = (p.max(axis=axes) if op.function == "max" else p.mean(axis=axes)).reshape(len(v), -1)
        else:
            raise ConfigError(f"auto-precision must know op kind '{op.kind}', not meet it unknown ('{op.name}')")
    return values


def _int_bits(lo: float, hi: float, signed: bool) -> int:
    """Smallest integer bits (sign included when signed) whose range holds [lo, hi]."""
    m = max(abs(lo), abs(hi), 2.0 ** -16)
    bits = max(int(np.floor(np.log2(m))) + 1, 0)  # 2^bits > m
    return bits + (1 if signed else 0)


def auto_precision(graph: Graph, x: np.ndarray, default: FixedType) -> tuple[Graph, list[PrecisionChoice]]:
    """Retype every op result that took ``default``: integer bits from its calibration range (+ headroom),
    fraction bits from ``default``; quantizer-set types are kept. Exact Dense accumulators make this safe."""
    trace = float_trace(graph, x)
    choices: list[PrecisionChoice] = []
    ops = []
    for op in graph.ops:
        if op.result_type != default or isinstance(op, (Flatten, Pool)):
            ops.append(op)
            continue
        v = trace[op.name]
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
        ib = _int_bits(lo, hi, default.signed) + HEADROOM_BITS
        width = ib + default.frac_bits
        if width < 2:
            width, ib = 2, 2 - default.frac_bits
        t = FixedType(width, ib, signed=default.signed, rounding=default.rounding, overflow=default.overflow)
        choices.append(PrecisionChoice(op.name, lo, hi, str(op.result_type), str(t)))
        ops.append(replace(op, result_type=t))
    # A Flatten or max pool carries its input's type, an average pool the exact mean of it: follow retyped inputs.
    types = {graph.input.name: graph.input.type}
    shapes = graph.shapes()
    fixed = []
    old = graph.types()
    for op in ops:
        xt = types[op.input]
        if isinstance(op, Merge):  # an exact merge stays exact for its retyped inputs; a declared type is kept
            if op.result_type == merge_result_type(op.function, [old[s] for s in op.inputs]):
                op = replace(op, result_type=merge_result_type(op.function, [types[s] for s in op.inputs]))
        elif isinstance(op, Flatten) or (isinstance(op, Pool) and op.function == "max"):
            op = replace(op, result_type=xt) if op.result_type != xt else op
        elif isinstance(op, Pool):
            op = replace(op, result_type=pool_result_type(op.function, xt, int(np.prod(op.window(shapes[op.input])))))
        types[op.name] = op.result_type
        fixed.append(op)
    meta = dict(graph.meta, auto_precision=[c.to_dict() for c in choices])
    return Graph(name=graph.name, input=graph.input, ops=tuple(fixed), meta=meta), choices

"""bondflow's model of BondMachine arithmetic, in the order its neurons compute, for exact RTL checks."""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from ..errors import ConfigError, QuantizationError
from ..ir.graph import Graph
from ..ir.types import FixedType
from .netjson import BMNet, plan
from .numbers import NumberType, parse_number_type

__all__ = ["run", "run_net", "reference_for", "reference_name", "input_to_bm", "bm_to_output", "fps_mult", "fps_div",
           "wrap", "softmax_neuron"]


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` (registers are ``bits`` wide; nothing saturates)."""
    m = np.int64(1) << np.int64(bits)
    x = np.asarray(x, dtype=np.int64) & (m - 1)
    return np.where(x >> np.int64(bits - 1), x - m, x)


def fps_mult(a: np.ndarray, b: np.ndarray, nt: NumberType) -> np.ndarray:
    """multfps: full signed product, arithmetic shift right by f (floor), low Rsize bits kept."""
    return wrap((np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)) >> np.int64(nt.frac), nt.bits)


def fps_div(a: np.ndarray, b: np.ndarray, nt: NumberType) -> np.ndarray:
    """divfps: (a * 2^f) / b on magnitudes, truncated toward zero, sign applied, low Rsize bits kept. A zero divisor
    has no defined result (X in the RTL, a panic in BondMachine's simulator): it is an error here."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if np.any(b == 0):
        raise QuantizationError(f"a BondMachine divfps divisor must be non-zero, not 0 ({nt.name})")
    q = (np.abs(a) << np.int64(nt.frac)) // np.abs(b)
    return wrap(np.where((a < 0) ^ (b < 0), -q, q), nt.bits)


def softmax_neuron(x: np.ndarray, kind: str, expprec: int, nt: NumberType) -> np.ndarray:
    """Every softmax neuron's output [batch, n] from the logits x [batch, n] (fps raw), in frag-softmax.basm's order:
    e(x) = 1 + sum_k x^k / k! with x^k, k! by multfps and each term by divfps; out_j = e(x_j) / sum_i e(x_i), all wrapping.
    ``softmaxq``: 6 + 6x + 3x^2 + x^3 per input, out_j = that of x_j (no normalisation)."""
    one = np.int64(1) << np.int64(nt.frac)

    def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return wrap(a + b, nt.bits)

    if kind == "softmaxq":
        six, three = 6 * one, 3 * one
        x2 = fps_mult(fps_mult(three, x, nt), x, nt)
        x3 = fps_mult(fps_mult(fps_mult(one, x, nt), x, nt), x, nt)
        return add(add(add(six, fps_mult(six, x, nt)), x2), x3)
    e = np.full(x.shape, one, dtype=np.int64)
    power, fact, k = np.full(x.shape, one, dtype=np.int64), one, one
    for _ in range(expprec):
        power = fps_mult(power, x, nt)
        fact = fps_mult(fact, k, nt)
        k = add(k, one)
        e = add(e, fps_div(power, np.full(x.shape, fact), nt))
    total = np.zeros(x.shape[0], dtype=np.int64)
    for i in range(x.shape[1]):  # r8: the serial sum of every input's exponential
        total = add(total, e[:, i])
    return fps_div(e, np.repeat(total[:, None], x.shape[1], axis=1), nt)


def input_to_bm(x_raw: np.ndarray, in_type: FixedType, nt: NumberType) -> np.ndarray:
    """What the wrapper feeds BondMachine: graph input raw -> fps raw (shift; floor if fewer fractional bits; wrap)."""
    d = int(nt.frac) - in_type.frac_bits
    x = np.asarray(x_raw, dtype=np.int64)
    return wrap(x << np.int64(d) if d >= 0 else x >> np.int64(-d), nt.bits)


def bm_to_output(y_bm: np.ndarray, out_type: FixedType, nt: NumberType) -> np.ndarray:
    """What the wrapper returns: fps raw -> graph output raw (shift; floor if fewer fractional bits; wrap)."""
    d = out_type.frac_bits - int(nt.frac)
    y = np.asarray(y_bm, dtype=np.int64)
    y = y << np.int64(d) if d >= 0 else y >> np.int64(-d)
    if not out_type.signed:
        return y & ((np.int64(1) << np.int64(out_type.width)) - 1)
    return wrap(y, out_type.width)


def run_net(net: BMNet, x_bm: np.ndarray) -> np.ndarray:
    """fps raw inputs [batch, n_in] -> fps raw outputs, neuron by neuron as the fragments compute:
    each weight CP multiplies (multfps), the neuron adds inputs then the bias (addfps, wrapping), ReLU tests the sign bit.

    This is the RTL's behaviour. ``bondmachine -sim`` computes the same values because bondflow's ReLU shifts only r0,
    the one register its simulator's ``cir`` gets right (docs/bondmachine.md, known bugs)."""
    nt = net.number_type
    if not nt.is_fixed:
        raise ConfigError(f"the exact BondMachine model needs an fps number type, not {nt.name}; use run_float")
    x = np.asarray(x_bm, dtype=np.int64)
    for layer in net.layers:
        keep = BMNet.keep(layer)
        acc = np.zeros((x.shape[0], layer.weight.shape[1]), dtype=np.int64)
        for i in range(layer.weight.shape[0]):
            p = fps_mult(x[:, i:i + 1], layer.weight[i][None, :], nt)
            acc = acc + np.where(keep[i][None, :], p, 0)
        acc = wrap(acc + layer.bias[None, :], nt.bits)  # modular adds: the order of the serial sum does not matter
        if layer.neuron == "relu":
            acc = np.where(acc < 0, 0, acc)
        x = acc
    one = np.int64(1) << np.int64(nt.frac)
    if net.softmax:
        x = softmax_neuron(fps_mult(x, one, nt), net.softmax, net.expprec, nt)  # through weight-1 CPs (exact)
    return fps_mult(x, one, nt)  # the output terminals' weight-1 CPs (exact)


def run_float(net: BMNet, x: np.ndarray) -> np.ndarray:
    """float32/float16 model in the neurons' order (products, serial sum from input 0, then the bias); IEEE round-to-nearest."""
    dt = np.float32 if net.number_type.bits == 32 else np.float16
    v = np.asarray(x, dtype=dt)
    for layer in net.layers:
        keep = BMNet.keep(layer)
        w = layer.weight.astype(dt)
        acc = np.zeros((v.shape[0], w.shape[1]), dtype=dt)
        for i in range(w.shape[0]):
            acc = np.where(keep[i][None, :], (acc + v[:, i:i + 1] * w[i][None, :]).astype(dt), acc)
        acc = (acc + layer.bias.astype(dt)).astype(dt)
        if layer.neuron == "relu":
            acc = np.where(np.signbit(acc), dt(0), acc)
        v = acc
    return v


def run(graph: Graph, x_raw: np.ndarray, number_type: str | NumberType = "fps16f10", softmax: str = "softmax",
        expprec: int | None = None) -> np.ndarray:
    """Graph raw inputs -> graph-output-typed raw outputs, exactly as the bondmachine design (wrapper included) computes."""
    nt = number_type if isinstance(number_type, NumberType) else parse_number_type(number_type)
    net = plan(graph, nt, softmax, expprec)
    x = np.asarray(x_raw, dtype=np.int64)
    if x.ndim == 1:
        x = x[None, :]
    y = run_net(net, input_to_bm(x, graph.input.type, nt))
    return bm_to_output(y, graph.output.type, nt)


def reference_name(nt: NumberType, softmax: str | None = None, expprec: int = 0) -> str:
    """``bondmachine-fps16f10``, with ``-softmax<expprec>`` or ``-softmaxq`` when the design ends in a softmax neuron."""
    if softmax is None:
        return nt.reference_name
    return f"{nt.reference_name}-{softmax}" + (str(expprec) if softmax == "softmax" else "")


_REF = re.compile(r"^bondmachine-(\w+?)(?:-(softmaxq|softmax)(\d*))?$")


def reference_for(name: str) -> Callable[[Graph, np.ndarray], np.ndarray]:
    """``bondmachine-fps16f10[-softmax4|-softmaxq]`` -> a golden-model-like function for the sim runner's vectors."""
    m = _REF.match(name)
    if m is None:
        raise ConfigError(f"a BondMachine reference must be bondmachine-<type>[-softmax<n>|-softmaxq], not {name!r}")
    nt = parse_number_type(m.group(1))
    kind, prec = m.group(2) or "softmax", int(m.group(3)) if m.group(3) else None
    return lambda graph, x_raw: run(graph, x_raw, nt, kind, prec)

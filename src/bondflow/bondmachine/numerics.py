"""bondflow's model of BondMachine arithmetic, in the order its neurons compute, for exact RTL checks."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..ir.graph import Graph
from ..ir.types import FixedType
from .netjson import BMNet, plan
from .numbers import NumberType, parse_number_type

__all__ = ["run", "run_net", "reference_for", "input_to_bm", "bm_to_output", "fps_mult", "wrap"]


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` (registers are ``bits`` wide; nothing saturates)."""
    m = np.int64(1) << np.int64(bits)
    x = np.asarray(x, dtype=np.int64) & (m - 1)
    return np.where(x >> np.int64(bits - 1), x - m, x)


def fps_mult(a: np.ndarray, b: np.ndarray, nt: NumberType) -> np.ndarray:
    """multfps: full signed product, arithmetic shift right by f (floor), low Rsize bits kept."""
    return wrap((np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)) >> np.int64(nt.frac), nt.bits)


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


def run(graph: Graph, x_raw: np.ndarray, number_type: str | NumberType = "fps16f10") -> np.ndarray:
    """Graph raw inputs -> graph-output-typed raw outputs, exactly as the bondmachine design (wrapper included) computes."""
    nt = number_type if isinstance(number_type, NumberType) else parse_number_type(number_type)
    net = plan(graph, nt)
    x = np.asarray(x_raw, dtype=np.int64)
    if x.ndim == 1:
        x = x[None, :]
    y = run_net(net, input_to_bm(x, graph.input.type, nt))
    return bm_to_output(y, graph.output.type, nt)


def reference_for(name: str) -> Callable[[Graph, np.ndarray], np.ndarray]:
    """``bondmachine-fps16f10`` -> a golden-model-like function for the sim runner's vectors."""
    nt = parse_number_type(name.removeprefix("bondmachine-"))
    return lambda graph, x_raw: run(graph, x_raw, nt)

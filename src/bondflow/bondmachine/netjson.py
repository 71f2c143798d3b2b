"""Graph -> neuralbond's TrainedNet JSON and config: one BondMachine neuron per dense output, plus its softmax neurons."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, UnsupportedOpError
from ..ir.graph import Graph
from ..ir.ops import Activation, Dense, Flatten, Softmax
from .numbers import NumberType, encode_literal, float_literal

__all__ = ["BMLayer", "BMNet", "plan", "net_json", "config_json", "SUPPORTED", "SOFTMAX_NEURONS", "max_expprec"]

SUPPORTED = ("dense", "activation(relu)", "activation(linear)", "flatten", "softmax (last layer)")
#: BondMachine's softmax neurons: ``softmax`` (Taylor exp with ``expprec`` terms, then divided by their sum) and
#: ``softmaxq`` (6 + 6x + 3x^2 + x^3, not normalised).
SOFTMAX_NEURONS = ("softmax", "softmaxq")


def max_expprec(nt: NumberType) -> int:
    """Largest ``expprec`` whose factorials fit the register: softmax.nb divides x^k by k! held in an fps register,
    and a wrapped k! (0 for fps16f10 at k = 8) turns the division into garbage or a division by zero."""
    if not nt.is_fixed:
        return 10
    k, fact = 1, 1
    while fact * (k + 1) < 1 << (nt.bits - 1 - int(nt.frac)):
        k, fact = k + 1, fact * (k + 1)
    return k


@dataclass(frozen=True, eq=False)
class BMLayer:
    """One neuralbond layer: ``n_in -> n_out`` neurons of one neuron type, weights/biases as BondMachine sees them."""

    name: str
    neuron: str  # "linear" or "relu" (our corrected fragment)
    weight: np.ndarray  # [n_in, n_out]: raw fps integers, or float values for float types
    bias: np.ndarray  # [n_out]
    json_weight: np.ndarray  # float32 values written to the JSON (chosen so %f keeps every bit)
    json_bias: np.ndarray
    inexact: int = 0  # weights/biases the number type cannot hold exactly


@dataclass(frozen=True, eq=False)
class BMNet:
    """A graph lowered to BondMachine neurons, in one number type."""

    number_type: NumberType
    layers: tuple[BMLayer, ...]
    n_in: int
    n_out: int
    pruned_zero_weights: int = 0
    notes: list[str] = field(default_factory=list)
    softmax: str | None = None  # "softmax" or "softmaxq" after the last layer, or None
    expprec: int = 0  # Taylor terms of the softmax neuron (0 without one)

    def weights_count(self) -> int:
        return sum(int(np.count_nonzero(self.keep(l))) for l in self.layers)

    @staticmethod
    def keep(layer: BMLayer) -> np.ndarray:
        """Edges that become weight CPs: zero weights are dropped (their product is 0 in every type), but
        every neuron keeps at least one input so it still waits for a sample."""
        k = layer.weight != 0
        empty = ~k.any(axis=0)
        k[0, empty] = True
        return k


def _to_number(values: np.ndarray, frac: int, nt: NumberType) -> tuple[np.ndarray, np.ndarray, int]:
    """Raw values at ``frac`` fractional bits -> (BondMachine values, JSON float32 values, inexact count)."""
    real = values.astype(np.float64) * 2.0 ** -frac
    if nt.is_fixed:
        f = int(nt.frac)  # type: ignore[arg-type]
        raw = np.trunc(real * 2.0 ** f).astype(np.int64)  # what BondMachine would do with the exact value
        lo, hi = -(1 << (nt.bits - 1)), (1 << (nt.bits - 1)) - 1
        if raw.size and (raw.min() < lo or raw.max() > hi):
            bad = real.flat[int(np.argmax((raw < lo) | (raw > hi)))]
            raise ConfigError(f"every weight and bias must fit {nt.name} (range {lo * 2.0 ** -f}..{hi * 2.0 ** -f}), not {bad}")
        inexact = int(np.count_nonzero(raw.astype(np.float64) * 2.0 ** -f != real))
        enc = np.array([encode_literal(int(r), nt) for r in raw.flat], dtype=np.float32).reshape(raw.shape)
        return raw, enc, inexact
    enc = real.astype(np.float32)
    vals = np.array([float_literal(float(v), nt.bits) for v in enc.flat], dtype=np.float64).reshape(enc.shape)
    return vals, enc, int(np.count_nonzero(vals != real))


def plan(graph: Graph, nt: NumberType, softmax_neuron: str = "softmax", expprec: int | None = None) -> BMNet:
    """Lower ``graph``: Dense [+ ReLU/linear Activation] -> one neuron layer; a final Softmax -> one BondMachine
    softmax neuron per output (``softmax_neuron``, ``expprec`` terms, default :func:`max_expprec`); anything else is
    UnsupportedOpError."""
    layers: list[BMLayer] = []
    ops = [o for o in graph.ops if not isinstance(o, Flatten)]
    softmax: str | None = None
    if ops and isinstance(ops[-1], Softmax) and len(ops) > 1:
        if softmax_neuron not in SOFTMAX_NEURONS:
            raise ConfigError(f"softmax neuron must be one of {SOFTMAX_NEURONS}, not {softmax_neuron!r}")
        top = max_expprec(nt)
        expprec = top if expprec is None else expprec
        if not isinstance(expprec, int) or isinstance(expprec, bool) or not 1 <= expprec <= top:
            raise ConfigError(f"expprec must be an integer in 1..{top} for {nt.name} (k! of every Taylor term must fit "
                              f"the register), not {expprec!r}")
        softmax, ops = softmax_neuron, ops[:-1]
    i = 0
    while i < len(ops):
        op = ops[i]
        if not isinstance(op, Dense):
            what = f"activation({op.function})" if isinstance(op, Activation) else op.kind
            if isinstance(op, Activation) and op.function in ("relu", "linear"):
                what += " not after a dense layer"
            if isinstance(op, Softmax):
                what = "softmax not as the last layer after a dense one"
            raise UnsupportedOpError(what, op.name, SUPPORTED, "the bondmachine architecture (neuralbond neurons)")
        neuron = "linear"
        if i + 1 < len(ops) and isinstance(ops[i + 1], Activation):
            act = ops[i + 1]
            assert isinstance(act, Activation)
            if act.function not in ("relu", "linear"):
                raise UnsupportedOpError(f"activation({act.function})", act.name, SUPPORTED, "the bondmachine architecture")
            neuron = "relu" if act.function == "relu" else "linear"
            i += 1
        w, wj, wi = _to_number(op.weight, op.weight_type.frac_bits, nt)
        b, bj, bi = _to_number(op.bias, op.bias_type.frac_bits, nt)
        layers.append(BMLayer(op.name, neuron, w, b, wj, bj, wi + bi))
        i += 1
    pruned = sum(int(np.count_nonzero(~BMNet.keep(l))) for l in layers)
    return BMNet(nt, tuple(layers), graph.input.size, graph.output.size, pruned, softmax=softmax,
                 expprec=int(expprec or 0) if softmax else 0)


def net_json(net: BMNet) -> dict[str, Any]:
    """TrainedNet: layer 0 = input terminals, one layer per BMLayer, last = output terminals fed by weight-1 edges."""
    nodes: list[dict[str, Any]] = [{"Layer": 0, "Pos": p, "Type": "input", "Bias": 0.0} for p in range(net.n_in)]
    weights: list[dict[str, Any]] = []
    for k, layer in enumerate(net.layers, start=1):
        keep = BMNet.keep(layer)
        for j in range(layer.weight.shape[1]):
            nodes.append({"Layer": k, "Pos": j, "Type": layer.neuron, "Bias": float(layer.json_bias[j])})
            for i in range(layer.weight.shape[0]):
                if keep[i, j]:
                    weights.append({"Layer": k, "PosCurrLayer": j, "PosPrevLayer": i, "Value": float(layer.json_weight[i, j])})
    out_l = len(net.layers) + 1
    one = encode_literal(1 << int(net.number_type.frac), net.number_type) if net.number_type.is_fixed else 1.0
    if net.softmax:  # every softmax neuron reads every logit through a weight-1 CP (input index = logit position)
        for j in range(net.n_out):
            nodes.append({"Layer": out_l, "Pos": j, "Type": net.softmax, "Bias": 0.0})
            weights += [{"Layer": out_l, "PosCurrLayer": j, "PosPrevLayer": i, "Value": one} for i in range(net.n_out)]
        out_l += 1
    for j in range(net.n_out):
        nodes.append({"Layer": out_l, "Pos": j, "Type": "output", "Bias": 0.0})
        weights.append({"Layer": out_l, "PosCurrLayer": j, "PosPrevLayer": j, "Value": one})
    return {"Nodes": nodes, "Weights": weights}


def config_json(net: BMNet, neuron_lib: str) -> dict[str, Any]:
    """neuralbond's -config-file: ``signshift`` feeds our relu fragment (Rsize - 1); ``expprec`` (Taylor terms of
    the softmax neuron) is set explicitly because neuralbond stops without it whenever a softmax is present."""
    expprec = net.expprec or max_expprec(net.number_type)
    return {"DataType": net.number_type.name, "TypePrefix": net.number_type.prefix,
            "Params": {"signshift": str(net.number_type.bits - 1), "expprec": str(expprec)}, "Pruned": [], "Collapsed": [], "NeuronLibPath": neuron_lib}

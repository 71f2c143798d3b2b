"""Lower a bondflow graph to da4ml tracing steps (exact casts only), refusing what da4ml cannot express exactly."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import QuantizationError, UnsupportedOpError
from ...ir.element_quant import ElementQuant
from ...ir.graph import Graph
from ...ir.merge import Merge, merge_result_type
from ...ir.ops import Activation, Dense, Flatten, Op
from ...ir.types import FixedType, Overflow, Rounding

__all__ = ["lower", "kif", "SUPPORTED_KINDS"]

SUPPORTED_KINDS = ["dense", "activation (relu, linear)", "flatten", "merge (add, concatenate)", "element_quant"]
#: da4ml 0.6's quantize knows TRN and RND; RND_CONV is built from TRN in the worker.
_ROUNDINGS = {Rounding.TRN: "TRN", Rounding.RND: "RND", Rounding.RND_CONV: "round_half_even"}
_OVERFLOWS = {Overflow.WRAP: "WRAP", Overflow.SAT: "SAT", Overflow.SAT_SYM: "SAT_SYM"}


def kif(t: FixedType) -> tuple[int, int, int]:
    """da4ml's (keep_negative, integer bits without the sign, fractional bits) of a bondflow type."""
    k = int(t.signed)
    return k, t.int_bits - k, t.frac_bits


def _cast(where: str, src: FixedType, dst: FixedType) -> list[dict[str, Any]]:
    """Steps that requantize values of ``src`` to ``dst`` exactly as FixedType.requantize does."""
    if dst.overflow not in _OVERFLOWS:
        raise QuantizationError(f"{where} overflow must be one of {', '.join(o.value for o in _OVERFLOWS)} for da4ml 0.6, not {dst.overflow.value}")
    if dst.overflow is Overflow.SAT_SYM and dst.signed and dst.width == 1:
        raise QuantizationError(f"{where} SAT_SYM type must be wider than 1 bit for da4ml, not {dst}")
    k, i, f = kif(dst)
    rounding = dst.rounding if src.frac_bits > f else Rounding.TRN  # no dropped bits: every mode is the identity
    if rounding not in _ROUNDINGS:
        raise QuantizationError(f"{where} rounding must be one of {', '.join(r.value for r in _ROUNDINGS)} for da4ml 0.6, not {rounding.value}")
    step = {"k": k, "i": i, "f": f, "overflow": _OVERFLOWS[dst.overflow]}
    if rounding is Rounding.RND_CONV:
        return [{"op": "round_half_even", "src_f": src.frac_bits, **step}]
    return [{"op": "quantize", "round": _ROUNDINGS[rounding], **step}]


def _dense(op: Dense, xt: FixedType) -> list[dict[str, Any]]:
    acc = op.accum_type
    prod_frac = xt.frac_bits + op.weight_type.frac_bits
    if acc.overflow is not Overflow.WRAP or acc.frac_bits < prod_frac:
        # Otherwise the golden model casts after every product and add (hls4ml's order), which a constant
        # matrix-vector adder graph cannot reproduce.
        raise QuantizationError(f"dense '{op.name}' accumulator must be exact for da4ml (WRAP, >= {prod_frac} fractional bits), not {acc}")
    w = np.ldexp(op.weight.astype(np.float64), -op.weight_type.frac_bits)  # exact: power-of-two scaling
    bias = acc.to_float(acc.requantize(op.bias, op.bias_type.frac_bits))  # the golden model's bias, already in acc
    k, i, f = kif(acc)
    steps: list[dict[str, Any]] = [{"op": "matmul", "w": w.tolist()}, {"op": "add", "c": bias.tolist()},
                                   {"op": "quantize", "k": k, "i": i, "f": f, "overflow": "WRAP", "round": "TRN"}]
    return steps + _cast(f"dense '{op.name}' result type", acc, op.result_type)


def lower(graph: Graph) -> tuple[list[list[int]], list[dict[str, Any]]]:
    """Per-input (k, i, f) and the steps da4ml traces; one-line errors for anything not exact in da4ml 0.6.

    A chain is one stream of steps on the current value. A graph with branches names its tensors: each op
    loads its input, runs its steps and stores its result; merges read their inputs by name (``sum``, ``concat``).
    """
    inputs = [list(kif(graph.input.type))] * graph.input.size
    if graph.is_chain():
        xt = graph.input.type
        steps: list[dict[str, Any]] = []
        for op in graph.ops:
            steps += _op_steps(op, xt)
            xt = op.result_type
        return inputs, steps
    types = graph.types()
    steps = [{"op": "store", "name": graph.input.name}]
    for op in graph.ops:
        if isinstance(op, Merge):
            steps += _merge(op, graph, [types[s] for s in op.inputs])
        else:
            steps += [{"op": "load", "name": op.input}, *_op_steps(op, types[op.input])]
        steps.append({"op": "store", "name": op.name})
    return inputs, steps + [{"op": "load", "name": graph.ops[-1].name}]


def _merge(op: Merge, graph: Graph, in_types: list[FixedType]) -> list[dict[str, Any]]:
    if len(graph.shapes()[op.name]) > 1:
        raise UnsupportedOpError(f"merge {op.function} of images", op.name, ["merges of flat tensors"], "the da4ml generator")
    if op.function not in ("add", "concatenate"):
        raise UnsupportedOpError(f"merge {op.function}", op.name, ["merge add", "merge concatenate"], "the da4ml generator")
    if op.function == "add":  # da4ml adds exactly; then the one cast of the golden model
        exact = merge_result_type("add", in_types)
        return [{"op": "sum", "names": list(op.inputs)}, *_cast(f"add '{op.name}' result type", exact, op.result_type)]
    steps: list[dict[str, Any]] = []
    for k, (src, t) in enumerate(zip(op.inputs, in_types)):  # each input cast to the result type, then joined
        steps += [{"op": "load", "name": src}, *_cast(f"concatenate '{op.name}' result type", t, op.result_type),
                  {"op": "store", "name": f"{op.name}/{k}"}]
    return steps + [{"op": "concat", "names": [f"{op.name}/{k}" for k in range(len(op.inputs))]}]


def _element_quant(op: ElementQuant, xt: FixedType) -> list[dict[str, Any]]:
    """HGQ's per-element precision: each element its own cast (da4ml keeps every value exact, so the op's wider
    result type needs nothing more); an always-0 element is a constant 0."""
    elements = [None if t is None else _cast(f"element_quant '{op.name}' element {j}", xt, t) for j, t in enumerate(op.types())]
    return [{"op": "per_element", "elements": elements}]


def _op_steps(op: Op, xt: FixedType) -> list[dict[str, Any]]:
    if isinstance(op, ElementQuant):
        return _element_quant(op, xt)
    if isinstance(op, Dense):
        return _dense(op, xt)
    if isinstance(op, Activation):
        return ([{"op": "relu"}] if op.function == "relu" else []) + _cast(f"activation '{op.name}' result type", xt, op.result_type)
    if isinstance(op, Flatten):
        return _cast(f"flatten '{op.name}' result type", xt, op.result_type)
    # Softmax and sigmoid are hls4ml's float-built lookup tables; da4ml 0.6 has tables but no exact route from ours.
    raise UnsupportedOpError(op.kind, op.name, SUPPORTED_KINDS, "the da4ml generator")

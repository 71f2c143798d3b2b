"""ONNX Clip(0, m) / LeakyRelu(alpha) / PRelu <-> the IR's exact ParamRelu and PRelu, shared by the ONNX importers and the
QONNX exporter."""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.ops import ParamRelu, PRelu
from ..ir.types import FixedType
from .quant import prelu_op, slope_type

__all__ = ["RELU_ONNX_OPS", "RELU_KEY", "PRELU_KEY", "onnx_relu_params", "param_relu_node", "onnx_prelu", "prelu_node"]

#: ONNX op types read as a ParamRelu.
RELU_ONNX_OPS = ("Clip", "LeakyRelu")
#: node metadata of bondflow's export: the op's exact max_value, alpha and alpha_type as JSON (float32 attributes
#: cannot carry every float64 bound, and the slope's type is not in ONNX at all).
RELU_KEY = "bondflow.param_relu"
#: node metadata of bondflow's export: a PRelu's slope type (its float32 slopes are exact values of it).
PRELU_KEY = "bondflow.prelu"


def _text(v: Any) -> str:
    """Protobuf string fields of a corrupt file can arrive as bytes: decode them rather than crash (onnx.py uses it too)."""
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)


def onnx_relu_params(node: Any, consts: dict[str, np.ndarray]) -> dict[str, Any]:
    """ParamRelu keyword arguments of a Clip (min 0, max m: relu_max) or LeakyRelu (alpha typed by slope_type) node."""
    for p in node.metadata_props:
        if _text(p.key) == RELU_KEY:
            d = json.loads(_text(p.value))
            at = d.get("alpha_type")
            return {"max_value": d.get("max_value"), "alpha": d.get("alpha", 0.0), "alpha_type": FixedType.parse(at) if at else None}
    attrs = {a.name: a for a in node.attribute}
    if node.op_type == "LeakyRelu":
        alpha = float(np.float32(attrs["alpha"].f)) if "alpha" in attrs else 0.01  # ONNX's default slope
        a, t = slope_type(alpha, node.name or node.output[0])
        return {"max_value": None, "alpha": a, "alpha_type": t}
    # Clip: bounds as inputs (opset >= 11) or attributes (opset 6)
    def bound(i: int, attr: str) -> float | None:
        if len(node.input) > i and node.input[i]:
            if node.input[i] not in consts:
                raise UnsupportedOpError("Clip with a computed bound", node.name, ["Clip(min=0, max=constant)"])
            return float(np.asarray(consts[node.input[i]]).reshape(-1)[0])
        return float(attrs[attr].f) if attr in attrs else None
    lo, hi = bound(1, "min"), bound(2, "max")
    if lo != 0.0:
        raise UnsupportedOpError(f"Clip(min={lo})", node.name or node.output[0], ["Clip(min=0, max=m) (a bounded ReLU)"])
    return {"max_value": None if hi is None or np.isinf(hi) else hi, "alpha": 0.0, "alpha_type": None}


def param_relu_node(op: ParamRelu, out: str, helper: Any, const: Any) -> Any:
    """The ONNX node computing ``op`` in float (its Quant follows), with the exact settings in RELU_KEY metadata."""
    if op.alpha and op.max_value is not None:
        raise UnsupportedOpError(f"param_relu {op.function}", op.name, ["bounded or leaky ReLU, not both"], "ONNX export")
    if op.alpha:
        node = helper.make_node("LeakyRelu", [op.input], [out], name=f"{op.name}_leakyrelu", alpha=op.alpha)
    else:
        lo = const(f"{op.name}_min", np.array(0.0))
        hi = const(f"{op.name}_max", np.array(op.max_value))
        node = helper.make_node("Clip", [op.input, lo, hi], [out], name=f"{op.name}_clip")
    d: dict[str, Any] = {"max_value": op.max_value} if op.max_value is not None else {}
    if op.alpha:
        d.update(alpha=op.alpha, alpha_type=str(op.alpha_type))
    node.metadata_props.add(key=RELU_KEY, value=json.dumps(d))
    return node


def onnx_prelu(node: Any, consts: dict[str, np.ndarray], view: np.ndarray, shape: tuple[int, ...], name: str, cur: str,
               rt: FixedType) -> PRelu:
    """A PRelu node on the tensor of bondflow shape ``shape`` whose ONNX layout is ``view`` (each value's index in
    bondflow's channels-last order): its slope broadcast over the tensor (batch axis dropped), laid out as bondflow's."""
    if len(node.input) < 2 or node.input[1] not in consts:
        raise UnsupportedOpError("PRelu with a computed slope", node.name, ["PRelu(x, constant slope)"])
    slope = np.asarray(consts[node.input[1]], dtype=np.float64)
    while slope.ndim > view.ndim and slope.shape[0] == 1:
        slope = slope[0]
    try:
        full = np.broadcast_to(slope, view.shape)
    except ValueError:
        raise UnsupportedOpError(f"PRelu slope of shape {list(slope.shape)} on a tensor of shape {list(view.shape)}", node.name,
                                 ["a slope broadcastable to the input (one per channel, element or all)"]) from None
    ours = np.empty(view.size)
    ours[view.reshape(-1)] = full.reshape(-1)
    t = next((FixedType.parse(_text(p.value)) for p in node.metadata_props if _text(p.key) == PRELU_KEY), None)
    return prelu_op(name, cur, rt, ours.reshape(shape), shape, node.name or node.output[0], alpha_type=t)


def prelu_node(op: PRelu, shape: tuple[int, ...], nchw: bool, out: str, helper: Any, const: Any) -> Any:
    """The ONNX PRelu computing ``op`` in float on a tensor of bondflow shape ``shape`` (NCHW in the file when
    ``nchw``), with the slope type in PRELU_KEY metadata."""
    a = op.alpha_type.to_float(op.alpha)
    if nchw and a.size == shape[-1]:
        a = a.reshape((-1,) + (1,) * (len(shape) - 1))  # per channel: [C, 1, 1]
    elif nchw and a.size > 1:
        a = a.reshape(shape).transpose((len(shape) - 1,) + tuple(range(len(shape) - 1)))
    node = helper.make_node("PRelu", [op.input, const(f"{op.name}_slope", a)], [out], name=f"{op.name}_prelu")
    node.metadata_props.add(key=PRELU_KEY, value=str(op.alpha_type))
    return node

"""ONNX node metadata carrying a table activation's exact settings (table size and types), written on export and read on import."""
from __future__ import annotations

import json
from typing import Any

from ..errors import UnsupportedOpError
from ..ir.ops import Elu, LookupOp, Op, Selu, Softmax
from ..ir.types import FixedType
from .onnx_relu import _text
from .quant import slope_type

__all__ = ["TABLE_KEY", "ACTIVATION_KINDS", "MERGE_KINDS", "table_settings", "table_kwargs", "exp_linear_kwargs"]

#: ONNX activation op_type -> the IR's activation kind (Clip and LeakyRelu: param_relu, onnx_relu.py).
ACTIVATION_KINDS = {"Relu": "relu", "Softmax": "softmax", "Sigmoid": "sigmoid", "Tanh": "tanh", "Identity": "linear",
                    "Elu": "elu", "Selu": "selu", "PRelu": "prelu"}
#: ONNX op_type of a node reading two or more computed tensors -> the IR's merge function (Concat: concatenate).
MERGE_KINDS = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Max": "maximum", "Min": "minimum", "Concat": "concatenate"}

#: node metadata of bondflow's export: the table parameters of a Softmax/Sigmoid/Tanh op as JSON. ONNX's own
#: Softmax/Sigmoid/Tanh are exact functions; the hardware's lookup tables would otherwise come back as defaults.
TABLE_KEY = "bondflow.table"
_FIELDS = {Softmax: ("table_size", "exp_table_type", "inv_table_type", "implementation"),
           Elu: ("table_size", "table_type", "alpha", "alpha_type"), LookupOp: ("table_size", "table_type")}


def table_settings(op: Op) -> str | None:
    """JSON of ``op``'s table parameters, or None for an op without tables."""
    fields = next((f for cls, f in _FIELDS.items() if isinstance(op, cls)), None)
    if fields is None:
        return None
    return json.dumps({k: v if isinstance(v, (int, float, str)) else str(v) for k in fields for v in [getattr(op, k)]})


def table_kwargs(node: Any) -> dict[str, Any]:
    """The constructor arguments a node's TABLE_KEY metadata records ({} when it has none: the defaults)."""
    for p in node.metadata_props:
        if _text(p.key) == TABLE_KEY:
            d = json.loads(_text(p.value))
            return {k: FixedType.parse(v) if k.endswith("_type") else v for k, v in d.items()}
    return {}


def exp_linear_kwargs(node: Any) -> dict[str, Any]:
    """An ONNX Elu's or Selu's constructor arguments: its table settings, Elu's alpha (typed as a leaky slope unless
    bondflow's export recorded it exactly); a Selu must have Keras's constants, which hls4ml's nnet::selu hard-codes."""
    attrs = {a.name: float(a.f) for a in node.attribute}
    kw = table_kwargs(node)
    if node.op_type == "Elu":
        if "alpha" in kw:  # bondflow's export: the exact slope and its type (the float32 attribute may have rounded it)
            return kw
        alpha, at = slope_type(attrs.get("alpha", 1.0), node.name)
        return {"alpha": alpha, "alpha_type": at, **kw}
    for key, want in (("alpha", Selu.ALPHA), ("gamma", Selu.LAMBDA)):
        if abs(attrs.get(key, want) - want) > 1e-6:
            raise UnsupportedOpError(f"Selu {key}={attrs[key]:g}", node.name, [f"Selu with {key}={want:.7g} (Keras's, which hls4ml uses)"])
    return kw

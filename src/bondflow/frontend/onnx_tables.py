"""ONNX node metadata carrying a table activation's exact settings (table size and types), written on export and read on import."""
from __future__ import annotations

import json
from typing import Any

from ..ir.ops import Op, Softmax, TableActivation
from ..ir.types import FixedType
from .onnx_relu import _text

__all__ = ["TABLE_KEY", "table_settings", "table_kwargs"]

#: node metadata of bondflow's export: the table parameters of a Softmax/Sigmoid/Tanh op as JSON. ONNX's own
#: Softmax/Sigmoid/Tanh are exact functions; the hardware's lookup tables would otherwise come back as defaults.
TABLE_KEY = "bondflow.table"
_FIELDS = {Softmax: ("table_size", "exp_table_type", "inv_table_type", "implementation"),
           TableActivation: ("table_size", "table_type")}


def table_settings(op: Op) -> str | None:
    """JSON of ``op``'s table parameters, or None for an op without tables."""
    fields = next((f for cls, f in _FIELDS.items() if isinstance(op, cls)), None)
    if fields is None:
        return None
    return json.dumps({k: v if isinstance(v, (int, str)) else str(v) for k in fields for v in [getattr(op, k)]})


def table_kwargs(node: Any) -> dict[str, Any]:
    """The constructor arguments a node's TABLE_KEY metadata records ({} when it has none: the defaults)."""
    for p in node.metadata_props:
        if _text(p.key) == TABLE_KEY:
            d = json.loads(_text(p.value))
            return {k: FixedType.parse(v) if k.endswith("_type") else v for k, v in d.items()}
    return {}

"""A moldable table unit: the dataflow architecture's sigmoid/tanh/softmax ROM pipeline behind a valid/ready layer."""
from __future__ import annotations

from ...codegen.dataflow.tables import table_layer
from .program import TableLayer
from .units import latched_unit

__all__ = ["table_unit"]


def table_unit(layer: TableLayer, module: str, hdr: str) -> dict[str, str]:
    """Files of the unit ``module``: it latches a sample, lets the fixed-latency table pipeline run on it for
    ``layer.cycles`` clocks, then holds the result in its output register (timing as a core layer of that many cycles)."""
    inner = table_layer(f"{module}_pipe", layer.op, layer.x_type, layer.n, hdr)
    assert inner.latency == layer.cycles, (inner.latency, layer.cycles)  # the ISA model's cycle count
    text = latched_unit(hdr, module, inner.module, layer.n * layer.x_type.width, layer.n * layer.op.result_type.width,
                        layer.cycles, f"'{layer.name}' ({layer.op.kind}) as one table unit (the dataflow architecture's ROMs)")
    return {f"rtl/{module}.v": text, f"rtl/{inner.module}.v": inner.text, **dict(inner.extra)}

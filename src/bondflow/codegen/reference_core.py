"""Architecture "reference": one Dense layer (+ ReLU/linear) as a pipeline, the harness's known-good core."""
from __future__ import annotations

from typing import Any

from ..design import Design
from ..errors import UnsupportedOpError
from ..ir.graph import Graph
from ..ir.ops import Activation, Dense
from .base import register_arch
from .pipeline import pipeline_design

__all__ = ["generate_reference"]


@register_arch("reference")
def generate_reference(graph: Graph, tlast_mode: int = 0, **options: Any) -> Design:
    """Only graphs of one Dense, optionally followed by one activation, are accepted."""
    ops = graph.ops
    ok = isinstance(ops[0], Dense) and (len(ops) == 1 or (len(ops) == 2 and isinstance(ops[1], Activation)))
    if not ok:
        raise UnsupportedOpError("multi-layer graph", graph.name, ["one dense (+ one activation)"], "the reference core")
    return pipeline_design(graph, "reference", dict(options), tlast_mode=tlast_mode,
                           description="reference core: one Dense layer and its activation")

"""Architecture "dataflow": hls4ml's layer pipeline as Verilog, bit-exact with hls4ml (tables for sigmoid/softmax)."""
from __future__ import annotations

from typing import Any

from ...design import Design
from ...errors import ConfigError
from ...ir.graph import Graph
from ...ir.ops import Sigmoid, Softmax, Threshold
from ..base import register_arch
from ..pipeline import pipeline_design
from .tables import table_layer
from .threshold import threshold_layer

__all__ = ["generate_dataflow"]


@register_arch("dataflow")
def generate_dataflow(graph: Graph, reuse_factor: "int | dict[str, int]" = 1, tlast_mode: int = 0, stream_width: int | None = None,
                      **options: Any) -> Design:
    """Generate the pipeline; ``reuse_factor`` > 1 shares multipliers (see reuse.py)."""
    if options:
        raise ConfigError(f"dataflow options must be among reuse_factor, tlast_mode, stream_width, not {sorted(options)}")
    values = list(reuse_factor.values()) if isinstance(reuse_factor, dict) else [reuse_factor]
    if not all(isinstance(v, int) and v >= 1 for v in values):
        raise ConfigError(f"reuse factor must be an integer >= 1 (or a layer -> integer mapping), not {reuse_factor!r}")
    opts = {"reuse_factor": reuse_factor, "tlast_mode": tlast_mode, "stream_width": stream_width}
    if max(values) > 1:
        from .reuse import reuse_design
        return reuse_design(graph, reuse_factor, opts, tlast_mode, stream_width)
    return pipeline_design(graph, "dataflow", opts, tlast_mode=tlast_mode, in_tdata_bits=stream_width,
                           out_tdata_bits=None, description="hls4ml-style fully parallel pipeline (reuse factor 1)",
                           extra={Sigmoid: table_layer, Softmax: table_layer, Threshold: threshold_layer})

"""Architecture "dataflow": hls4ml's layer pipeline as Verilog, bit-exact with hls4ml (tables for sigmoid/softmax)."""
from __future__ import annotations

from typing import Any

from ...design import Design
from ...errors import ConfigError
from ...ir.graph import Graph
from ...ir.element_quant import ElementQuant
from ...ir.ops import Elu, ParamRelu, PRelu, Selu, Sigmoid, Softmax, Tanh, Threshold
from ..base import refuse_branches, register_arch
from ..hls4ml.generator import check_reuse_factor, per_layer_reuse
from ..pipeline import pipeline_design
from .elementwise_quant import elementwise_quant_layer
from .exp_linear import exp_linear_layer
from .param_relu import param_relu_layer, prelu_layer
from .tables import table_layer
from .threshold import threshold_layer

__all__ = ["generate_dataflow"]


@register_arch("dataflow")
def generate_dataflow(graph: Graph, reuse_factor: "int | dict[str, int]" = 1, tlast_mode: int = 0, stream_width: int | None = None,
                      **options: Any) -> Design:
    """Generate the pipeline; ``reuse_factor`` > 1 shares multipliers (see reuse.py)."""
    parallelism = options.pop("parallelism", None)
    arith = {k: options.pop(k) for k in ("multipliers", "stage_adders", "target", "dsp_budget") if k in options}
    if options:
        raise ConfigError("dataflow options must be among reuse_factor, parallelism, multipliers, stage_adders, target, dsp_budget, "
                          f"tlast_mode, stream_width, not {sorted(options)}")
    values = list(reuse_factor.values()) if isinstance(reuse_factor, dict) else [reuse_factor]
    if not all(isinstance(v, int) and v >= 1 for v in values):
        raise ConfigError(f"reuse factor must be an integer >= 1 (or a layer -> integer mapping), not {reuse_factor!r}")
    opts = {"reuse_factor": reuse_factor, "tlast_mode": tlast_mode, "stream_width": stream_width}
    if not graph.is_shaped() and max(values) > 1:
        refuse_branches(graph, "dataflow", f"with reuse_factor {reuse_factor!r}")
    given = list(parallelism.values()) if isinstance(parallelism, dict) else [] if parallelism in (None, "auto") else [parallelism]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in given):
        raise ConfigError(f"parallelism must be an integer >= 1, a layer -> integer mapping or 'auto', not {parallelism!r}")
    if graph.is_shaped():  # images and sequences stream pixel by pixel through window stages
        from .cnn import choose_parallelism, choose_tail_reuse, cnn_design
        chosen, tail = parallelism, None
        if max(values) > 1:  # convolutions share by parallelism; the dense tail by reuse factor, as hls4ml's denses
            if not graph.dense_layers():
                raise ConfigError("reuse_factor applies to the dense layers after a CNN's convolutions (these share by "
                                  f"parallelism), and '{graph.name}' has none: use parallelism, not reuse_factor {reuse_factor!r}")
            check_reuse_factor(graph, reuse_factor)
            tail = per_layer_reuse(graph, reuse_factor)
        if parallelism == "auto":  # the dense tail gets a vector per image: it shares its multipliers over the II
            chosen, ii = choose_parallelism(graph, tlast_mode, stream_width)
            tail = tail or choose_tail_reuse(graph, ii)
        design = cnn_design(graph, chosen, {**opts, "parallelism": parallelism, **arith}, tlast_mode, stream_width, arith,
                            tail_reuse=tail)
        if parallelism == "auto":
            design.info["parallelism"] = chosen
        return design
    if parallelism is not None:
        raise ConfigError(f"parallelism applies to convolutions; an MLP must use reuse_factor, not parallelism {parallelism!r}")
    dense_opts, arith_info = None, None
    if max(values) > 1:
        from .reuse import reuse_design
        return reuse_design(graph, reuse_factor, {**opts, **arith}, tlast_mode, stream_width, arith)
    if arith:  # multiplier-free or mixed arithmetic (arith.py); without these options the design is as before
        from .arith import dense_options
        dense_opts, arith_info = dense_options(graph, arith.get("multipliers", "dsp"), arith.get("stage_adders"),
                                               arith.get("target"), arith.get("dsp_budget"))
        opts.update(arith)
    what = {"dsp": "", "lut": ", multiplier-free", "auto": ", LUT or DSP multipliers per layer"}
    design = pipeline_design(graph, "dataflow", opts, tlast_mode=tlast_mode, in_tdata_bits=stream_width, out_tdata_bits=None,
                             description="hls4ml-style fully parallel pipeline (reuse factor 1"
                                         f"{what[arith_info['multiplier_mode']] if arith_info else ''})",
                             extra={Sigmoid: table_layer, Tanh: table_layer, Softmax: table_layer, Threshold: threshold_layer,
                                    ElementQuant: elementwise_quant_layer, ParamRelu: param_relu_layer, PRelu: prelu_layer, Elu: exp_linear_layer,
                                    Selu: exp_linear_layer},
                             dense_options=dense_opts)
    if arith_info:
        design.info.update(arith_info)
    return design

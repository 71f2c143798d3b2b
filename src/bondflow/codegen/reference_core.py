"""Architecture "reference": one Dense layer (+ ReLU/linear) from its own template, the harness's known-good core."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import __version__
from ..design import Design
from ..errors import ConfigError, UnsupportedOpError
from ..ir.graph import Graph
from ..ir.ops import Activation, Dense
from .base import register_arch
from .layers import _term, product_shape, requant_params
from .render import header, render, sanitize, static_rtl, vlog_literal
from .shell import ADAPTER_LATENCY, SHELL_REGISTERS, TLAST_PER_SAMPLE, interface_for, render_shell, shell_latency

__all__ = ["generate_reference", "CORE_LATENCY", "SHELL_LATENCY"]

#: Pipeline depth of the core: products, exact sum, casts (each registered).
CORE_LATENCY = 3
#: Cycles the shell and the pipe adapter add for a one-beat sample.
SHELL_LATENCY = SHELL_REGISTERS + ADAPTER_LATENCY


def _core_rtl(graph: Graph, module: str, hdr: str, dense: Dense, act: Activation | None) -> str:
    xt, acc = graph.input.type, dense.accum_type
    shape = product_shape(dense, xt, "the reference core")
    shift, pw = shape.shift, shape.width
    aw = acc.width
    weights = [[vlog_literal(int(dense.weight[i, j]), pw) for j in range(dense.n_out)] for i in range(dense.n_in)]
    bias = acc.requantize(np.asarray(dense.bias, dtype=np.int64), dense.bias_type.frac_bits)  # as the golden model aligns it
    terms = [[_term(f"p_{i}_{j}", pw, aw, shift) for i in range(dense.n_in)] for j in range(dense.n_out)]
    y_type = act.result_type if act else dense.result_type
    return render("reference/dense_core.v.j2", header=hdr, module=module, node=dense.name, n_in=dense.n_in,
                  n_out=dense.n_out, act=act.function if act else None, x_type=str(xt), w_type=str(dense.weight_type),
                  b_type=str(dense.bias_type), acc_type=str(acc), d_type=str(dense.result_type), y_type=str(y_type),
                  xw=xt.width, x_signed=xt.signed, pw=pw, aw=aw, dw=dense.result_type.width, yw=y_type.width,
                  p_trimmed=aw < pw + shift, weights=weights, biases=[vlog_literal(int(b), aw) for b in bias],
                  terms=terms, rq_dense=requant_params(acc, dense.result_type, False),
                  rq_act=requant_params(dense.result_type, act.result_type, act.function == "relu") if act else "")


@register_arch("reference")
def generate_reference(graph: Graph, tlast_mode: int = TLAST_PER_SAMPLE, stream_width: int | None = None,
                       **options: Any) -> Design:
    """A Design of one Dense, optionally followed by one ReLU/linear activation; other graphs are refused."""
    ops = graph.ops
    ok = len(ops) in (1, 2) and isinstance(ops[0], Dense) and (len(ops) == 1 or (
        isinstance(ops[1], Activation) and ops[1].input == ops[0].name and ops[1].function in ("relu", "linear")))
    if not ok:
        raise UnsupportedOpError("multi-layer graph", graph.name, ["one dense (+ one relu/linear activation)"],
                                 "the reference core")
    if options:
        raise ConfigError(f"reference options must be among tlast_mode, stream_width, not {sorted(options)}")
    dense, act = ops[0], (ops[1] if len(ops) == 2 else None)
    assert isinstance(dense, Dense) and (act is None or isinstance(act, Activation))
    digest = graph.digest()
    hdr = header("reference", digest)
    core = f"bondflow_reference_{sanitize(dense.name)}"
    iface = interface_for(graph, stream_width, stream_width)
    files = {"rtl/bondflow_requant.v": static_rtl("bondflow_requant.v"),
             "rtl/bondflow_pipe_adapter.v": static_rtl("bondflow_pipe_adapter.v"),
             f"rtl/{core}.v": _core_rtl(graph, core, hdr, dense, act),
             "rtl/bondflow_top.v": render_shell(core, iface, digest, "reference", tlast_mode),
             "graph.json": graph.to_json(indent=1)}
    rtl = ("rtl/bondflow_requant.v", "rtl/bondflow_pipe_adapter.v", f"rtl/{core}.v", "rtl/bondflow_top.v")
    # A multi-beat input sample completes only with its last beat; the core then starts at once.
    latency = CORE_LATENCY + shell_latency(iface, adapter=True)
    info = {"core": core, "core_latency": CORE_LATENCY, "multipliers": dense.n_in * dense.n_out, "tlast_mode": tlast_mode,
            "description": "reference core: one Dense layer and its activation, from reference/dense_core.v.j2"}
    opts = {"tlast_mode": tlast_mode, "stream_width": stream_width}
    return Design(arch="reference", top="bondflow_top", language="verilog", files=files, interface=iface,
                  graph_digest=digest, rtl_files=rtl, latency_cycles=latency,
                  ii_cycles=max(iface.input.beats, iface.output.beats), options=opts, info=info,
                  generator_version=__version__)

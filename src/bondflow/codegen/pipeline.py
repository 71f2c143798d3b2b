"""Assemble fully parallel layer pipelines into a core behind the common shell, as a Design."""
from __future__ import annotations

from typing import Any, Callable

from .. import __version__
from ..design import Design
from ..errors import UnsupportedOpError
from ..ir.graph import Graph
from ..ir.ops import Activation, Dense, Flatten, Op
from ..ir.types import FixedType
from .layers import LayerRTL, activation_layer, dense_layer
from .render import header, render, sanitize, static_rtl
from .shell import TLAST_PER_SAMPLE, interface_for, render_shell, shell_latency

__all__ = ["pipeline_layers", "layers_for", "pipeline_design", "fused_activation"]


def fused_activation(ops: list[Op], i: int) -> Activation | None:
    """The activation that directly reads the Dense at ``ops[i]``, which its layer computes in the same module."""
    nxt = ops[i + 1] if i + 1 < len(ops) else None
    return nxt if isinstance(nxt, Activation) and nxt.input == ops[i].name else None


#: Builds the RTL of a further op kind: (module, op, input type, width n, header) -> LayerRTL.
LayerBuilder = Callable[[str, Op, FixedType, int, str], LayerRTL]


def pipeline_layers(graph: Graph, arch: str, hdr: str, extra: dict[type, LayerBuilder] | None = None,
                    dense_options: dict[str, dict[str, Any]] | None = None) -> list[LayerRTL]:
    """One LayerRTL per Dense (with its following activation fused), standalone activation, or ``extra`` op kind.

    ``dense_options`` maps a Dense's name to keyword options of its ``dense_layer`` (e.g. its multiplier mode).
    """
    return layers_for(list(graph.ops), graph.input.type, graph.input.size, arch, hdr, extra, dense_options)


def layers_for(ops: list[Op], cur_type: FixedType, cur_n: int, arch: str, hdr: str,
               extra: dict[type, LayerBuilder] | None = None,
               dense_options: dict[str, dict[str, Any]] | None = None) -> list[LayerRTL]:
    """The layers of a chain of ops fed ``cur_n`` values of ``cur_type`` (also the dense tail after a CNN's stream)."""
    layers: list[LayerRTL] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        name = f"bondflow_{arch}_{sanitize(op.name)}"
        if isinstance(op, Dense):
            act = fused_activation(ops, i)
            layers.append(dense_layer(name, op, cur_type, act, hdr, **(dense_options or {}).get(op.name, {})))
            cur_type = (act or op).result_type
            cur_n = op.n_out
            i += 2 if act else 1
        elif isinstance(op, Activation):
            layers.append(activation_layer(name, op, cur_type, cur_n, hdr))
            cur_type = op.result_type
            i += 1
        elif isinstance(op, Flatten) and op.result_type == cur_type:
            i += 1  # samples are already flat
        elif extra and type(op) in extra:
            layers.append(extra[type(op)](name, op, cur_type, cur_n, hdr))
            cur_type = op.result_type
            i += 1
        else:
            kinds = ["dense", "activation (relu, linear)", "flatten"] + [k.kind for k in (extra or {})]
            raise UnsupportedOpError(op.kind, op.name, kinds, f"the {arch} generator")
    return layers


def pipeline_design(graph: Graph, arch: str, options: dict[str, Any], tlast_mode: int = TLAST_PER_SAMPLE,
                    in_tdata_bits: int | None = None, out_tdata_bits: int | None = None,
                    description: str = "", extra: dict[type, LayerBuilder] | None = None,
                    dense_options: dict[str, dict[str, Any]] | None = None) -> Design:
    digest = graph.digest()
    hdr = header(arch, digest)
    core = f"bondflow_{arch}_core"
    prev_bits = graph.input.size * graph.input.type.width
    delays: list[dict[str, Any]] = []
    if graph.is_chain():
        layers = pipeline_layers(graph, arch, hdr, extra, dense_options)
        stages, prev = [], "in_data"
        for k, layer in enumerate(layers):
            out = f"l{k}_y"
            stages.append({"module": layer.module, "inp": prev, "out": out, "out_bits": layer.n_out * layer.out_width})
            prev = out
        latency = sum(layer.latency for layer in layers)
        out_wire, out_bits = prev, stages[-1]["out_bits"]
    else:  # branches: every tensor on a wire, merges fed in step through delay chains (dag.py)
        from .dag import plan_dag
        plan = plan_dag(graph, arch, hdr, extra, dense_options)
        layers, stages, delays, latency = plan.layers, plan.stages, plan.delays, plan.latency
        out_wire, out_bits = plan.out_wire, plan.out_bits
    if latency < 1:  # the valid pipe and the adapter need one register: only combinational layers (casts, wiring)
        raise UnsupportedOpError(graph.ops[-1].kind, graph.ops[-1].name, ["a graph with at least one dense, activation or "
                                 "table layer"], f"the {arch} generator (a pipeline of casts alone has no register)")
    iface = interface_for(graph, in_tdata_bits, out_tdata_bits)
    core_text = render("layers/core.v.j2", header=hdr, module=core, description=description or f"{arch} pipeline of {len(layers)} layers",
                       in_bits=prev_bits, out_bits=out_bits, stages=stages, latency=latency, delays=delays,
                       out_wire=out_wire)
    files = {f"rtl/{layer.module}.v": layer.text for layer in layers}
    files.update({path: text for layer in layers for path, text in layer.extra})
    files.update({"rtl/bondflow_requant.v": static_rtl("bondflow_requant.v"),
                  "rtl/bondflow_pipe_adapter.v": static_rtl("bondflow_pipe_adapter.v"),
                  f"rtl/{core}.v": core_text,
                  "rtl/bondflow_top.v": render_shell(core, iface, digest, arch, tlast_mode),
                  "graph.json": graph.to_json(indent=1)})
    rtl = ["rtl/bondflow_requant.v", "rtl/bondflow_pipe_adapter.v"] + [p for l in layers for p, _ in l.extra] + \
          [f"rtl/{l.module}.v" for l in layers] + \
          [f"rtl/{core}.v", "rtl/bondflow_top.v"]
    info = {"layers": [{"module": l.module, "latency": l.latency, "multipliers": l.multipliers,
                        "n_in": l.n_in, "n_out": l.n_out} for l in layers],
            "multipliers": sum(l.multipliers for l in layers), "core_latency": latency, "tlast_mode": tlast_mode}
    if delays:
        info["branch_delay_bits"] = sum(d["bits"] for d in delays)
    ii = max(iface.input.beats, iface.output.beats)
    return Design(arch=arch, top="bondflow_top", language="verilog", files=files, interface=iface,
                  graph_digest=digest, rtl_files=tuple(rtl), latency_cycles=latency + shell_latency(iface, adapter=True), ii_cycles=ii,
                  options=options, info=info, generator_version=__version__)

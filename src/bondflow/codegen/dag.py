"""Fully parallel pipelines for graphs with branches: every tensor gets a wire, shorter paths into a merge get delay registers.

The layers never stall (a valid bit travels beside the data, see core.v.j2), so a branch is balanced statically:
each tensor is ready a fixed number of cycles after its sample entered, and a merge's earlier inputs wait in
register chains (one chain per tensor, tapped at each delay a reader needs; synthesis maps them to SRLs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import UnsupportedOpError
from ..ir.graph import Graph
from ..ir.merge import Merge
from ..ir.ops import Activation, Dense, Flatten, Op
from ..ir.types import FixedType
from .layers import LayerRTL, activation_layer, dense_layer
from .merge_layer import merge_layer
from .render import sanitize

__all__ = ["DagPlan", "plan_dag", "consumers"]

LayerBuilder = Callable[[str, Op, FixedType, int, str], LayerRTL]


@dataclass
class DagPlan:
    """The core's contents: layers, their instances (input expression, output wire), delay chains and timing."""

    layers: list[LayerRTL] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)  # module, inp (a Verilog expression), out, out_bits
    delays: list[dict[str, Any]] = field(default_factory=list)  # name, src, bits: one register each
    out_wire: str = ""
    out_bits: int = 0
    latency: int = 0
    delay_bits: int = 0  # flip-flops spent balancing branches


def consumers(graph: Graph) -> dict[str, list[Op]]:
    """Tensor name -> the ops that read it, in graph order (the input included)."""
    readers: dict[str, list[Op]] = {graph.input.name: []}
    for op in graph.ops:
        readers[op.name] = []
        for src in op.inputs:
            readers[src].append(op)
    return readers


def plan_dag(graph: Graph, arch: str, hdr: str, extra: dict[type, LayerBuilder] | None = None,
             dense_options: dict[str, dict[str, Any]] | None = None) -> DagPlan:
    """Layers for every op of a flat (MLP) graph with branches; Dense and Merge fuse the activation that is their only reader."""
    readers = consumers(graph)
    sizes = graph.sizes()
    plan = DagPlan()
    # tensor name -> (wire, type, cycles after the sample entered)
    wire: dict[str, tuple[str, FixedType, int]] = {graph.input.name: ("in_data", graph.input.type, 0)}
    fused: dict[str, str] = {}  # a fused activation's name -> the dense whose layer produced it
    chains: dict[str, int] = {}  # source wire -> longest delay read from it

    def read(src: str, at: int) -> str:
        w, _, t = wire[src]
        if at == t:
            return w
        chains[w] = max(chains.get(w, 0), at - t)
        return f"{w}_d{at - t}"

    for op in graph.ops:
        if op.name in fused:
            continue
        name = f"bondflow_{arch}_{sanitize(op.name)}"
        srcs = list(op.inputs)
        at = max(wire[s][2] for s in srcs)
        xt = wire[srcs[0]][1]
        out_name = op.name
        if isinstance(op, Merge):
            if len(graph.shapes()[op.name]) > 1:
                raise UnsupportedOpError(f"merge {op.function} of images", op.name, ["merges of flat tensors"],
                                         f"the {arch} generator yet")
            rd = readers[op.name]
            act = rd[0] if len(rd) == 1 and isinstance(rd[0], Activation) else None
            layer = merge_layer(name, op, [wire[s][1] for s in srcs], [sizes[s] for s in srcs], hdr, act)
            out_t = (act or op).result_type
            if act is not None:
                fused[act.name] = op.name
                out_name = act.name
        elif isinstance(op, Dense):
            rd = readers[op.name]
            act = rd[0] if len(rd) == 1 and isinstance(rd[0], Activation) else None
            layer = dense_layer(name, op, xt, act, hdr, **(dense_options or {}).get(op.name, {}))
            out_t = (act or op).result_type
            if act is not None:
                fused[act.name] = op.name
                out_name = act.name
        elif isinstance(op, Activation):
            layer = activation_layer(name, op, xt, sizes[op.name], hdr)
            out_t = op.result_type
        elif isinstance(op, Flatten) and op.result_type == xt:
            wire[op.name] = wire[srcs[0]]  # samples are already flat
            continue
        elif extra and type(op) in extra:
            layer = extra[type(op)](name, op, xt, sizes[op.name], hdr)
            out_t = op.result_type
        else:
            kinds = ["dense", "activation (relu, linear)", "flatten", "merge"] + [k.kind for k in (extra or {})]
            raise UnsupportedOpError(op.kind, op.name, kinds, f"the {arch} generator")
        inp = [read(s, at) for s in srcs]
        out = f"l{len(plan.layers)}_y"
        plan.layers.append(layer)
        plan.stages.append({"module": layer.module, "inp": inp[0] if len(inp) == 1 else "{" + ", ".join(reversed(inp)) + "}",
                            "out": out, "out_bits": layer.n_out * layer.out_width})
        wire[out_name] = (out, out_t, at + layer.latency)
    out_wire, out_t, plan.latency = wire[graph.ops[-1].name]
    plan.out_wire, plan.out_bits = out_wire, graph.output.size * out_t.width
    bits = {w: b for w, b in [("in_data", graph.input.size * graph.input.type.width)] +
            [(s["out"], s["out_bits"]) for s in plan.stages]}
    for w, depth in chains.items():  # one chain per source, as long as its longest tap
        for d in range(1, depth + 1):
            plan.delays.append({"name": f"{w}_d{d}", "src": w if d == 1 else f"{w}_d{d - 1}", "bits": bits[w]})
            plan.delay_bits += bits[w]
    return plan

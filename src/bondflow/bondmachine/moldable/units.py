"""Element-wise moldable units (merges of branches, standalone activations) and the latching wrapper they share with table units."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...codegen.dataflow.elementwise_quant import elementwise_quant_layer
from ...codegen.dataflow.exp_linear import exp_linear_layer
from ...codegen.dataflow.param_relu import param_relu_layer, prelu_layer
from ...codegen.dataflow.threshold import threshold_layer
from ...codegen.layers import activation_layer
from ...codegen.merge_layer import merge_layer
from ...codegen.render import clog2
from ...ir.element_quant import ElementQuant
from ...ir.graph import Graph, TensorSpec
from ...ir.merge import ELEMENTWISE, Merge
from ...ir.ops import Activation, Elu, ExpLinear, Op, ParamRelu, PRelu, Selu, Threshold
from ...ir.reference import merge_raw, run_raw
from ...ir.types import FixedType

__all__ = ["UnitLayer", "unit_files", "latched_unit", "run_op"]


@dataclass
class UnitLayer:
    """A merge (add, or concatenate along any axis; the activation that is its only reader fused), a standalone
    ReLU/linear cast, a bounded or leaky ReLU, an ELU/SELU (its table a ROM per element), a per-element cast (HGQ's
    quantizers) or a multi-threshold (FINN's): one element-wise stage over the whole word, no processor."""

    name: str
    op: Merge | Activation | ParamRelu | PRelu | ExpLinear | ElementQuant | Threshold
    act: Activation | None
    x_types: tuple[FixedType, ...]
    in_shapes: tuple[tuple[int, ...], ...]

    @property
    def cycles(self) -> int:
        """The element-wise stage's output register; per-element casts are combinational (codegen/dataflow/elementwise_quant.py);
        ELU/SELU register the table index, then the entry (codegen/dataflow/exp_linear.py)."""
        return 0 if isinstance(self.op, ElementQuant) else 2 if isinstance(self.op, ExpLinear) else 1

    @staticmethod
    def takes(op: Op) -> bool:
        return isinstance(op, (Merge, Activation, ParamRelu, PRelu, ExpLinear, ElementQuant, Threshold))

    @property
    def x_type(self) -> FixedType:
        return self.x_types[0]

    @property
    def result_type(self) -> FixedType:
        return (self.act or self.op).result_type

    @property
    def in_sizes(self) -> list[int]:
        return [int(np.prod(s)) for s in self.in_shapes]

    @property
    def n_in(self) -> int:
        return sum(self.in_sizes)

    @property
    def n(self) -> int:
        return self.in_sizes[0] if isinstance(self.op, Merge) and self.op.function in ELEMENTWISE else self.n_in

    def order(self) -> np.ndarray:
        """Output element i is element ``order()[i]`` of the inputs laid side by side (input 0 first): the identity
        but for a concatenation along an axis other than the first, which interleaves its inputs."""
        if not isinstance(self.op, Merge) or self.op.function in ELEMENTWISE:
            return np.arange(self.n)
        base = np.cumsum([0] + self.in_sizes[:-1])
        parts = [b + np.arange(n).reshape(s) for b, n, s in zip(base, self.in_sizes, self.in_shapes)]
        return np.concatenate(parts, axis=self.op.axis).ravel()

    def run(self, xs: list[np.ndarray]) -> np.ndarray:
        """The golden model's kernels for the merge (and its fused activation) or the activation, on raw inputs."""
        if not isinstance(self.op, Merge):
            return run_op(self.op, xs[0], self.x_type, self.n)
        y = merge_raw(self.op, xs, list(self.x_types), list(self.in_shapes))
        return run_op(self.act, y, self.op.result_type, self.n) if self.act else y

    def to_json_dict(self) -> dict[str, Any]:
        kind = self.op.kind if isinstance(self.op, (ElementQuant, Threshold, ParamRelu, PRelu, ExpLinear)) else self.op.function
        opcode = kind.upper() + (f"+{self.act.function.upper()}" if self.act else "")
        return {"name": self.name, "kind": kind, "n_in": self.n_in, "n_out": self.n, "x_type": [str(t) for t in self.x_types],
                "result_type": str(self.result_type), "cycles": self.cycles,
                "cores": [{"name": f"{self.name}_unit", "neurons": list(range(self.n)), "opcodes": [opcode],
                           "program_length": 1, "program": [{"op": opcode, "a": [], "w": [], "n": 0}]}]}


def run_op(op: Op, x: np.ndarray, x_type: FixedType, n: int) -> np.ndarray:
    """The golden model's kernel for one single-input op on raw inputs (what the unit's RTL must equal)."""
    return run_raw(Graph(op.name, TensorSpec(op.input, n, x_type), (op,)), x)


def unit_files(layer: UnitLayer, module: str, hdr: str) -> dict[str, str]:
    """Files of the unit ``module``: the dataflow architecture's element-wise stage (merge_layer, activation_layer)
    behind the latching wrapper, its outputs permuted into the merge's element order."""
    inner_mod = f"{module}_ew"
    if isinstance(layer.op, Merge):
        inner = merge_layer(inner_mod, layer.op, list(layer.x_types), layer.in_sizes, hdr, layer.act, registered=True)
    elif isinstance(layer.op, (ElementQuant, Threshold, ParamRelu, PRelu, ExpLinear)):
        build = {ElementQuant: elementwise_quant_layer, Threshold: threshold_layer, ParamRelu: param_relu_layer, PRelu: prelu_layer,
                 Elu: exp_linear_layer, Selu: exp_linear_layer}[type(layer.op)]
        inner = build(inner_mod, layer.op, layer.x_type, layer.n, hdr)
    else:
        inner = activation_layer(inner_mod, layer.op, layer.x_type, layer.n, hdr)
    assert inner.latency == layer.cycles, (inner.latency, layer.cycles)  # the ISA model's cycle count
    yw = layer.result_type.width
    order = layer.order()
    assemble = [f"assign yo[{i * yw + yw - 1}:{i * yw}] = y[{j * yw + yw - 1}:{j * yw}];" for i, j in enumerate(order)] \
        if not np.array_equal(order, np.arange(layer.n)) else None
    what = (f"{layer.op.function} of {', '.join(layer.op.inputs)}" + (f", then {layer.act.function}" if layer.act else "")
            if isinstance(layer.op, Merge) else f"{kind_of(layer.op)} of {layer.op.input}")
    text = latched_unit(hdr, module, inner_mod, sum(n * t.width for n, t in zip(layer.in_sizes, layer.x_types)),
                        layer.n * yw, layer.cycles, f"'{layer.name}' ({what}) as one element-wise unit", assemble)
    return {f"rtl/{module}.v": text, f"rtl/{inner_mod}.v": inner.text, **dict(inner.extra)}


def kind_of(op: Activation | ParamRelu | PRelu | ExpLinear | ElementQuant | Threshold) -> str:
    return ("per-element cast" if isinstance(op, ElementQuant) else "multi-threshold" if isinstance(op, Threshold)
            else op.kind if isinstance(op, (ExpLinear, PRelu)) else op.function)


def latched_unit(hdr: str, module: str, inner: str, in_bits: int, out_bits: int, lat: int, what: str,
                 assemble: list[str] | None = None) -> str:
    """A valid/ready layer around a fixed-latency pipeline ``inner`` (ports clk, x, y): it latches a sample, lets the
    pipeline run on it for ``lat`` clocks (0: combinational), then copies the result (through ``assemble``, which drives
    ``yo`` from ``y``, when given) into its output register; it takes the next sample while this one waits downstream."""
    cw = clog2(lat + 1) if lat else 0
    out = "yo" if assemble else "y"
    body = [f"    wire [{out_bits - 1}:0] yo;", *(f"    {a}" for a in assemble)] if assemble else []
    return "\n".join([
        hdr.rstrip(),
        f"// {module}: {what}.",
        f"// The input is latched, the {lat}-stage pipeline {inner} runs on it, and after {lat} clock(s) the result is",
        "// copied into the output register, so the unit takes the next sample while this one waits downstream",
        "// (timing as a core layer of that many cycles).",
        "`timescale 1ns/1ps", "`default_nettype none", f"module {module} (", "    input  wire clk,", "    input  wire rst_n,",
        f"    input  wire [{in_bits - 1}:0] in_data,", "    input  wire in_valid,", "    output wire in_ready,",
        f"    output wire [{out_bits - 1}:0] out_data,", "    output wire out_valid,", "    input  wire out_ready", ");",
        f"    reg [{in_bits - 1}:0] xr;", "    reg busy, out_full;", *([f"    reg [{cw - 1}:0] cnt;"] if lat else []),
        f"    reg [{out_bits - 1}:0] out_r;", f"    wire [{out_bits - 1}:0] y;", *body,
        f"    wire done = cnt == {cw}'d{lat};" if lat else "    wire done = 1'b1;  // a combinational stage", "    wire can_out = !out_full || out_ready;",
        "    wire finish = busy && done && can_out;", "    assign in_ready = !busy || finish;",
        "    wire accept = in_valid && in_ready;", "    assign out_valid = out_full;", "    assign out_data = out_r;",
        f"    {inner} u_pipe (.clk(clk), .x(xr), .y(y));",
        "    always @(posedge clk) begin", "        if (!rst_n) begin", "            busy <= 1'b0;", "            out_full <= 1'b0;",
        "        end else begin", "            if (out_full && out_ready) out_full <= 1'b0;", "            if (finish) begin",
        "                busy <= 1'b0;", "                out_full <= 1'b1;", "            end", "            if (accept) busy <= 1'b1;",
        "        end", "    end",
        "    always @(posedge clk) begin", "        if (accept) begin", "            xr <= in_data;",
        *([f"            cnt <= {cw}'d0;", "        end else if (busy && !done) begin", "            cnt <= cnt + 1'b1;"] if lat else []),
        "        end", f"        if (finish) out_r <= {out};", "    end", "endmodule", "`default_nettype wire", ""])

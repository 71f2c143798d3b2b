"""A moldable table unit: the dataflow architecture's sigmoid/softmax ROM pipeline behind a valid/ready layer."""
from __future__ import annotations

from ...codegen.dataflow.tables import table_layer
from ...codegen.render import clog2
from .program import TableLayer

__all__ = ["table_unit"]


def table_unit(layer: TableLayer, module: str, hdr: str) -> dict[str, str]:
    """Files of the unit ``module``: it latches a sample, lets the fixed-latency table pipeline run on it for
    ``layer.cycles`` clocks, then holds the result in its output register (timing as a core layer of that many cycles)."""
    inner = table_layer(f"{module}_pipe", layer.op, layer.x_type, layer.n, hdr)
    assert inner.latency == layer.cycles, (inner.latency, layer.cycles)  # the ISA model's cycle count
    n, xw, yw, lat = layer.n, layer.x_type.width, layer.op.result_type.width, layer.cycles
    cw = clog2(lat + 1)
    text = f"""{hdr.rstrip()}
// {module}: '{layer.name}' ({layer.op.kind}) as one table unit: the input is latched, the {lat}-stage table
// pipeline {inner.module} (the dataflow architecture's ROMs) runs on it, and after {lat} clocks the result is copied
// into the output register, so the unit takes the next sample while this one waits downstream.
`timescale 1ns/1ps
`default_nettype none
module {module} (
    input  wire clk,
    input  wire rst_n,
    input  wire [{n * xw - 1}:0] in_data,
    input  wire in_valid,
    output wire in_ready,
    output wire [{n * yw - 1}:0] out_data,
    output wire out_valid,
    input  wire out_ready
);
    reg [{n * xw - 1}:0] xr;
    reg busy, out_full;
    reg [{cw - 1}:0] cnt;
    reg [{n * yw - 1}:0] out_r;
    wire [{n * yw - 1}:0] y;
    wire done = cnt == {cw}'d{lat};
    wire can_out = !out_full || out_ready;
    wire finish = busy && done && can_out;
    assign in_ready = !busy || finish;
    wire accept = in_valid && in_ready;
    assign out_valid = out_full;
    assign out_data = out_r;
    {inner.module} u_pipe (.clk(clk), .x(xr), .y(y));
    always @(posedge clk) begin
        if (!rst_n) begin
            busy <= 1'b0;
            out_full <= 1'b0;
        end else begin
            if (out_full && out_ready) out_full <= 1'b0;
            if (finish) begin
                busy <= 1'b0;
                out_full <= 1'b1;
            end
            if (accept) busy <= 1'b1;
        end
    end
    always @(posedge clk) begin
        if (accept) begin
            xr <= in_data;
            cnt <= {cw}'d0;
        end else if (busy && !done) begin
            cnt <= cnt + 1'b1;
        end
        if (finish) out_r <= y;
    end
endmodule
`default_nettype wire
"""
    return {f"rtl/{module}.v": text, f"rtl/{inner.module}.v": inner.text, **dict(inner.extra)}

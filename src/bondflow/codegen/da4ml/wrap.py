"""Verilog of the layer that maps bondflow's element layout onto da4ml's packed, range-trimmed ports (and back)."""
from __future__ import annotations

from collections.abc import Sequence

from ...errors import TemplateRenderError
from ...ir.types import FixedType
from .lower import kif

__all__ = ["io_layer", "packed_slices"]


def packed_slices(kifs: Sequence[Sequence[int]]) -> list[tuple[int, int] | None]:
    """(msb, lsb) of each element in da4ml's packed bus: element 0 in the low bits, width k + i + f (None: 0 bits)."""
    out: list[tuple[int, int] | None] = []
    lsb = 0
    for k, i, f in kifs:
        w = k + i + f
        out.append((lsb + w - 1, lsb) if w > 0 else None)
        lsb += max(w, 0)
    return out


def io_layer(module: str, model: str, hdr: str, in_type: FixedType, in_kifs: Sequence[Sequence[int]],
             out_type: FixedType, out_kifs: Sequence[Sequence[int]]) -> str:
    """A (clk, x, y) layer for bondflow's core template around da4ml's top ``model`` (clk, model_inp, model_out)."""
    wi, wo = in_type.width, out_type.width
    if any(tuple(k) != kif(in_type) for k in in_kifs):  # worker traced from_kif(in_type): the layout is ours
        raise TemplateRenderError(f"da4ml input ports must be {kif(in_type)} per element (a bondflow bug), not {sorted(set(map(tuple, in_kifs)))}")
    in_bits = sum(k + i + f for k, i, f in in_kifs)
    out_bits = sum(max(k + i + f, 0) for k, i, f in out_kifs)
    lines = [hdr.rstrip("\n"),
             f"// {module}: bondflow's raw {in_type} x {len(in_kifs)} -> da4ml's packed ports -> raw {out_type} x {len(out_kifs)}.",
             "//   da4ml trims each output to the bits its range needs: re-extend the sign (or zeros) and the dropped",
             "//   fractional zeros to the graph's output type. Latency is da4ml's; this layer adds no register.",
             "`timescale 1ns/1ps", "`default_nettype none",
             f"module {module} (", "    input  wire clk,", f"    input  wire [{len(in_kifs) * wi - 1}:0] x,",
             f"    output wire [{len(out_kifs) * wo - 1}:0] y", ");",
             f"    wire [{in_bits - 1}:0] model_inp = x;  // same layout: element j at [{wi}*j +: {wi}] in both",
             f"    wire [{max(out_bits, 1) - 1}:0] model_out;"]
    if out_bits == 0:  # every output constant zero: da4ml's port would be empty
        raise TemplateRenderError("da4ml outputs must not all be constant zero for the shell, not every one")
    lines.append(f"    {model} u_model (.clk(clk), .model_inp(model_inp), .model_out(model_out));")
    for j, ((k, i, f), sl) in enumerate(zip(out_kifs, packed_slices(out_kifs))):
        dst = f"y[{j * wo} +: {wo}]"
        if sl is None:
            lines.append(f"    assign {dst} = {wo}'d0;  // constant zero")
            continue
        width, shift = k + i + f, out_type.frac_bits - f
        ext = wo - width - shift
        if shift < 0 or ext < 0:
            raise TemplateRenderError(f"da4ml output {j} ({k},{i},{f}) must fit {out_type} (a bondflow bug), not exceed it")
        fill = f"model_out[{sl[0]}]" if k else "1'b0"
        parts = ([f"{{{ext}{{{fill}}}}}"] if ext else []) + [f"model_out[{sl[0]}:{sl[1]}]"] + \
                ([f"{{{shift}{{1'b0}}}}"] if shift else [])
        lines.append(f"    assign {dst} = {{{', '.join(parts)}}};")
    lines += ["endmodule", "`default_nettype wire", ""]
    return "\n".join(lines)

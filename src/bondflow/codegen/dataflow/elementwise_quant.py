"""Dataflow RTL of an ElementQuant op (HGQ's per-element precision): per feature one cast to its own type, then
an exact move onto the op's result type (sign/zero extension and appended zeros); 0-bit features are 0.

Combinational (latency 0): a cast is one rounding add and a saturation mux, so it rides in front of the next
layer's first register instead of costing a cycle per quantizer (HGQ puts one before every layer), as da4ml folds
its quantizers into the adder graph. On an image streamed pixel by pixel (``positional_quant_layer``) the element
types differ per pixel: a position counter picks each channel's cast, and one register holds the result.
"""
from __future__ import annotations

import math

from ...ir.element_quant import ElementQuant
from ...ir.ops import Op
from ...ir.types import FixedType
from ..layers import LayerRTL, requant_params
from ..render import render

__all__ = ["elementwise_quant_layer", "positional_quant_layer"]


def _cast(tag: str, x: str, xt: FixedType, t: FixedType, yt: FixedType) -> tuple[list[str], list[str], list[str]]:
    """Wires, assigns and the instance computing ``v_<tag>``: x (of xt) cast to t, then exactly onto yt."""
    xw, yw = xt.width, yt.width
    decls = [f"wire [{t.width - 1}:0] e_{tag};", f"wire [{yw - 1}:0] v_{tag};"]
    # bondflow_requant works in IN_W + 3 + |shift| bits: an element type wider than that reads x sign- or
    # zero-extended first (the same value).
    m = max(0, t.width + 1 - (xw + 3 + abs(xt.frac_bits - t.frac_bits)))
    src, st = x, xt
    if m:
        st = FixedType(xw + m, xt.int_bits + m, signed=xt.signed)
        fill = "{" + str(m) + "{" + x + "[" + str(xw - 1) + "]}}" if xt.signed else f"{m}'d0"
        src = "{" + fill + ", " + x + "}"
    insts = [f"bondflow_requant {requant_params(st, t, False)} u_q_{tag} (.x({src}), .y(e_{tag}));"]
    # onto the result type: exact (it holds t), so sign or zero extension and appended zeros
    shift, ext = yt.frac_bits - t.frac_bits, yw - t.width - (yt.frac_bits - t.frac_bits)
    sign = f"e_{tag}[{t.width - 1}]" if t.signed else "1'b0"
    parts = ([f"{{{ext}{{{sign}}}}}"] if ext else []) + [f"e_{tag}"] + ([f"{shift}'d0"] if shift else [])
    return decls, [f"assign v_{tag} = {{{', '.join(parts)}}};"], insts


def elementwise_quant_layer(module: str, op: Op, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """y_j = cast(cast_j(x_j) -> result_type): the first cast is bondflow_requant with element j's type (the golden
    model's FixedType.requantize), the second only widens (the result type holds every element type)."""
    assert isinstance(op, ElementQuant)
    xw, yt = xt.width, op.result_type
    yw = yt.width
    decls, assigns, regs, insts = [], [], [], []
    unused = False
    for j, t in enumerate(op.types()):
        decls.append(f"wire [{yw - 1}:0] y_{j};")
        if t is None:  # no bits: HGQ's pruned input, always 0
            assigns.append(f"assign y_{j} = {yw}'d0;")
            unused = True
        else:
            decls.append(f"wire [{xw - 1}:0] x_{j} = x[{j * xw + xw - 1}:{j * xw}];")
            d, a, i = _cast(str(j), f"x_{j}", xt, t, yt)
            decls += d
            assigns += a + [f"assign y_{j} = v_{j};"]
            insts += i
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    text = render("layers/dense_layer.v.j2", header=hdr, module=module, n_in=n, n_out=n, x_w=xw, y_w=yw, n_mult=0,
                  act="", title=f"{n} per-element casts (HGQ precision), combinational", latency=0, x_type=str(xt),
                  w_type="-", acc_type="-", y_type=str(yt), decls=decls, assigns=assigns, regs=regs, insts=insts,
                  x_partly_unused=unused)
    return LayerRTL(module, text, 0, n, xw, n, yw, 0)


def position_bits(pixels: int) -> int:
    """Bits of a counter over ``pixels`` positions (at least 1)."""
    return max(1, (pixels - 1).bit_length())


def positional_quant_layer(module: str, op: Op, xt: FixedType, shape: tuple[int, ...], hdr: str) -> LayerRTL:
    """An ElementQuant on an image arriving one pixel (``shape[-1]`` channels) per sample: x carries the pixel's
    raster position above its channels; channel c's result is the cast of its type at that position (a case over
    the positions, the most common type as default), registered (latency 1)."""
    assert isinstance(op, ElementQuant)
    c, pixels = shape[-1], int(math.prod(shape[:-1]))
    xw, yt = xt.width, op.result_type
    yw, pw = yt.width, position_bits(pixels)
    types = op.types()
    decls, assigns, regs, insts = [f"wire [{pw - 1}:0] pos = x[{c * xw + pw - 1}:{c * xw}];"], [], [], []
    unused = False
    for ch in range(c):
        decls.append(f"wire [{xw - 1}:0] x_{ch} = x[{ch * xw + xw - 1}:{ch * xw}];")
        decls.append(f"reg  [{yw - 1}:0] r_{ch};")
        kinds: dict[FixedType | None, list[int]] = {}
        for p in range(pixels):
            kinds.setdefault(types[p * c + ch], []).append(p)
        vals: list[tuple[str, list[int]]] = []
        for k, (t, where) in enumerate(sorted(kinds.items(), key=lambda kv: -len(kv[1]))):
            if t is None:  # no bits at these positions (HGQ's pruned inputs): 0
                vals.append((f"{yw}'d0", where))
                unused = unused or len(kinds) == 1
                continue
            d, a, i = _cast(f"{ch}_{k}", f"x_{ch}", xt, t, yt)
            decls, assigns, insts = decls + d, assigns + a, insts + i
            vals.append((f"v_{ch}_{k}", where))
        if len(vals) == 1:
            regs.append(f"r_{ch} <= {vals[0][0]};")
        else:
            regs.append("case (pos)")
            for v, where in vals[1:]:
                regs.append("    " + ", ".join(f"{pw}'d{p}" for p in where) + f": r_{ch} <= {v};")
            regs += [f"    default: r_{ch} <= {vals[0][0]};", "endcase"]
        assigns.append(f"assign y[{ch * yw + yw - 1}:{ch * yw}] = r_{ch};")
    text = render("layers/dense_layer.v.j2", header=hdr, module=module, n_in=c, n_out=c, x_w=xw, y_w=yw, n_mult=0,
                  act="", title=f"per-element casts of {c} channels over {pixels} pixel positions (HGQ precision), registered",
                  latency=1, x_type=str(xt),
                  w_type="-", acc_type="-", y_type=str(yt), decls=decls, assigns=assigns, regs=regs, insts=insts,
                  x_partly_unused=True, x_bits=c * xw + pw)
    return LayerRTL(module, text, 1, c, xw, c, yw, 0)

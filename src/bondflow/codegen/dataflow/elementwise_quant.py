"""Dataflow RTL of an ElementQuant op (HGQ's per-element precision): per feature one cast to its own type, then
an exact move onto the op's result type (sign/zero extension and appended zeros); 0-bit features are 0.

Combinational (latency 0): a cast is one rounding add and a saturation mux, so it rides in front of the next
layer's first register instead of costing a cycle per quantizer (HGQ puts one before every layer), as da4ml folds
its quantizers into the adder graph."""
from __future__ import annotations

from ...ir.element_quant import ElementQuant
from ...ir.ops import Op
from ...ir.types import FixedType
from ..layers import LayerRTL, requant_params
from ..render import render

__all__ = ["elementwise_quant_layer"]


def elementwise_quant_layer(module: str, op: Op, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """y_j = cast(cast_j(x_j) -> result_type): the first cast is bondflow_requant with element j's type (the golden
    model's FixedType.requantize), the second only widens (the result type holds every element type)."""
    assert isinstance(op, ElementQuant)
    xw, yt = xt.width, op.result_type
    yw = yt.width
    decls, assigns, regs, insts = [], [], [], []
    unused = False
    for j, t in enumerate(op.types()):
        x = f"x[{j * xw + xw - 1}:{j * xw}]"
        decls.append(f"wire [{yw - 1}:0] y_{j};")
        if t is None:  # no bits: HGQ's pruned input, always 0
            assigns.append(f"assign y_{j} = {yw}'d0;")
            unused = True
        else:
            decls += [f"wire [{t.width - 1}:0] e_{j};", f"wire [{yw - 1}:0] v_{j};"]
            # bondflow_requant works in IN_W + 3 + |shift| bits: an element type wider than that reads x sign- or
            # zero-extended first (the same value).
            m = max(0, t.width + 1 - (xw + 3 + abs(xt.frac_bits - t.frac_bits)))
            src, st = x, xt
            if m:
                st = FixedType(xw + m, xt.int_bits + m, signed=xt.signed)
                fill = "{" + str(m) + "{x[" + str(j * xw + xw - 1) + "]}}" if xt.signed else f"{m}'d0"
                src = "{" + fill + ", " + x + "}"
            insts.append(f"bondflow_requant {requant_params(st, t, False)} u_q_{j} (.x({src}), .y(e_{j}));")
            # onto the result type: exact (it holds t), so sign or zero extension and appended zeros
            shift, ext = yt.frac_bits - t.frac_bits, yw - t.width - (yt.frac_bits - t.frac_bits)
            sign = f"e_{j}[{t.width - 1}]" if t.signed else "1'b0"
            parts = ([f"{{{ext}{{{sign}}}}}"] if ext else []) + [f"e_{j}"] + ([f"{shift}'d0"] if shift else [])
            assigns.append(f"assign v_{j} = {{{', '.join(parts)}}};")
            assigns.append(f"assign y_{j} = v_{j};")
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    text = render("layers/dense_layer.v.j2", header=hdr, module=module, n_in=n, n_out=n, x_w=xw, y_w=yw, n_mult=0,
                  act="per-element casts (HGQ precision)", latency=0, x_type=str(xt), w_type="-", acc_type="-",
                  y_type=str(yt), decls=decls, assigns=assigns, regs=regs, insts=insts, x_partly_unused=unused)
    return LayerRTL(module, text, 0, n, xw, n, yw, 0)

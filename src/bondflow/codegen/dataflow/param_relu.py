"""Dataflow RTL of a ParamRelu (bounded/leaky ReLU): per feature a constant product or shift, one exact cast, the
clamp to the bound's cast, registered. Bit-exact with bondflow.ir.reference.param_relu_kernel."""
from __future__ import annotations

from ...ir.ops import Op, ParamRelu
from ...ir.types import FixedType
from ..layers import LayerRTL, requant_params
from ..render import render, vlog_literal

__all__ = ["param_relu_layer"]


def param_relu_layer(module: str, op: Op, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """v = x >= 0 ? x << af : x * alpha (exact, xf + af fraction bits); y = x > thr ? cast(max) : cast(v)."""
    assert isinstance(op, ParamRelu)
    xw, yt = xt.width, op.result_type
    yw, ev = yt.width, xw + 1  # x read as signed: one bit more, so unsigned inputs keep their top bit
    at = op.alpha_type
    af, aw = (at.frac_bits, at.width) if at is not None else (0, 0)
    pw = ev + max(aw, 1)  # holds x * alpha and x << af (|alpha raw| < 2^(aw-1), af <= aw - ...: checked below)
    pw = max(pw, ev + af + 1)
    vt = FixedType(pw, pw - (xt.frac_bits + af))  # the exact pre-cast value, signed
    thr = op.threshold_raw(xt)
    decls, assigns, regs, insts = [], [], [], []
    for j in range(n):
        x = f"x[{j * xw + xw - 1}:{j * xw}]"
        ext = f"{{x[{j * xw + xw - 1}], {x}}}" if xt.signed else f"{{1'b0, {x}}}"
        decls += [f"wire signed [{ev - 1}:0] xe_{j};", f"wire signed [{pw - 1}:0] v_{j};", f"wire [{yw - 1}:0] a_{j};",
                  f"reg [{yw - 1}:0] y_{j};"]
        assigns.append(f"assign xe_{j} = {ext};")
        pos = f"({{{{{pw - ev}{{xe_{j}[{ev - 1}]}}}}, xe_{j}}} <<< {af})"
        if op.alpha_raw:
            neg = f"($signed({{{{{pw - ev}{{xe_{j}[{ev - 1}]}}}}, xe_{j}}}) * $signed({vlog_literal(op.alpha_raw, pw)}))"
        else:
            neg = f"{pw}'sd0"
        assigns.append(f"assign v_{j} = xe_{j}[{ev - 1}] ? {neg} : $signed({pos});")
        insts.append(f"bondflow_requant {requant_params(vt, yt, False)} u_cast_{j} (.x(v_{j}), .y(a_{j}));")
        if thr is None:
            regs.append(f"y_{j} <= a_{j};")
        else:
            regs.append(f"y_{j} <= ($signed(xe_{j}) > $signed({vlog_literal(thr, ev)})) ? {vlog_literal(op.max_raw(), yw)} : a_{j};")
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    text = render("layers/dense_layer.v.j2", header=hdr, module=module, n_in=n, n_out=n, x_w=xw, y_w=yw, n_mult=0,
                  act=op.function, latency=1, x_type=str(xt), w_type=str(at) if at else "-", acc_type=str(vt),
                  y_type=str(yt), decls=decls, assigns=assigns, regs=regs, insts=insts, x_partly_unused=False)
    return LayerRTL(module, text, 1, n, xw, n, yw, 0)

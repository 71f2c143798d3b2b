"""Dataflow RTL of a ParamRelu (bounded/leaky ReLU) and a PRelu (a slope per element): per feature a constant product or
shift, one exact cast, the clamp to the bound's cast, registered. Bit-exact with bondflow.ir.reference's kernels."""
from __future__ import annotations

from ...ir.ops import Op, ParamRelu, PRelu
from ...ir.types import FixedType
from ..layers import LayerRTL, requant_params
from ..render import render, vlog_literal

__all__ = ["param_relu_layer", "prelu_layer"]


def param_relu_layer(module: str, op: Op, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """v = x >= 0 ? x << af : x * alpha (exact, xf + af fraction bits); y = x > thr ? cast(max) : cast(v)."""
    assert isinstance(op, ParamRelu)
    return _relu_lanes(module, op, xt, n, hdr, [op.alpha_raw] * n, op.alpha_type, op.threshold_raw(xt), op.max_raw(), op.function)


def prelu_layer(module: str, op: Op, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """v = x >= 0 ? x << af : x * alpha[k] (exact), y = cast(v); lane k's slope is element k's (per channel: k mod C)."""
    assert isinstance(op, PRelu)
    return _relu_lanes(module, op, xt, n, hdr, [int(a) for a in op.slopes(n)], op.alpha_type, None, 0, "prelu")


def _relu_lanes(module: str, op: Op, xt: FixedType, n: int, hdr: str, alphas: list[int], at: FixedType | None,
                thr: int | None, max_raw: int, act: str) -> LayerRTL:
    """Lane j: v = x >= 0 ? x << af : x * alphas[j] (exact), y = x > thr ? max_raw : cast(v), registered."""
    xw, yt = xt.width, op.result_type
    yw, ev = yt.width, xw + 1  # x read as signed: one bit more, so unsigned inputs keep their top bit
    af, aw = (at.frac_bits, at.width) if at is not None else (0, 0)
    pw = ev + max(aw, 1)  # holds x * alpha and x << af (|alpha raw| < 2^(aw-1), af <= aw - ...: checked below)
    pw = max(pw, ev + af + 1)
    vt = FixedType(pw, pw - (xt.frac_bits + af))  # the exact pre-cast value, signed
    decls, assigns, regs, insts = [], [], [], []
    for j in range(n):
        x = f"x[{j * xw + xw - 1}:{j * xw}]"
        ext = f"{{x[{j * xw + xw - 1}], {x}}}" if xt.signed else f"{{1'b0, {x}}}"
        decls += [f"wire signed [{ev - 1}:0] xe_{j};", f"wire signed [{pw - 1}:0] v_{j};", f"wire [{yw - 1}:0] a_{j};",
                  f"reg [{yw - 1}:0] y_{j};"]
        assigns.append(f"assign xe_{j} = {ext};")
        pos = f"({{{{{pw - ev}{{xe_{j}[{ev - 1}]}}}}, xe_{j}}} <<< {af})"
        if alphas[j]:
            neg = f"($signed({{{{{pw - ev}{{xe_{j}[{ev - 1}]}}}}, xe_{j}}}) * $signed({vlog_literal(alphas[j], pw)}))"
        else:
            neg = f"{pw}'sd0"
        assigns.append(f"assign v_{j} = xe_{j}[{ev - 1}] ? {neg} : $signed({pos});")
        insts.append(f"bondflow_requant {requant_params(vt, yt, False)} u_cast_{j} (.x(v_{j}), .y(a_{j}));")
        if thr is None:
            regs.append(f"y_{j} <= a_{j};")
        else:
            regs.append(f"y_{j} <= ($signed(xe_{j}) > $signed({vlog_literal(thr, ev)})) ? {vlog_literal(max_raw, yw)} : a_{j};")
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    text = render("layers/dense_layer.v.j2", header=hdr, module=module, n_in=n, n_out=n, x_w=xw, y_w=yw, n_mult=0,
                  act=act, latency=1, x_type=str(xt), w_type=str(at) if at else "-", acc_type=str(vt),
                  y_type=str(yt), decls=decls, assigns=assigns, regs=regs, insts=insts, x_partly_unused=False)
    return LayerRTL(module, text, 1, n, xw, n, yw, 0)

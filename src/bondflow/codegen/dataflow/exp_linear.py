"""Dataflow RTL of hls4ml's ELU and SELU: a linear branch for x >= 0, a ROM of already-cast table values for x < 0."""
from __future__ import annotations

import numpy as np

from ...ir.ops import Elu, ExpLinear, Op, Selu
from ...ir.reference import exp_linear_table
from ...ir.types import FixedType
from ..layers import LayerRTL, requant_params
from ..render import render, vlog_literal
from .tables import _LINT_OFF, _LINT_ON, _rom

__all__ = ["exp_linear_layer"]


def _rom_values(op: ExpLinear) -> np.ndarray:
    """The negative branch's outputs per table entry, cast to the result type (ELU: alpha * entry, exact, then cast)."""
    t, yt = exp_linear_table(op), op.result_type
    if isinstance(op, Elu):
        return yt.requantize(t * np.int64(op.alpha_raw), op.table_type.frac_bits + op.alpha_type.frac_bits)
    return yt.requantize(t, op.table_type.frac_bits)


def exp_linear_layer(module: str, op: Op, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """Stage 1: the index min(floor(-x * N / 8), N - 1), the sign and the cast linear branch (ELU: x, SELU: lambda * x,
    exact product) registered; stage 2: the ROM entry for a negative x, else the linear branch. Bit-exact with
    bondflow.ir.reference.exp_linear_kernel."""
    assert isinstance(op, ExpLinear)
    xw, yt, size = xt.width, op.result_type, op.table_size
    yw, ev = yt.width, xw + 1  # x read as signed: one bit more, so unsigned inputs keep their top bit
    aw = max((size - 1).bit_length(), 1)
    k = (op.RANGE.bit_length() - 1) + xt.frac_bits  # -x * N / 8 in raw units: -x_raw * N / 2^k
    pw = ev + 1 + size.bit_length() + max(-k, 0)  # |x| * N, and its left shift when k < 0
    if isinstance(op, Selu):
        lt = Selu.LAMBDA_TYPE
        lw = ev + lt.width + 1
        vt = FixedType(lw, lw - (xt.frac_bits + lt.frac_bits))  # lambda * x, exact, signed
    else:
        vt = FixedType(ev, ev - xt.frac_bits)  # x itself, read as signed
    rom = f"{module}_rom"
    extra = [_rom(rom, _rom_values(op), yt, f"{op.kind} table of '{op.name}' ({size} entries, x in [-8, 0)), cast to the "
                                            "result type", hdr)]
    decls, assigns, regs, insts = [], [], [], []
    for j in range(n):
        x = f"x[{j * xw + xw - 1}:{j * xw}]"
        ext = f"{{x[{j * xw + xw - 1}], {x}}}" if xt.signed else f"{{1'b0, {x}}}"
        decls += [f"wire signed [{ev - 1}:0] xe_{j};", f"wire [{pw - 1}:0] m_{j}, q_{j};", f"wire signed [{vt.width - 1}:0] v_{j};",
                  f"wire [{yw - 1}:0] c_{j}, t_{j};", f"reg [{aw - 1}:0] a_{j};", f"reg s_{j};", f"reg [{yw - 1}:0] p_{j}, y_{j};"]
        assigns.append(f"assign xe_{j} = {ext};")
        # |x| for a negative x (unused otherwise), times N: exact and non-negative
        assigns.append(f"assign m_{j} = {{{{{pw - ev}{{1'b0}}}}, -xe_{j}}} * {vlog_literal(size, pw)};")
        assigns.append(f"assign q_{j} = m_{j} >> {k};" if k >= 0 else f"assign q_{j} = m_{j} << {-k};")
        if isinstance(op, Selu):
            assigns.append(f"assign v_{j} = $signed({{{{{vt.width - ev}{{xe_{j}[{ev - 1}]}}}}, xe_{j}}}) * "
                           f"$signed({vlog_literal(op.lambda_raw, vt.width)});")
        else:
            assigns.append(f"assign v_{j} = xe_{j};")
        insts.append(f"bondflow_requant {requant_params(vt, yt, False)} u_cast_{j} (.x(v_{j}), .y(c_{j}));")
        insts.append(f"{rom} u_rom_{j} (.a(a_{j}), .d(t_{j}));")
        regs.append(f"a_{j} <= (q_{j} > {vlog_literal(size - 1, pw)}) ? {vlog_literal(size - 1, aw)} : q_{j}[{aw - 1}:0];")
        regs.append(f"s_{j} <= xe_{j}[{ev - 1}];")
        regs.append(f"p_{j} <= c_{j};")
        regs.append(f"y_{j} <= s_{j} ? t_{j} : p_{j};")
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    decls = [_LINT_OFF] + decls + [_LINT_ON]  # the index keeps only its low bits once clipped
    text = render("dataflow/table_layer.v.j2", header=hdr, module=module, n=n, x_w=xw, y_w=yw, latency=2,
                  x_type=str(xt), y_type=str(yt), description=f"hls4ml's table {op.kind} ({size} entries)",
                  decls=decls, assigns=assigns, regs=regs, insts=insts)
    return LayerRTL(module, text, 2, n, xw, n, yw, 0, tuple(extra))

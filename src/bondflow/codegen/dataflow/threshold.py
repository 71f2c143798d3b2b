"""Dataflow RTL of a Threshold op (FINN's MultiThreshold): per feature, K constant compares, a count, one level, registered."""
from __future__ import annotations

from ...ir.ops import Op, Threshold
from ...ir.types import FixedType
from ..layers import LayerRTL
from ..render import render, vlog_literal

__all__ = ["threshold_layer"]


def threshold_layer(module: str, op: Op, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """y_j = offset + step * (number of k with x_j >= t_jk); levels fit the result type, so adding modulo 2^W is exact."""
    assert isinstance(op, Threshold)
    xw, yt = xt.width, op.result_type
    yw, cw = yt.width, xt.width + 1  # thresholds span min_raw .. max_raw + 1 ("never reached"): one bit more than x
    decls, assigns, regs = [], [], []
    for j in range(n):
        row = op.thresholds[j if op.thresholds.shape[0] > 1 else 0]
        x = f"x[{j * xw + xw - 1}:{j * xw}]"
        ext = f"{{x[{j * xw + xw - 1}], {x}}}" if xt.signed else f"{{1'b0, {x}}}"
        decls += [f"wire signed [{cw - 1}:0] xe_{j};", f"wire [{yw - 1}:0] v_{j};", f"reg [{yw - 1}:0] y_{j};"]
        assigns.append(f"assign xe_{j} = {ext};")
        # Each reached threshold adds one step; the sum wraps at W bits, and every level is in range.
        terms = [vlog_literal(op.offset, yw)] + [
            f"(($signed(xe_{j}) >= $signed({vlog_literal(int(t), cw)})) ? {vlog_literal(op.step, yw)} : {yw}'d0)" for t in row]
        assigns.append(f"assign v_{j} = {' + '.join(terms)};")
        regs.append(f"y_{j} <= v_{j};")
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    text = render("layers/dense_layer.v.j2", header=hdr, module=module, n_in=n, n_out=n, x_w=xw, y_w=yw, n_mult=0,
                  act=f"{op.thresholds.shape[1]}-threshold", latency=1, x_type=str(xt), w_type="-", acc_type="-",
                  y_type=str(yt), decls=decls, assigns=assigns, regs=regs, insts=[], x_partly_unused=False)
    return LayerRTL(module, text, 1, n, xw, n, yw, 0)

"""Dense layers without multipliers: the CMVM adder graph as Verilog, each signal as narrow as its exact range, pipelined."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir.ops import Activation, Dense
from ..ir.types import FixedType
from .cmvm import AdderGraph, Term, build_cmvm
from .render import render, vlog_literal

__all__ = ["dense_lut_layer", "cmvm_graph", "lut_cost", "CSE_MAX_DEPTH"]

#: Adder depth allowed for shared subexpressions: sharing deeper saves few adders and lengthens the trees.
CSE_MAX_DEPTH = 3


def _bits(lo: int, hi: int) -> tuple[int, bool]:
    """(width, signed) of the narrowest two's-complement or unsigned field holding every value in lo..hi."""
    if lo >= 0:
        return max(1, hi.bit_length()), False
    return 1 + max((-lo - 1).bit_length(), hi.bit_length()), True


def cmvm_graph(op: Dense, x_type: FixedType, shift: int) -> AdderGraph:
    """The adder graph of one Dense layer on the accumulator grid, bias included (as the golden model places it)."""
    acc = op.accum_type
    bias = [int(b) for b in acc.requantize(np.asarray(op.bias), op.bias_type.frac_bits)]
    return build_cmvm(np.asarray(op.weight), x_type.min_raw, x_type.max_raw, shift=shift, bias=bias, max_depth=CSE_MAX_DEPTH)


class _Widths:
    """Each node's stored width: its exact range, but never more bits than can still reach the wrapping accumulator."""

    def __init__(self, g: AdderGraph, acc_w: int) -> None:
        big = acc_w + 1
        use = [big] * len(g.nodes)  # the least shift at which a node's value lands on the accumulator
        for t in g.outputs:
            if t is not None:
                use[t.node] = min(use[t.node], t.shift)
        for k in range(len(g.nodes) - 1, -1, -1):
            n = g.nodes[k]
            if n.kind == "add" and use[k] < big:
                use[n.a] = min(use[n.a], use[k])
                use[n.b] = min(use[n.b], use[k] + n.shift)
        self.width: list[int] = []
        self.signed: list[bool] = []
        self.wrapped: list[bool] = []
        for k, n in enumerate(g.nodes):
            w, s = _bits(n.lo, n.hi)
            cap = max(1, acc_w - min(use[k], acc_w - 1))
            self.width.append(min(w, cap))
            self.signed.append(s)
            self.wrapped.append(w > cap)  # holds only the low bits; every reader needs no more than those


def lut_cost(g: AdderGraph, acc_w: int) -> int:
    """Adder bits of the graph (about one LUT each on 6-input-LUT FPGAs with carry chains)."""
    w = _Widths(g, acc_w)
    return sum(max(w.width[k] - n.shift, 0) for k, n in enumerate(g.nodes) if n.kind == "add")


class _Emitter:
    """Names, slices and pipeline registers of the graph's signals."""

    def __init__(self, g: AdderGraph, acc_w: int, stage_adders: int, x_w: int) -> None:
        self.g, self.n, self.x_w = g, stage_adders, x_w
        self.w = _Widths(g, acc_w)
        self.decls: list[str] = []
        self.assigns: list[str] = []
        self.regs: list[str] = []
        self.delayed: dict[tuple[int, int], str] = {}

    def stage(self, k: int) -> int:
        """The pipeline stage in which node ``k`` is computed (inputs and constants: stage 0)."""
        d = self.g.nodes[k].depth
        return 0 if d == 0 else (d - 1) // self.n

    def name(self, k: int, stage: int) -> str:
        """Node ``k``'s signal as seen in ``stage``: itself, or a copy registered once per stage boundary crossed."""
        home = self.stage(k)
        if stage <= home:
            return f"n{k}"
        key = (k, stage)
        if key not in self.delayed:
            prev = self.name(k, stage - 1)
            r = f"n{k}_r{stage}"
            self.decls.append(f"reg [{self.w.width[k] - 1}:0] {r};")
            self.regs.append(f"{r} <= {prev};")
            self.delayed[key] = r
        return self.delayed[key]

    def bits(self, k: int, lo: int, width: int, stage: int) -> str:
        """Bits ``lo .. lo+width-1`` of node ``k``'s value (sign- or zero-extended as its range says)."""
        node = self.g.nodes[k]
        if node.kind == "const":
            return vlog_literal(node.index >> lo, width)
        s, wk = self.name(k, stage), self.w.width[k]
        have = wk - lo
        if have >= width:
            return s if (lo == 0 and width == wk) else f"{s}[{lo + width - 1}:{lo}]"
        fill = f"{s}[{wk - 1}]" if self.w.signed[k] else "1'b0"
        if have <= 0:
            return f"{{{width}{{{fill}}}}}"
        return f"{{{{{width - have}{{{fill}}}}}, {s}[{wk - 1}:{lo}]}}"

    def emit(self) -> None:
        for k, node in enumerate(self.g.nodes):
            if node.kind == "in":
                xw = self.x_w
                self.decls.append(f"wire [{xw - 1}:0] n{k};")
                self.assigns.append(f"assign n{k} = x[{node.index * xw + xw - 1}:{node.index * xw}];")
            elif node.kind == "add":
                self._adder(k)

    def _adder(self, k: int) -> None:
        n, W, st = self.g.nodes[k], self.w.width[k], self.stage(k)
        op = "+" if n.sign > 0 else "-"
        self.decls.append(f"wire [{W - 1}:0] n{k};")
        d = n.shift
        if n.neg_a:  # (b << d) - a: a full-width subtraction (only at a few roots, see cmvm._combine)
            b = f"{{{self.bits(n.b, 0, W - d, st)}, {d}'d0}}" if 0 < d < W else (self.bits(n.b, 0, W, st) if d == 0 else f"{W}'d0")
            self.assigns.append(f"assign n{k} = {b} - {self.bits(n.a, 0, W, st)};")
        elif d >= W:  # b only reaches bits this wrapping node does not keep
            self.assigns.append(f"assign n{k} = {self.bits(n.a, 0, W, st)};")
        elif d == 0:
            self.assigns.append(f"assign n{k} = {self.bits(n.a, 0, W, st)} {op} {self.bits(n.b, 0, W, st)};")
        else:  # a's low bits pass through: the adder spans only the bits b reaches
            hi = f"{self.bits(n.a, d, W - d, st)} {op} {self.bits(n.b, 0, W - d, st)}"
            self.assigns.append(f"assign n{k} = {{{hi}, {self.bits(n.a, 0, d, st)}}};")


def dense_lut_layer(module: str, op: Dense, x_type: FixedType, act: Activation | None, hdr: str, shift: int,
                    stage_adders: int, requant_params: Callable[[FixedType, FixedType, bool], str],
                    graph: AdderGraph | None = None) -> tuple[str, int, AdderGraph]:
    """Verilog text, latency and adder graph of a multiplier-free Dense (+ fused activation cast).

    The adder graph and the cast share the pipeline: a register after every ``stage_adders`` adder levels, the
    cast counting as one level, its result registered as the layer output.
    """
    acc = op.accum_type
    aw = acc.width
    g = graph if graph is not None else cmvm_graph(op, x_type, shift)
    em = _Emitter(g, aw, stage_adders, x_type.width)
    em.emit()
    depth = g.depth
    latency = max(1, -(-(depth + 1) // stage_adders))
    last = latency - 1
    insts: list[str] = []
    y_type = act.result_type if act else op.result_type
    yw = y_type.width
    for j, t in enumerate(g.outputs):
        src, src_t = _acc_signal(em, t, acc, last, op.result_type.width)
        em.decls.append(f"wire [{src_t.width - 1}:0] acc_{j};")
        em.assigns.append(f"assign acc_{j} = {src};")
        em.decls.append(f"wire [{op.result_type.width - 1}:0] d_{j};")
        insts.append(f"bondflow_requant {requant_params(src_t, op.result_type, False)} u_rq_{j} (.x(acc_{j}), .y(d_{j}));")
        if act:
            em.decls.append(f"wire [{yw - 1}:0] a_{j};")
            insts.append(f"bondflow_requant {requant_params(op.result_type, act.result_type, act.function == 'relu')} "
                         f"u_act_{j} (.x(d_{j}), .y(a_{j}));")
        em.decls.append(f"reg [{yw - 1}:0] y_{j};")
        em.regs.append(f"y_{j} <= {'a' if act else 'd'}_{j};")
        em.assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    nnz = int(np.count_nonzero(op.weight))
    text = render("layers/dense_cmvm.v.j2", header=hdr, module=module, n_in=op.n_in, n_out=op.n_out, x_w=x_type.width,
                  y_w=yw, nnz=nnz, adders=g.adders, shared=g.shared, depth=depth, stage_adders=stage_adders,
                  act=(act.function if act else None), latency=latency, x_type=str(x_type), w_type=str(op.weight_type),
                  acc_type=str(acc), y_type=str(y_type), decls=em.decls, assigns=em.assigns, regs=em.regs, insts=insts)
    return text, latency, g


def _acc_signal(em: _Emitter, t: Term | None, acc: FixedType, stage: int, min_w: int) -> tuple[str, FixedType]:
    """The accumulator of one output and its type: narrowed to the sum's exact range when that range cannot wrap.

    Never narrower than ``min_w`` (the cast's output width: bondflow_requant works at its input's width).
    """
    if t is None:
        return vlog_literal(0, min_w), FixedType(min_w, min_w - acc.frac_bits, signed=False)
    n = em.g.nodes[t.node]
    lo, hi = n.lo << t.shift, n.hi << t.shift
    if acc.min_raw <= lo and hi <= acc.max_raw and not em.w.wrapped[t.node]:
        w, signed = _bits(lo, hi)  # the exact sum, as the golden model's accumulator holds it (no wrap possible)
        w = max(w, min_w)
    else:
        w, signed = acc.width, acc.signed  # the wrapping accumulator: the sum's low bits
    if n.kind == "const":
        return vlog_literal(n.index << t.shift, w), FixedType(w, w - acc.frac_bits, signed=signed)
    body = em.bits(t.node, 0, w - t.shift, stage) if w > t.shift else None
    text = body if not t.shift else (f"{{{body}, {t.shift}'d0}}" if body else vlog_literal(0, w))
    return text, FixedType(w, w - acc.frac_bits, signed=signed)

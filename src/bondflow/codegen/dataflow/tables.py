"""Table-based layers of the dataflow pipeline: hls4ml's sigmoid, tanh and softmax as ROMs, bit-exact with the golden model."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir.ops import Op, Softmax, TableActivation
from ...ir.reference import SOFTMAX_ACCUM_TYPE, activation_table, softmax_sizes, softmax_tables
from ...ir.types import FixedType
from ..layers import LayerRTL, requant_params
from ..render import render, vlog_literal

__all__ = ["table_layer"]

_LINT_OFF = "/* verilator lint_off UNUSEDSIGNAL */"
_LINT_ON = "/* verilator lint_on UNUSEDSIGNAL */"


def _rom(module: str, values: np.ndarray, data_type: FixedType, description: str, hdr: str) -> tuple[str, str]:
    size = len(values)
    addr_w = max((size - 1).bit_length(), 1)
    text = render("dataflow/rom.v.j2", header=hdr, module=module, description=description, size=size, addr_w=addr_w,
                  data_w=data_type.width, data_type=str(data_type), values=[int(v) for v in values],
                  default=int(values[-1]))
    return f"rtl/{module}.v", text


def _slice(name: str, j: int, w: int) -> str:
    return f"{name}[{j * w + w - 1}:{j * w}]"


def _sext(sig: str, w: int, to: int, signed: bool) -> str:
    """``sig`` (``w`` bits) widened to ``to`` bits by sign or zero extension."""
    if to == w:
        return sig
    ext = f"{sig}[{w - 1}]" if signed else "1'b0"
    return f"{{{{{to - w}{{{ext}}}}}, {sig}}}"


def sigmoid_layer(module: str, op: TableActivation, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """A sigmoid or tanh: index = clip(trunc0(x * N / (2 * half_range)) + N/2, 0, N-1) (registered), then the ROM
    of already-cast outputs (registered)."""
    size = op.table_size
    k = (2 * op.half_range).bit_length() - 1 + xt.frac_bits  # x * N / 2R in raw units: x_raw * N / 2^k (2R = 16 or 8)
    aw = max((size - 1).bit_length(), 1)
    pw = xt.width + 2 + size.bit_length() + max(-k, 0)  # exact product and index, signed
    yt = op.result_type
    rom_vals = yt.requantize(activation_table(op), op.table_type.frac_bits)
    rom = f"{module}_rom"
    extra = [_rom(rom, rom_vals, yt, f"{op.kind} table of '{op.name}' ({size} entries), cast to the result type", hdr)]
    decls, assigns, regs, insts = [], [], [], []
    for j in range(n):
        xe = _sext(f"x_{j}", xt.width, pw, xt.signed)
        assigns.append(f"assign x_{j} = {_slice('x', j, xt.width)};")
        decls += [f"wire [{xt.width - 1}:0] x_{j};", f"wire signed [{pw - 1}:0] pr_{j}, q_{j}, i_{j};", f"reg [{aw - 1}:0] a_{j};",
                  f"wire [{yt.width - 1}:0] t_{j};", f"reg [{yt.width - 1}:0] y_{j};"]
        assigns.append(f"assign pr_{j} = $signed({xe}) * $signed({vlog_literal(size, pw)});")
        if k > 0:  # divide by 2^k rounding toward zero, as the golden model (and hls4ml's integer index) does
            assigns.append(f"assign q_{j} = $signed(pr_{j} + (pr_{j}[{pw - 1}] ? {vlog_literal((1 << k) - 1, pw)} : {pw}'d0)) >>> {k};")
        else:
            assigns.append(f"assign q_{j} = pr_{j} <<< {-k};")
        assigns.append(f"assign i_{j} = q_{j} + $signed({vlog_literal(size // 2, pw)});")
        regs.append(f"a_{j} <= i_{j}[{pw - 1}] ? {aw}'d0 : (i_{j} > $signed({vlog_literal(size - 1, pw)})) ? "
                    f"{vlog_literal(size - 1, aw)} : i_{j}[{aw - 1}:0];")
        insts.append(f"{rom} u_rom_{j} (.a(a_{j}), .d(t_{j}));")
        regs.append(f"y_{j} <= t_{j};")
        assigns.append(f"assign {_slice('y', j, yt.width)} = y_{j};")
    decls = [_LINT_OFF] + decls + [_LINT_ON]  # the index keeps only its low bits once clipped
    text = render("dataflow/table_layer.v.j2", header=hdr, module=module, n=n, x_w=xt.width, y_w=yt.width, latency=2,
                  x_type=str(xt), y_type=str(yt), description=f"hls4ml's table {op.kind} ({size} entries)",
                  decls=decls, assigns=assigns, regs=regs, insts=insts)
    return LayerRTL(module, text, 2, n, xt.width, n, yt.width, 0, tuple(extra))


def _sum_tree(names: list[str], acc: FixedType, decls: list[str], assigns: list[str], insts: list[str],
              prefix: str) -> str:
    """nnet::reduce with Op_add<accum_t>: left part the largest power of two below n; a saturating cast per add."""
    if len(names) == 1:
        return names[0]
    left = 1 << ((len(names) - 1).bit_length() - 1)
    a = _sum_tree(names[:left], acc, decls, assigns, insts, prefix + "l")
    b = _sum_tree(names[left:], acc, decls, assigns, insts, prefix + "r")
    w = acc.width
    wide = FixedType(w + 1, acc.int_bits + 1, signed=acc.signed)
    decls += [f"wire [{w}:0] {prefix}_x;", f"wire [{w - 1}:0] {prefix};"]
    assigns.append(f"assign {prefix}_x = {_sext(a, w, w + 1, acc.signed)} + {_sext(b, w, w + 1, acc.signed)};")
    insts.append(f"bondflow_requant {requant_params(wide, acc, False)} u_{prefix} (.x({prefix}_x), .y({prefix}));")
    return prefix


def softmax_layer(module: str, op: Softmax, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """Stage 1: (x_max - x, stable) top bits -> exp-table index; 2: exp ROM, saturating tree sum, inverse ROM;
    3: e_i * 1/sum cast to the result type."""
    exp_size, inv_size, addr_t = softmax_sizes(op, xt)
    exp_raw, inv_raw = softmax_tables(op, xt)
    acc, it, yt = SOFTMAX_ACCUM_TYPE, op.inv_table_type, op.result_type
    exp_vals = acc.requantize(exp_raw, op.exp_table_type.frac_bits)  # exp_res[i] = exp_table[x]: accum_t
    ne, ni = (exp_size - 1).bit_length(), (inv_size - 1).bit_length()
    erom, irom = f"{module}_exp_rom", f"{module}_inv_rom"
    extra = [_rom(erom, exp_vals, acc, f"exp table of '{op.name}' ({op.implementation}), in the softmax accumulator type", hdr),
             _rom(irom, inv_raw, it, f"inverse table of '{op.name}'", hdr)]
    aw, xw = acc.width, xt.width
    decls, assigns, regs, insts = [_LINT_OFF], [], [], []
    for j in range(n):
        decls += [f"wire [{xw - 1}:0] x_{j};", f"reg [{ne - 1}:0] ix_{j};", f"wire [{aw - 1}:0] e_{j};",
                  f"reg [{aw - 1}:0] er_{j};"]
        assigns.append(f"assign x_{j} = {_slice('x', j, xw)};")
    if op.implementation == "stable":
        cmp = (lambda a, b: f"($signed({a}) >= $signed({b}))") if xt.signed else (lambda a, b: f"({a} >= {b})")
        level, lvl = [f"x_{j}" for j in range(n)], 0
        while len(level) > 1:  # the maximum is the same whatever the tree shape
            nxt = []
            for k in range(0, len(level) - 1, 2):
                name = f"mx_{lvl}_{k // 2}"
                decls.append(f"wire [{xw - 1}:0] {name};")
                assigns.append(f"assign {name} = {cmp(level[k], level[k + 1])} ? {level[k]} : {level[k + 1]};")
                nxt.append(name)
            if len(level) % 2:
                nxt.append(level[-1])
            level, lvl = nxt, lvl + 1
        nw = addr_t.width  # d = x_max - x_i, cast to inp_norm_t (same fraction bits: keep the low nw bits)
        for j in range(n):
            decls.append(f"wire [{xw}:0] d_{j};")
            assigns.append(f"assign d_{j} = {_sext(level[0], xw, xw + 1, xt.signed)} - {_sext(f'x_{j}', xw, xw + 1, xt.signed)};")
            regs.append(f"ix_{j} <= d_{j}[{nw - 1}:{nw - ne}];")
    else:
        for j in range(n):
            regs.append(f"ix_{j} <= x_{j}[{xw - 1}:{xw - ne}];")
    for j in range(n):
        insts.append(f"{erom} u_exp_{j} (.a(ix_{j}), .d(e_{j}));")
        regs.append(f"er_{j} <= e_{j};")
    total = _sum_tree([f"e_{j}" for j in range(n)], acc, decls, assigns, insts, "s")
    decls += [f"wire [{ni - 1}:0] ii;", f"wire [{it.width - 1}:0] inv;", f"reg [{it.width - 1}:0] invr;"]
    assigns.append(f"assign ii = {total}[{aw - 1}:{aw - ni}];")
    insts.append(f"{irom} u_inv (.a(ii), .d(inv));")
    regs.append("invr <= inv;")
    pw = aw + it.width
    pt = FixedType(pw, pw - acc.frac_bits - it.frac_bits, signed=True)
    for j in range(n):
        decls += [f"wire [{pw - 1}:0] p_{j};", f"wire [{yt.width - 1}:0] r_{j};", f"reg [{yt.width - 1}:0] y_{j};"]
        assigns.append(f"assign p_{j} = {_sext(f'er_{j}', aw, pw, True)} * {_sext('invr', it.width, pw, True)};")
        insts.append(f"bondflow_requant {requant_params(pt, yt, False)} u_rq_{j} (.x(p_{j}), .y(r_{j}));")
        regs.append(f"y_{j} <= r_{j};")
        assigns.append(f"assign {_slice('y', j, yt.width)} = y_{j};")
    decls.append(_LINT_ON)
    text = render("dataflow/table_layer.v.j2", header=hdr, module=module, n=n, x_w=xw, y_w=yt.width, latency=3,
                  x_type=str(xt), y_type=str(yt), decls=decls, assigns=assigns, regs=regs, insts=insts,
                  description=f"hls4ml's softmax_{op.implementation} ({exp_size}-entry exp and {inv_size}-entry inverse tables)")
    return LayerRTL(module, text, 3, n, xw, n, yt.width, n, tuple(extra))


def table_layer(module: str, op: Op, xt: FixedType, n: int, hdr: str) -> LayerRTL:
    """The RTL of a Sigmoid, Tanh or Softmax op."""
    if isinstance(op, TableActivation):
        return sigmoid_layer(module, op, xt, n, hdr)
    if isinstance(op, Softmax):
        return softmax_layer(module, op, xt, n, hdr)
    raise UnsupportedOpError(op.kind, op.name, ["sigmoid", "tanh", "softmax"], "the dataflow table layers")

"""Verilog of a moldable conv or pool core: a program ROM, a pixel-loop address generator and one datapath."""
from __future__ import annotations

from ...codegen.layers import _term, product_shape, requant_params
from ...codegen.render import clog2, render, vlog_literal
from ...ir.types import FixedType
from .conv_program import ShapedLayer
from .program import Core

__all__ = ["shaped_core_text"]


def _signed_bits(lo: int, hi: int) -> int:
    """Bits of a two's-complement number holding every value in lo..hi."""
    n = 2
    while not -(1 << (n - 1)) <= lo <= hi < (1 << (n - 1)):
        n += 1
    return n


def _zext(sig: str, w: int, to: int) -> str:
    return sig if w == to else f"{{{to - w}'d0, {sig}}}"


def shaped_core_text(layer: ShapedLayer, core: Core, module: str, hdr: str) -> str:
    """The core running ``core.program`` at every output position of ``layer`` (see shaped_core.v.j2)."""
    g, x_t, mode = layer.geom, layer.x_type, layer.mode
    ops = core.opcodes
    opw = clog2(len(ops))
    code = {o: i for i, o in enumerate(ops)}
    lanes, slots, positions = len(core.program[0].a), len(core.neurons), g.positions
    plen = len(core.program)
    pcw, posw, oxw, nw = clog2(plen + 1), clog2(positions), clog2(g.out_hw[1]), clog2(slots)
    iw = clog2(positions * slots)
    xw = x_t.width
    ybw = clog2(positions * slots * layer.result_type.width)  # bit index into the core's output word
    mac = mode == "mac"
    # Address arithmetic widths, from the extreme window origins and patch offsets the program reaches.
    bases = [g.base(p) for p in range(positions)]
    offs = [g.offset(a) for i in core.program for a in i.a]
    ow = clog2(max(offs) + 1)
    abw = max(_signed_bits(min(bases + [0]), max(bases) + max(offs) + 1), ow + 1)
    origins = [c for p in range(positions) for c in g.origin(p)]
    cw = _signed_bits(min(origins + [0]), max(origins + list(g.in_hw)) + max(g.window))
    padded = g.padded
    fill = vlog_literal(x_t.min_raw, xw) if mode == "max" else f"{xw}'d0"
    # Bit index of lane l's input word: the product is computed wide (a negative address, in the padding, is
    # never used), and x is indexed with the bits its width needs.
    pw_sel, sw = abw + clog2(xw + 1), clog2(layer.n_in * xw)
    xsel = [f"{_zext(f'addr{l}', abw, pw_sel)} * {pw_sel}'d{xw}" for l in range(lanes)]
    params: dict = {}
    if mac:
        d = layer.dense
        acc = d.accum_type
        shape = product_shape(d, x_t, "the moldable generator")
        wv = shape.w_view
        bias = acc.requantize(d.bias, d.bias_type.frac_bits)
        params = dict(pw=shape.width, shift=shape.shift, w_w=wv, terms=[_term(f"p{l}", shape.width, acc.width, shape.shift)
                                                                        for l in range(lanes)],
                      biasrom=[f"{nw}'d{s}: bias = {vlog_literal(int(bias[j]), acc.width)};" for s, j in enumerate(core.neurons)],
                      rq_op=requant_params(acc, d.result_type, False))
    else:
        acc = layer.acc_type
        src = x_t if mode in ("max", "copy") else FixedType(acc.width, acc.width - layer.acc_frac, signed=x_t.signed)
        params = dict(rq_op=requant_params(src, layer.op.result_type, False), w_w=1)

    def any_of(names: list[str]) -> str:
        hits = [f"op_b == {opw}'d{code[o]}" for o in names if o in code]
        return " || ".join(hits) if hits else "1'b0"

    def row(k: int, i) -> str:
        f = [f"op = {opw}'d{code[i.op]};"]
        for l in range(lanes):
            f.append(f"off{l} = {ow}'d{g.offset(i.a[l])};")
            if padded:
                ky, kx, _ = g.split(i.a[l])
                f.append(f"ky{l} = {cw}'sd{ky}; kx{l} = {cw}'sd{kx};")
            if mac:
                f.append(f"w{l} = $signed({vlog_literal(i.w[l], params['w_w'])});")
        return f"{pcw}'d{k}: begin {' '.join(f)} n = {nw}'d{i.n}; end  // {i.op}"

    act = layer.act
    op_t = layer.op.result_type
    what = {"mac": f"{'x'.join(map(str, g.window))} convolution", "max": "max pooling", "sum": "average pooling",
            "copy": f"{'x'.join(map(str, g.repeat))} nearest upsampling"}[mode]
    return render("moldable/shaped_core.v.j2", header=hdr, module=module, layer=layer.name, what=what, neurons=core.neurons,
                  opcodes=ops, plen=plen, positions=positions, lanes=lanes, slots=slots, mac=mac, mode=mode,
                  acc_type=str(acc), n_in=layer.n_in, x_w=xw, y_w=layer.result_type.width, pcw=pcw, posw=posw, oxw=oxw,
                  abw=abw, cw=cw, ow=ow, nw=nw, iw=iw, opw=opw, padded=padded, fill=fill, vlog=vlog_literal,
                  base0=g.base(0), row_step=g.strides[0] * g.in_hw[1] * g.channels - (g.out_hw[1] - 1) * g.strides[1] * g.channels,
                  col_step=g.strides[1] * g.channels, out_w=g.out_hw[1], pad_top=g.pads[0], pad_left=g.pads[1],
                  stride_y=g.strides[0], stride_x=g.strides[1], in_h=g.in_hw[0], in_w=g.in_hw[1],
                  rep_y=g.repeat[0], rep_x=g.repeat[1], ryw=clog2(g.repeat[0]), rxw=clog2(g.repeat[1]), channels=g.channels,
                  rom=[row(k, i) for k, i in enumerate(core.program)], xsel=xsel, pw_sel=pw_sel, sw=sw,
                  off_ext=[_zext(f"off_a{l}", ow, abw) for l in range(lanes)],
                  idx_expr=(f"{_zext('p', posw, iw)} * {iw}'d{slots} + " if positions > 1 else "") + _zext("n_a", nw, iw),
                  idx_bits=f"{_zext('idx_b', iw, ybw)} * {ybw}'d{layer.result_type.width}",
                  acc_w=acc.width, x_signed=x_t.signed, r_w=op_t.width,
                  uses_bias=any_of(["MACB", "MACBO", "BIASO"]), no_product=any_of(["BIASO"]),
                  first=any_of(["LD", "LDO"]), writes_out=any_of(["MACO", "MACBO", "BIASO", "LDO", "MAXO", "ADDO"]),
                  rq_act=requant_params(op_t, act.result_type, act.function == "relu") if act else None, **params)

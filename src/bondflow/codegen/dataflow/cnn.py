"""Streaming dataflow RTL for CNNs: pixels flow through sliding-window stages (convolution, pooling, activation), merges and upsamplers into the dense tail."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ... import __version__
from ...design import Design, Interface
from ...errors import ConfigError, UnsupportedOpError
from ...ir.element_quant import ElementQuant
from ...ir.graph import Graph
from ...ir.merge import Merge
from ...ir.ops import ParamRelu, PRelu, Activation, Dense, Elu, Flatten, Op, Selu, Sigmoid, Softmax, Tanh, Threshold
from ...ir.tensor_ops import Conv, Pool, Upsample
from ...ir.types import FixedType
from ...stream import StreamFormat, lane_bits_for
from ..layers import LayerRTL, activation_layer, dense_layer, requant_params
from ..dag import consumers
from ..merge_layer import merge_layer
from ..pipeline import fused_activation, layers_for
from ..render import clog2, header, render, sanitize, static_rtl, vlog_literal
from ..shell import render_shell
from .reuse import chain_text, handshake_layer, reuse_layer
from .tables import table_layer
from .threshold import threshold_layer
from .cnn_timing import PartSpec, measure_net
from .elementwise_quant import elementwise_quant_layer, positional_quant_layer
from .param_relu import param_relu_layer, prelu_layer
from .exp_linear import exp_linear_layer

__all__ = ["WindowGeom", "cnn_design"]

TAIL_EXTRA = {Sigmoid: table_layer, Tanh: table_layer, Softmax: table_layer, Threshold: threshold_layer, ElementQuant: elementwise_quant_layer,
              ParamRelu: param_relu_layer, PRelu: prelu_layer, Elu: exp_linear_layer, Selu: exp_linear_layer}


@dataclass(frozen=True)
class WindowGeom:
    """Where a sliding window sits on a row-major pixel stream: image, kernel, stride, leading pads, output size."""

    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    ho: int
    wo: int

    @property
    def d0(self) -> int:
        """Shift index (within an image) that completes the first window."""
        return (self.kh - 1 - self.pt) * self.w + (self.kw - 1 - self.pl)

    @property
    def d_last(self) -> int:
        return ((self.ho - 1) * self.sh - self.pt + self.kh - 1) * self.w + (self.wo - 1) * self.sw - self.pl + self.kw - 1

    @property
    def last(self) -> int:
        """Index of an image's last shift: its last pixel, or later when bottom/right padding needs more."""
        return max(self.d_last, self.h * self.w - 1)

    @property
    def tail(self) -> int:
        return self.last - (self.h * self.w - 1)

    @property
    def overlap(self) -> bool:
        """The next image's first pixels can finish this image's windows (they come before its own first window)."""
        return self.tail <= self.d0

    @property
    def row_step(self) -> int:
        return self.sh * self.w - (self.wo - 1) * self.sw

    @property
    def hist(self) -> int:
        return (self.kh - 1) * self.w + self.kw - 1


def geom_for(op: Op, in_shape: tuple[int, ...], out_shape: tuple[int, ...], kernel: tuple[int, ...],
             strides: tuple[int, ...], pads: tuple[tuple[int, int], ...]) -> WindowGeom:
    """1-D streams are images of one row."""
    sp, osp = in_shape[:-1], out_shape[:-1] if len(out_shape) > 1 else (1,) * (len(in_shape) - 1)
    if len(sp) == 1:
        sp, osp, kernel, strides, pads = (1,) + sp, (1,) + osp, (1,) + kernel, (1,) + strides, ((0, 0),) + pads
    g = WindowGeom(sp[0], sp[1], kernel[0], kernel[1], strides[0], strides[1], pads[0][0], pads[1][0], osp[0], osp[1])
    if g.pt >= g.kh or g.pl >= g.kw or g.d0 < 0:
        raise UnsupportedOpError(f"{op.kind} padding {pads}", op.name, ["padding smaller than the kernel"],
                                 "the dataflow streaming generator")
    if g.row_step <= 0:  # more output columns than input pixels per row: two windows would complete on one shift
        raise UnsupportedOpError(f"{op.kind} padding {pads}", op.name, ["left + right padding below the kernel width"],
                                 "the dataflow streaming generator")
    return g


def window_rtl(module: str, layer: str, g: WindowGeom, c: int, xt: FixedType, fill_raw: int, hdr: str) -> str:
    """The window generator of one stage, constants folded in (masks only where a tap can fall outside the image)."""
    cw = clog2(g.last + 2)
    # wide enough for the stride too: with one output row (a global pooling) the step is dead code, yet lint-checked
    rw = max(clog2((g.ho - 1) * g.sh + 2), g.sh.bit_length())
    colw = max(clog2((g.wo - 1) * g.sw + 2), g.sw.bit_length())
    taps = []
    orow_vals = [r * g.sh for r in range(g.ho)]
    ocol_vals = [q * g.sw for q in range(g.wo)]
    for i in range(g.kh):
        row_bad = [v for v in orow_vals if not (0 <= v + i - g.pt < g.h)]
        for j in range(g.kw):
            col_bad = [v for v in ocol_vals if not (0 <= v + j - g.pl < g.w)]
            conds = []
            if row_bad:
                conds.append(_range_cond("orow", rw, g.pt - i, g.h + g.pt - i - 1))
            if col_bad:
                conds.append(_range_cond("ocol", colw, g.pl - j, g.w + g.pl - j - 1))
            offset = (g.kh - 1 - i) * g.w + (g.kw - 1 - j)
            taps.append({"index": i * g.kw + j, "offset": offset, "mask": " && ".join(c_ for c_ in conds if c_)})
    pix_w = c * xt.width
    fill = "{" + ", ".join([vlog_literal(fill_raw, xt.width)] * c) + "}" if c > 1 else vlog_literal(fill_raw, xt.width)
    return render("dataflow/window.v.j2", header=hdr, module=module, layer=layer, kh=g.kh, kw=g.kw, sh=g.sh, sw=g.sw,
                  pt=g.pt, pl=g.pl, h=g.h, w=g.w, c=c, pix_w=pix_w, hist=g.hist, taps=g.kh * g.kw, tail=g.tail,
                  overlap=g.overlap, hw=g.h * g.w, cw=cw, rw=rw, colw=colw, d0=g.d0, last=g.last,
                  ocol_last=(g.wo - 1) * g.sw, orow_last=(g.ho - 1) * g.sh, row_step=g.row_step, tap_list=taps,
                  fill=fill, fill_text=f"{fill_raw} (raw)")


def _range_cond(var: str, width: int, lo: int, hi: int) -> str:
    conds = []
    if lo > 0:
        conds.append(f"{var} >= {width}'d{lo}")
    if hi < (1 << width) - 1:
        conds.append(f"{var} <= {width}'d{hi}" if hi >= 0 else "1'b0")
    return " && ".join(conds)


def pool_layer(module: str, op: Pool, xt: FixedType, taps: int, c: int, hdr: str) -> LayerRTL:
    """Max (compare tree) or power-of-two mean (exact sum) per channel over the window's taps, cast, registered."""
    xw, yt = xt.width, op.result_type
    yw = yt.width
    lines: list[str] = []
    insts: list[str] = []
    regs: list[str] = []
    cmp = "$signed({a}) > $signed({b})" if xt.signed else "{a} > {b}"
    extra_bits = max(taps - 1, 0).bit_length()
    sw_ = xw + extra_bits
    for ch in range(c):
        vals = [f"x[{(t * c + ch) * xw} +: {xw}]" for t in range(taps)]
        if op.function == "max":
            lvl = 0
            while len(vals) > 1:
                nxt = []
                for k in range(0, len(vals) - 1, 2):
                    name = f"m{ch}_{lvl}_{k // 2}"
                    lines.append(f"wire [{xw - 1}:0] {name} = ({cmp.format(a=vals[k], b=vals[k + 1])}) ? {vals[k]} : {vals[k + 1]};")
                    nxt.append(name)
                if len(vals) % 2:
                    nxt.append(vals[-1])
                vals, lvl = nxt, lvl + 1
            src, src_t = vals[0], xt
            lines.append(f"wire [{xw - 1}:0] r_{ch} = {src};")
        else:
            signs = [f"x[{(t * c + ch) * xw + xw - 1}]" for t in range(taps)]
            ext = [f"{{{{{extra_bits}{{{sb}}}}}, {v}}}" if xt.signed else f"{{{extra_bits}'d0, {v}}}" for v, sb in zip(vals, signs)] \
                if extra_bits else vals
            lines.append(f"wire [{sw_ - 1}:0] r_{ch} = {' + '.join(ext)};")
            src_t = FixedType(sw_, sw_ - (xt.frac_bits + extra_bits), signed=xt.signed)
        lines.append(f"wire [{yw - 1}:0] q_{ch};")
        insts.append(f"bondflow_requant {requant_params(src_t, yt, False)} u_rq_{ch} (.x(r_{ch}), .y(q_{ch}));")
        lines.append(f"reg [{yw - 1}:0] y_{ch};")
        regs.append(f"y_{ch} <= q_{ch};")
        lines.append(f"assign y[{ch * yw} +: {yw}] = y_{ch};")
    what = f"{op.function} over {taps} taps"
    text = "\n".join([hdr.rstrip("\n"), f"// {module}: {what} per channel ({c} channels of {xt}), cast to {yt}; latency 1.",
                      "`timescale 1ns/1ps", "`default_nettype none", f"module {module} (", "    input  wire clk,",
                      f"    input  wire [{taps * c * xw - 1}:0] x,", f"    output wire [{c * yw - 1}:0] y", ");"]
                     + [f"    {s}" for s in lines + insts] + ["    always @(posedge clk) begin"]
                     + [f"        {r}" for r in regs] + ["    end", "endmodule", "`default_nettype wire", ""])
    return LayerRTL(module, text, 1, taps * c, xw, c, yw, 0)


@dataclass(frozen=True)
class Stage:
    """One streaming stage: a window generator feeding a valid/ready compute layer."""

    name: str  # the tensor it produces (a fused activation's name)
    window_module: str
    window_text: str
    compute: LayerRTL  # handshake ports (in_data/in_valid/in_ready, out_*)
    geom: WindowGeom
    in_bits: int  # bits per input pixel
    out_bits: int  # bits per output pixel
    reuse: int  # cycles per window (1: a new window every cycle)
    src: str = ""  # the tensor it reads


@dataclass(frozen=True)
class MergeStage:
    """A pixel-wise merge (add, or concatenate along channels): a fifo per input, a join, a valid/ready compute layer."""

    name: str
    compute: LayerRTL
    srcs: tuple[str, ...]
    in_bits: tuple[int, ...]  # bits per input pixel, per input
    out_bits: int


@dataclass(frozen=True)
class UpsampleStage:
    """Nearest-neighbour upsampling (bondflow_upsample): each pixel ``fw`` times, each row of ``w`` pixels ``fh`` times."""

    name: str
    src: str
    out_bits: int  # bits per pixel, in and out
    w: int
    fw: int
    fh: int


def choose_parallelism(graph: Graph, tlast_mode: int, stream_width: int | None) -> tuple[dict[str, int], float]:
    """``parallelism="auto"``: per convolution the fewest output channels per cycle that keep the II of full
    parallelism, so multipliers idle no more than the stream makes them (a conv after a pool sees fewer pixels).

    Each conv first gets the cycles per window its output pixels allow in the full design's II; the cycle model
    then times the whole design, and while it is slower the conv busiest per image gets the next divisor up.
    Returns the choice and the II it times to.
    """
    target = cnn_design(graph, None, {}, tlast_mode, stream_width).info["ii_model"]
    shapes = graph.shapes()
    convs = [op for op in graph.ops if isinstance(op, Conv) and len(shapes[op.name]) > 1]
    pixels = {op.name: int(math.prod(shapes[op.name][:-1])) for op in convs}
    divisors = {op.name: _divisors(op.c_out) for op in convs}
    choice = {op.name: next(d for d in divisors[op.name] if (op.c_out // d) * pixels[op.name] <= max(target, pixels[op.name]))
              for op in convs}
    while True:
        ii = cnn_design(graph, choice, {}, tlast_mode, stream_width).info["ii_model"]
        if ii <= target + 1e-6:
            return choice, ii
        busy = [op for op in convs if choice[op.name] < op.c_out]
        if not busy:
            return choice, ii
        worst = max(busy, key=lambda op: (op.c_out // choice[op.name]) * pixels[op.name])
        choice[worst.name] = next(d for d in divisors[worst.name] if d > choice[worst.name])


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _parallelism_for(op: Conv, parallelism: "int | dict[str, int] | None") -> int:
    p = parallelism.get(op.name, op.c_out) if isinstance(parallelism, dict) else (parallelism or op.c_out)
    p = min(int(p), op.c_out)
    if p < 1 or op.c_out % p:
        raise ConfigError(f"parallelism of conv '{op.name}' must divide its {op.c_out} output channels "
                          f"({_divisors(op.c_out)}), not {p}")
    return p


def arith_options(graph: Graph, arith: dict[str, Any], parallelism: "int | dict[str, int] | None",
                  tail_reuse: dict[str, int] | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per conv/dense options for the multiplier mode: constant layers as ``dense_layer`` takes them, convolutions
    and tail denses that share multipliers how many of theirs are DSP products (arith.shared_options)."""
    from .arith import shared_options
    from .reuse import live_multipliers
    layers: list[tuple[Dense, FixedType]] = []
    shared: list[tuple[str, int]] = []
    cur = graph.input.type
    for op in graph.ops:
        p = _parallelism_for(op, parallelism) if isinstance(op, Conv) else 0
        if isinstance(op, Conv) and p < op.c_out:
            shared.append((op.name, len(live_multipliers(op.as_dense(), op.c_out // p))))
        elif isinstance(op, Dense) and (tail_reuse or {}).get(op.name, 1) > 1:
            shared.append((op.name, len(live_multipliers(op, (tail_reuse or {})[op.name]))))
        elif isinstance(op, (Conv, Dense)):
            layers.append((op.as_dense() if isinstance(op, Conv) else op, cur))
        cur = op.result_type
    return shared_options(layers, shared, arith.get("multipliers", "dsp"), arith.get("stage_adders"), arith.get("target"),
                          arith.get("dsp_budget"))


def choose_tail_reuse(graph: Graph, ii: float) -> dict[str, int]:
    """Per Dense after the image stages the largest reuse factor (of hls4ml's valid set) within the image II: the
    tail gets one vector per image, so its multipliers can serve that many cycles each without slowing the stream."""
    from ..hls4ml.generator import valid_reuse_factors
    # in a CNN every Dense is in the tail: images reach denses only through a Flatten or a global pooling
    return {op.name: max(r for r in valid_reuse_factors(op.n_in, op.n_out) if r <= max(int(ii), 1))
            for op in graph.ops if isinstance(op, Dense)}


def tail_chain(rest: list[Op], cur: FixedType, n: int, hdr: str, rfs: dict[str, int],
               dense_opts: dict[str, dict[str, Any]] | None) -> list[tuple[LayerRTL, int]]:
    """The dense tail as (layer, reuse factor) in order: handshake layers (reuse factor > 1: reuse_layer sharing its
    multipliers, else a constant layer behind valid/ready; reuse factor 0: a combinational layer, e.g. per-element
    casts, wired between two handshake layers)."""
    out: list[tuple[LayerRTL, int]] = []
    i = 0
    while i < len(rest):
        op = rest[i]
        name = f"bondflow_dataflow_{sanitize(op.name)}"
        if isinstance(op, Dense):
            act = fused_activation(rest, i)
            rf, opts = rfs.get(op.name, 1), (dense_opts or {}).get(op.name, {})
            out.append((reuse_layer(f"{name}_rf{rf}", op, cur, act, rf, hdr, dsp=opts.get("dsp")), rf) if rf > 1
                       else (handshake_layer(dense_layer(name, op, cur, act, hdr, **opts), hdr), 1))
            cur, n = (act or op).result_type, op.n_out
            i += 2 if act else 1
            continue
        for layer in layers_for([op], cur, n, "dataflow", hdr, TAIL_EXTRA, dense_opts):
            out.append((layer, 0) if layer.latency == 0 else (handshake_layer(layer, hdr), 1))
        cur = op.result_type
        i += 1
    return out


@dataclass(frozen=True)
class StreamPlan:
    """The streaming stages in graph order, then the tensor that leaves them for the dense tail, and that tail."""

    stages: list["Stage | MergeStage | UpsampleStage"]
    exit: str
    rest: list[Op]
    tail_type: FixedType
    tail_n: int


def _only_reader(readers: dict[str, list[Op]], name: str, cls: type) -> Op | None:
    rd = readers[name]
    return rd[0] if len(rd) == 1 and isinstance(rd[0], cls) else None


def plan_stages(graph: Graph, hdr: str, parallelism: "int | dict[str, int] | None",
                dense_opts: dict[str, dict[str, Any]] | None = None) -> StreamPlan:
    """A stage per op while tensors are images (conv and merge fuse an activation that is their only reader); the
    first Flatten, or a stage whose result is flat, ends them. Branches fork and join between stages."""
    shapes = graph.shapes()
    readers = consumers(graph)
    types: dict[str, FixedType] = {graph.input.name: graph.input.type}
    stages: list[Stage | MergeStage | UpsampleStage] = []
    fused: dict[str, str] = {}  # activation -> the op whose stage computes it
    exit_: str | None = None
    rest: list[Op] = []
    for op in graph.ops:
        if op.name in fused:
            continue
        if exit_ is not None:
            rest.append(op)
            continue
        if isinstance(op, Flatten):
            exit_ = op.input
            if op.result_type != types[op.input]:
                rest.append(op)
            continue
        shape = shapes[op.input]
        xt = types[op.input]
        c_in = shape[-1]
        base = f"bondflow_dataflow_{sanitize(op.name)}"
        out_name = op.name
        if isinstance(op, Merge):
            if op.function == "concatenate" and op.axis != len(shape) - 1:
                dim = (["rows", "columns"] if len(shape) == 3 else ["positions"])[op.axis]
                raise UnsupportedOpError(f"concatenate of images along {dim}", op.name,
                                         [f"concatenate along channels (axis {len(shape) - 1})", "add"],
                                         "the dataflow streaming generator (--arch moldable builds it)")
            act = _only_reader(readers, op.name, Activation)
            in_types = [types[i] for i in op.inputs]
            sizes = [shapes[i][-1] for i in op.inputs]
            comp = handshake_layer(merge_layer(f"{base}_merge", op, in_types, sizes, hdr, act, registered=True), hdr,
                                   in_bits=sum(n * t.width for n, t in zip(sizes, in_types)))
            if act is not None:
                fused[act.name], out_name = op.name, act.name
            out_t = (act or op).result_type
            stages.append(MergeStage(out_name, comp, tuple(op.inputs), tuple(n * t.width for n, t in zip(sizes, in_types)),
                                     shapes[op.name][-1] * out_t.width))
            types[out_name] = out_t
            continue
        if isinstance(op, Upsample):
            if op.result_type != xt:
                raise UnsupportedOpError(f"upsample casting {xt} to {op.result_type}", op.name, ["upsample keeping its type"],
                                         "the dataflow streaming generator")
            (fh, fw), w = ((1,) + op.size if len(op.size) == 1 else op.size), shape[-2]
            stages.append(UpsampleStage(op.name, op.input, c_in * xt.width, w, fw, fh))
            types[op.name] = xt
            continue
        if isinstance(op, Conv):
            act = _only_reader(readers, op.name, Activation)
            out_shape, out_t = shapes[op.name], (act or op).result_type
            g = geom_for(op, shape, out_shape, op.kernel, op.strides, op.pads)
            p = _parallelism_for(op, parallelism)
            dense = op.as_dense()
            if p == op.c_out:
                comp = handshake_layer(dense_layer(base, dense, xt, act, hdr, **(dense_opts or {}).get(op.name, {})), hdr)
                reuse = 1
            else:
                reuse = op.c_out // p
                comp = reuse_layer(f"{base}_rf{reuse}", dense, xt, act, reuse, hdr,
                                   dsp=(dense_opts or {}).get(op.name, {}).get("dsp"))
            fill = 0
            if act is not None:
                fused[act.name], out_name = op.name, act.name
        elif isinstance(op, Pool):
            out_shape, out_t = shapes[op.name], op.result_type
            win = op.window(shape)
            strides = tuple(s if pp else n for s, pp, n in zip(op.strides, op.pool, shape[:-1]))
            g = geom_for(op, shape, out_shape, win, strides, op.pads)
            comp = handshake_layer(pool_layer(f"{base}_pool", op, xt, g.kh * g.kw, c_in, hdr), hdr)
            fill, reuse = (xt.min_raw if op.function == "max" else 0), 1
        elif isinstance(op, (Activation, ElementQuant, ParamRelu, PRelu, Sigmoid, Tanh, Elu, Selu)):
            out_shape, out_t = shape, op.result_type
            pixels = int(math.prod(shape[:-1]))
            g = WindowGeom(1, pixels, 1, 1, 1, 1, 0, 0, 1, pixels)
            if isinstance(op, PRelu) and op.alpha.size not in (1, c_in):
                raise UnsupportedOpError(f"prelu with a slope per pixel ({op.alpha.size} slopes)", op.name,
                                         ["prelu with one slope per channel or one for all"], "the dataflow CNN generator")
            if isinstance(op, Activation):
                comp = handshake_layer(activation_layer(base, op, xt, c_in, hdr), hdr)
            elif not isinstance(op, ElementQuant):  # the same per-channel element-wise layer on every pixel
                comp = handshake_layer(TAIL_EXTRA[type(op)](base, op, xt, c_in, hdr), hdr)
            else:  # HGQ's per-element precision: each pixel position has its own casts
                comp = handshake_layer(positional_quant_layer(f"{base}_quant", op, xt, shape, hdr), hdr, positions=pixels)
            fill, reuse = 0, 1
        else:
            raise UnsupportedOpError(op.kind, op.name, ["conv (+ relu/linear)", "max/average pool", "activation",
                                                        "param_relu", "sigmoid", "tanh", "element_quant", "flatten",
                                                        "add", "concatenate along channels", "upsample"],
                                     "the dataflow streaming generator (on images)")
        wmod = f"{base}_window"
        stages.append(Stage(out_name, wmod, window_rtl(wmod, op.name, g, c_in, xt, fill, hdr), comp, g,
                            c_in * xt.width, out_shape[-1] * out_t.width, reuse, src=op.input))
        types[out_name] = out_t
        if len(out_shape) == 1:  # a global pooling: the vector leaves the image stages
            exit_ = out_name
    if exit_ is None:
        exit_ = stages[-1].name if stages else graph.input.name
    # The tail is a chain read from the exit tensor; images never reach it any other way.
    inside = {graph.input.name} | {s.name for s in stages} | set(fused)
    for o in rest:
        merges_in_tail = len(o.inputs) > 1
        reads_an_image = any(src in inside and src != exit_ for src in o.inputs)
        if merges_in_tail or reads_an_image:
            raise UnsupportedOpError(o.kind, o.name, ["a chain after the one tensor that leaves the image stages"],
                                     "the dataflow streaming generator")
    tail_shape = shapes[exit_] if exit_ in shapes else graph.input.shape
    return StreamPlan(stages, exit_, rest, types[exit_], int(math.prod(tail_shape)))


def cnn_interface(graph: Graph, stream_width: int | None) -> tuple[Interface, int]:
    """Input: whole pixels per beat (default one pixel); output: one beat per result. Returns pixels per beat too."""
    i, o = graph.input, graph.output
    c = i.shape[-1]
    lane = lane_bits_for(i.type.width)
    bits = stream_width if stream_width is not None else c * lane
    if bits % (c * lane) or bits < c * lane:
        raise ConfigError(f"stream width of a CNN must carry whole pixels (a multiple of {c} x {lane} = {c * lane} bits), not {bits}")
    k = min(bits // (c * lane), int(math.prod(i.shape[:-1])))
    fin = StreamFormat.for_tensor(i.size, i.type.width, i.type.signed, k * c * lane)
    fout = StreamFormat.for_tensor(o.size, o.type.width, o.type.signed, None)
    return Interface(fin, fout, str(i.type), str(o.type)), k


def _fifo_log2(peak: int) -> int:
    """A merge fifo's LOG2_DEPTH: room for the peak fill the cycle model saw plus one (the back-pressure margin)."""
    return max(1, peak.bit_length())


class _Net:
    """The cycle model's network (cnn_timing.PartSpec), built beside the RTL: a channel per valid/ready pair."""

    def __init__(self) -> None:
        self.parts: list[PartSpec] = []
        self.n = 1  # channel 0: the input beats
        self.exit = 0  # the channel the exit tensor's collector reads

    def add(self, kind: str, arg: Any, ins: tuple[int, ...], n_out: int = 1) -> tuple[int, ...]:
        outs = tuple(range(self.n, self.n + n_out))
        self.n += n_out
        self.parts.append(PartSpec(kind, arg, ins, outs))
        return outs


def _stream_body(graph: Graph, plan: StreamPlan, k: int, fifo_log2: dict[str, int | None]) -> tuple[list[str], _Net]:
    """The core's streaming part (input to the exit tensor's ``ex_v``/``ex_r`` reader port) and its cycle model.

    Every tensor is a stream (``<w>_d/_v/_r``); a stream with several readers moves when all are ready; each input
    of a merge waits in a fifo (``fifo_log2`` per fifo; None: unbounded in the model, to size it).
    """
    stages = plan.stages
    pix0 = graph.input.shape[-1] * graph.input.type.width
    n_pix = int(math.prod(graph.input.shape[:-1]))
    names = {graph.input.name: "x"} | {s.name: f"s{n}" for n, s in enumerate(stages)}
    readers: dict[str, list[str]] = {t: [] for t in names}
    for n, s in enumerate(stages):
        for j, src in enumerate(s.srcs if isinstance(s, MergeStage) else (s.src,)):
            readers[src].append(f"s{n}_i{j}")
    readers[plan.exit].append("ex")
    net = _Net()
    body: list[str] = []
    chan: dict[str, int] = {}
    if k > 1:
        body += [f"    wire [{pix0 - 1}:0] x_d;", "    wire x_v, x_r;",
                 f"    bondflow_serializer #(.K({k}), .PIX({pix0}), .N({n_pix})) u_ser (.clk(clk), .rst_n(rst_n), "
                 ".in_data(in_data), .in_valid(in_valid), .in_ready(in_ready), .out_data(x_d), .out_valid(x_v), .out_ready(x_r));"]
        chan["x"] = net.add("serializer", (k, n_pix), (0,))[0]
    else:
        body += [f"    wire [{pix0 - 1}:0] x_d;", "    wire x_v, x_r;", "    assign x_d = in_data;", "    assign x_v = in_valid;",
                 "    assign in_ready = x_r;"]
        chan["x"] = 0
    port: dict[str, int] = {}

    def fan_out(t: str) -> None:
        w, ports = names[t], readers[t]
        body.extend(f"    wire {r}_v, {r}_r;" for r in ports)
        if len(ports) == 1:
            body.extend([f"    assign {ports[0]}_v = {w}_v;", f"    assign {w}_r = {ports[0]}_r;"])
            port[ports[0]] = chan[w]
            return
        body.extend([f"    // {t} feeds {len(ports)} readers: a pixel moves when every reader is ready",
                     f"    assign {w}_r = {' && '.join(r + '_r' for r in ports)};"])
        body.extend([f"    assign {r}_v = {w}_v && {w}_r;" for r in ports])
        port.update(zip(ports, net.add("fork", None, (chan[w],), len(ports))))

    fan_out(graph.input.name)
    for n, s in enumerate(stages):
        w = f"s{n}"
        body += [f"    // stage {n}: {s.name}", f"    wire [{s.out_bits - 1}:0] {w}_d;", f"    wire {w}_v, {w}_r;"]
        if isinstance(s, UpsampleStage):
            body += [f"    bondflow_upsample #(.PIX({s.out_bits}), .W({s.w}), .FW({s.fw}), .FH({s.fh})) u_{w} (.clk(clk), "
                     f".rst_n(rst_n), .in_data({names[s.src]}_d), .in_valid({w}_i0_v), .in_ready({w}_i0_r), .out_data({w}_d), "
                     f".out_valid({w}_v), .out_ready({w}_r));"]
            chan[w] = net.add("upsample", (s.w, s.fw, s.fh), (port[f"{w}_i0"],))[0]
        elif isinstance(s, Stage):
            body += [f"    wire [{s.geom.kh * s.geom.kw * s.in_bits - 1}:0] {w}_wd;", f"    wire {w}_wv, {w}_wr;",
                     f"    {s.window_module} u_{w}_win (.clk(clk), .rst_n(rst_n), .in_data({names[s.src]}_d), "
                     f".in_valid({w}_i0_v), .in_ready({w}_i0_r), .win_data({w}_wd), .win_valid({w}_wv), .win_ready({w}_wr));",
                     f"    {s.compute.module} u_{w} (.clk(clk), .rst_n(rst_n), .in_data({w}_wd), .in_valid({w}_wv), "
                     f".in_ready({w}_wr), .out_data({w}_d), .out_valid({w}_v), .out_ready({w}_r));"]
            c = net.add("window", s.geom, (port[f"{w}_i0"],))[0]
            chan[w] = (net.add("reuse", s.reuse, (c,)) if s.reuse > 1 else net.add("adapter", s.compute.latency - 1, (c,)))[0]
        else:
            heads, joins = [], []
            body += [f"    // the inputs of {s.name} meet in fifos (the shorter path waits); it takes a pixel from each at once",
                     f"    wire {w}_mv, {w}_mr, {w}_join;"]
            for j, (src, bits) in enumerate(zip(s.srcs, s.in_bits)):
                f = f"{w}_f{j}"
                lg = fifo_log2.get(f)
                body += [f"    wire [{bits - 1}:0] {f}_q;", f"    wire {f}_empty, {f}_full;", f"    assign {w}_i{j}_r = !{f}_full;",
                         "    /* verilator lint_off PINCONNECTEMPTY */",  # the fill count is not needed
                         f"    bondflow_kfifo #(.WIDTH({bits}), .LOG2_DEPTH({lg or 1})) u_{f} (.clk(clk), .rst_n(rst_n), "
                         f".push({w}_i{j}_v), .din({names[src]}_d), .pop({w}_join), .dout({f}_q), .empty({f}_empty), "
                         f".full({f}_full), .count());", "    /* verilator lint_on PINCONNECTEMPTY */"]
                heads.append(f"{f}_q")
                joins.append(net.add("fifo", None if lg is None else 1 << lg, (port[f"{w}_i{j}"],))[0])
            body += [f"    assign {w}_mv = {' && '.join(f'!{w}_f{j}_empty' for j in range(len(s.srcs)))};",
                     f"    assign {w}_join = {w}_mv && {w}_mr;",
                     f"    {s.compute.module} u_{w} (.clk(clk), .rst_n(rst_n), .in_data({{{', '.join(reversed(heads))}}}), "
                     f".in_valid({w}_mv), .in_ready({w}_mr), .out_data({w}_d), .out_valid({w}_v), .out_ready({w}_r));"]
            c = net.add("join", None, tuple(joins))[0]
            chan[w] = net.add("adapter", s.compute.latency - 1, (c,))[0]
        fan_out(s.name)
    body.insert(0, f"    // exit: {plan.exit}")
    net.exit = port["ex"]
    return body, net


def cnn_design(graph: Graph, parallelism: "int | dict[str, int] | None", options: dict[str, Any], tlast_mode: int,
               stream_width: int | None, arith: dict[str, Any] | None = None,
               tail_reuse: dict[str, int] | None = None) -> Design:
    """``tail_reuse``: reuse factors of the denses after the image stages (choose_tail_reuse); none: constant
    multipliers, the whole tail one fixed-latency pipeline."""
    digest = graph.digest()
    hdr = header("dataflow", digest)
    dense_opts, arith_info = arith_options(graph, arith, parallelism, tail_reuse) if arith else (None, {})
    plan = plan_stages(graph, hdr, parallelism, dense_opts)
    stages, rest, tail_t, tail_n = plan.stages, plan.rest, plan.tail_type, plan.tail_n
    if not stages:
        raise UnsupportedOpError(graph.ops[0].kind, graph.ops[0].name, ["conv", "pool"], "the dataflow streaming generator")
    iface, k = cnn_interface(graph, stream_width)
    shared_tail = bool(rest) and any(v > 1 for v in (tail_reuse or {}).values())
    chain = tail_chain(rest, tail_t, tail_n, hdr, tail_reuse or {}, dense_opts) if shared_tail else []
    tail_layers = [layer for layer, _ in chain] if shared_tail else \
        (layers_for(rest, tail_t, tail_n, "dataflow", hdr, TAIL_EXTRA, dense_opts) if rest else [])
    tail_latency = sum(layer.latency for layer in tail_layers)
    core = "bondflow_dataflow_core"
    pix0 = graph.input.shape[-1] * graph.input.type.width
    out_bits = tail_layers[-1].n_out * tail_layers[-1].out_width if tail_layers else tail_n * tail_t.width
    n_pix = int(math.prod(graph.input.shape[:-1]))
    exit_stage = next(s for s in stages if s.name == plan.exit)
    last_pix = exit_stage.out_bits
    n_out_pix = tail_n * tail_t.width // last_pix

    def timed(fifo_log2: dict[str, int | None]) -> tuple[list[str], Any, list[int]]:
        body, net = _stream_body(graph, plan, k, fifo_log2)
        c = net.add("collect", n_out_pix, (net.exit,))[0]
        if shared_tail:
            for layer, rf in chain:
                if rf:
                    c = (net.add("reuse", rf, (c,)) if rf > 1 else net.add("adapter", layer.latency - 1, (c,)))[0]
        elif tail_layers:
            c = net.add("adapter", tail_latency, (c,))[0]
        net.add("shell", iface.output.beats, (c,))
        t, peaks = measure_net(net.parts, n_pix, iface.input.beats, iface.output.beats)
        return body, t, peaks

    fifo_names = [f"s{n}_f{j}" for n, s in enumerate(stages) if isinstance(s, MergeStage) for j in range(len(s.srcs))]
    sizes: dict[str, int | None] = {}
    if fifo_names:  # size each merge fifo from its peak fill with unbounded fifos, then time the design as built
        _, _, peaks = timed({f: None for f in fifo_names})
        sizes = {f: _fifo_log2(pk) for f, pk in zip(fifo_names, peaks)}
    body, t, _ = timed(sizes)
    lines = [hdr.rstrip("\n"), f"// {core}: {len(stages)} streaming stage(s) ({', '.join(s.name for s in stages)}), one pixel per "
             "transfer, then the vector tail.", "//   Every stage: a window generator (line history, padding masks) and a "
             "compute layer, or a merge behind its input fifos; valid/ready between all.", "`timescale 1ns/1ps",
             "`default_nettype none", f"module {core} (", "    input  wire clk,", "    input  wire rst_n,",
             f"    input  wire [{k * pix0 - 1}:0] in_data,", "    input  wire in_valid,", "    output wire in_ready,",
             f"    output wire [{out_bits - 1}:0] out_data,", "    output wire out_valid,", "    input  wire out_ready", ");"] + body
    files: dict[str, str] = {}
    collect_out = ("vec_d", "vec_v", "vec_r") if tail_layers else ("out_data", "out_valid", "out_ready")
    if tail_layers:
        lines += [f"    wire [{tail_n * tail_t.width - 1}:0] vec_d;", "    wire vec_v, vec_r;"]
    ew = f"s{stages.index(exit_stage)}"
    lines.append(f"    bondflow_collect #(.N({n_out_pix}), .PIX({last_pix})) u_collect (.clk(clk), .rst_n(rst_n), "
                 f".in_data({ew}_d), .in_valid(ex_v), .in_ready(ex_r), .out_data({collect_out[0]}), "
                 f".out_valid({collect_out[1]}), .out_ready({collect_out[2]}));")
    if tail_layers:
        tail = "bondflow_dataflow_tail"
        tstages, p_ = [], "in_data"
        for q, layer in enumerate(tail_layers):
            tstages.append({"module": layer.module, "inp": p_, "out": f"l{q}_y", "out_bits": layer.n_out * layer.out_width})
            p_ = f"l{q}_y"
        files[f"rtl/{tail}.v"] = chain_text(tail, chain, tail_n * tail_t.width, hdr, f"the dense tail after the streaming stages, {len(chain)} layer(s) chained by valid/ready (shared multipliers where the reuse factor is above 1).") if shared_tail else \
            render("layers/core.v.j2", header=hdr, module=tail, description="the dense tail after the streaming stages",
                   in_bits=tail_n * tail_t.width, out_bits=out_bits, stages=tstages, latency=tail_latency)
        lines.append(f"    {tail} u_tail (.clk(clk), .rst_n(rst_n), .in_data(vec_d), .in_valid(vec_v), .in_ready(vec_r), "
                     ".out_data(out_data), .out_valid(out_valid), .out_ready(out_ready));")
    lines += ["endmodule", "`default_nettype wire", ""]
    text = "\n".join(lines)
    computes = [s.compute for s in stages if not isinstance(s, UpsampleStage)]
    for layer in computes + tail_layers:
        files[f"rtl/{layer.module}.v"] = layer.text
        files.update(dict(layer.extra))
    windows = [s for s in stages if isinstance(s, Stage)]
    for s in windows:
        files[f"rtl/{s.window_module}.v"] = s.window_text
    statics = ["bondflow_requant.v", "bondflow_pipe_adapter.v", "bondflow_collect.v"] + (["bondflow_serializer.v"] if k > 1 else []) \
        + (["bondflow_kfifo.v"] if fifo_names else []) \
        + (["bondflow_upsample.v"] if any(isinstance(s, UpsampleStage) for s in stages) else [])
    files.update({f"rtl/{name}": static_rtl(name) for name in statics})
    files[f"rtl/{core}.v"] = text
    files["rtl/bondflow_top.v"] = render_shell(core, iface, digest, "dataflow", tlast_mode, stream_in=True)
    files["graph.json"] = graph.to_json(indent=1)
    rtl = [f"rtl/{name}" for name in statics] + [p for l in computes + tail_layers for p, _ in l.extra] + \
          [f"rtl/{l.module}.v" for l in computes + tail_layers] + [f"rtl/{s.window_module}.v" for s in windows] + \
          ([f"rtl/bondflow_dataflow_tail.v"] if tail_layers else []) + [f"rtl/{core}.v", "rtl/bondflow_top.v"]
    stage_info: list[dict[str, Any]] = []
    for n, s in enumerate(stages):
        if isinstance(s, UpsampleStage):
            stage_info.append({"op": s.name, "module": "bondflow_upsample", "factors": [s.fh, s.fw], "row": s.w, "latency": 0})
        elif isinstance(s, Stage):
            stage_info.append({"op": s.name, "module": s.compute.module, "window": [s.geom.kh, s.geom.kw],
                               "stride": [s.geom.sh, s.geom.sw], "image": [s.geom.h, s.geom.w], "cycles_per_window": s.reuse,
                               "multipliers": s.compute.multipliers, "latency": s.compute.latency})
        else:
            stage_info.append({"op": s.name, "module": s.compute.module, "inputs": list(s.srcs), "latency": s.compute.latency,
                               "fifo_depths": [1 << sizes[f"s{n}_f{j}"] for j in range(len(s.srcs))]})
    info = {"streaming": True, "pixels_per_beat": k, "tlast_mode": tlast_mode, "stages": stage_info,
            "layers": [{"module": l.module, "latency": l.latency, "multipliers": l.multipliers, "n_in": l.n_in, "n_out": l.n_out}
                       for l in computes + tail_layers],
            "multipliers": sum(l.multipliers for l in computes + tail_layers), "ii_model": t.ii, "core_latency": t.latency,
            **({"tail_reuse_factor": dict(tail_reuse or {})} if shared_tail else {}),
            **arith_info}
    return Design(arch="dataflow", top="bondflow_top", language="verilog", files=files, interface=iface, graph_digest=digest,
                  rtl_files=tuple(rtl), latency_cycles=t.latency, ii_cycles=round(t.ii), options=options, info=info,
                  generator_version=__version__)

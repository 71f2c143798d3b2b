"""Streaming dataflow RTL for CNNs: pixels flow through sliding-window stages (convolution, pooling, activation) into the dense tail."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ... import __version__
from ...design import Design, Interface
from ...errors import ConfigError, UnsupportedOpError
from ...ir.graph import Graph
from ...ir.ops import Activation, Dense, Flatten, Op, Sigmoid, Softmax, Threshold
from ...ir.tensor_ops import Conv, Pool
from ...ir.types import FixedType
from ...stream import StreamFormat, lane_bits_for
from ..layers import LayerRTL, activation_layer, dense_layer, requant_params
from ..pipeline import layers_for
from ..render import clog2, header, render, sanitize, static_rtl, vlog_literal
from ..shell import render_shell
from .reuse import handshake_layer, reuse_layer
from .tables import table_layer
from .threshold import threshold_layer
from .cnn_timing import StageTiming, measure

__all__ = ["WindowGeom", "cnn_design"]

TAIL_EXTRA = {Sigmoid: table_layer, Softmax: table_layer, Threshold: threshold_layer}


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
    rw = clog2((g.ho - 1) * g.sh + 2)
    colw = clog2((g.wo - 1) * g.sw + 2)
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

    name: str
    window_module: str
    window_text: str
    compute: LayerRTL  # handshake ports (in_data/in_valid/in_ready, out_*)
    geom: WindowGeom
    in_bits: int  # bits per input pixel
    out_bits: int  # bits per output pixel
    reuse: int  # cycles per window (1: a new window every cycle)


def _parallelism_for(op: Conv, parallelism: "int | dict[str, int] | None") -> int:
    p = parallelism.get(op.name, op.c_out) if isinstance(parallelism, dict) else (parallelism or op.c_out)
    p = min(int(p), op.c_out)
    if p < 1 or op.c_out % p:
        divs = [d for d in range(1, op.c_out + 1) if op.c_out % d == 0]
        raise ConfigError(f"parallelism of conv '{op.name}' must divide its {op.c_out} output channels ({divs}), not {p}")
    return p


def arith_options(graph: Graph, arith: dict[str, Any], parallelism: "int | dict[str, int] | None"
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per conv/dense ``dense_layer`` options for the multiplier mode; convolutions that share multipliers take none."""
    from .arith import layer_options
    mode = arith.get("multipliers", "dsp")
    layers: list[tuple[Dense, FixedType]] = []
    cur = graph.input.type
    for op in graph.ops:
        if isinstance(op, Conv) and _parallelism_for(op, parallelism) < op.c_out:
            if mode == "lut":
                raise ConfigError(f"conv '{op.name}' shares its multipliers (parallelism < {op.c_out}), so multipliers must be "
                                  "dsp or auto, not lut")
        elif isinstance(op, (Conv, Dense)):
            layers.append((op.as_dense() if isinstance(op, Conv) else op, cur))
        cur = op.result_type
    return layer_options(layers, mode, arith.get("stage_adders"), arith.get("target"), arith.get("dsp_budget"))


def plan_stages(graph: Graph, hdr: str, parallelism: "int | dict[str, int] | None",
                dense_opts: dict[str, dict[str, Any]] | None = None) -> tuple[list[Stage], list[Op], FixedType, int]:
    """The streaming stages, then the ops left for the dense tail, the type and size of the vector they receive."""
    shapes = graph.shapes()
    ops = list(graph.ops)
    stages: list[Stage] = []
    shape, xt = graph.input.shape, graph.input.type
    i = 0
    while i < len(ops) and len(shape) > 1:
        op = ops[i]
        c_in = shape[-1]
        base = f"bondflow_dataflow_{sanitize(op.name)}"
        if isinstance(op, Conv):
            nxt = ops[i + 1] if i + 1 < len(ops) else None
            act = nxt if isinstance(nxt, Activation) and nxt.input == op.name else None
            out_shape, out_t = shapes[op.name], (act or op).result_type
            g = geom_for(op, shape, out_shape, op.kernel, op.strides, op.pads)
            p = _parallelism_for(op, parallelism)
            dense = op.as_dense()
            if p == op.c_out:
                comp = handshake_layer(dense_layer(base, dense, xt, act, hdr, **(dense_opts or {}).get(op.name, {})), hdr)
                reuse = 1
            else:
                reuse = op.c_out // p
                comp = reuse_layer(f"{base}_rf{reuse}", dense, xt, act, reuse, hdr)
            fill = 0
            i += 2 if act else 1
        elif isinstance(op, Pool):
            out_shape, out_t = shapes[op.name], op.result_type
            win = op.window(shape)
            strides = tuple(s if pp else n for s, pp, n in zip(op.strides, op.pool, shape[:-1]))
            g = geom_for(op, shape, out_shape, win, strides, op.pads)
            comp = handshake_layer(pool_layer(f"{base}_pool", op, xt, g.kh * g.kw, c_in, hdr), hdr)
            fill, reuse = (xt.min_raw if op.function == "max" else 0), 1
            i += 1
        elif isinstance(op, Activation):
            out_shape, out_t = shape, op.result_type
            g = WindowGeom(1, int(math.prod(shape[:-1])), 1, 1, 1, 1, 0, 0, 1, int(math.prod(shape[:-1])))
            comp = handshake_layer(activation_layer(base, op, xt, c_in, hdr), hdr)
            fill, reuse = 0, 1
            i += 1
        elif isinstance(op, Flatten):
            break
        else:
            raise UnsupportedOpError(op.kind, op.name, ["conv (+ relu/linear)", "max/average pool", "activation", "flatten"],
                                     "the dataflow streaming generator (on images)")
        wmod = f"{base}_window"
        stages.append(Stage(op.name, wmod, window_rtl(wmod, op.name, g, c_in, xt, fill, hdr), comp, g,
                            c_in * xt.width, out_shape[-1] * out_t.width, reuse))
        shape, xt = out_shape, out_t
    rest = [o for o in ops[i:] if not (isinstance(o, Flatten) and o.result_type == xt)]
    return stages, rest, xt, int(math.prod(shape))


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


def cnn_design(graph: Graph, parallelism: "int | dict[str, int] | None", options: dict[str, Any], tlast_mode: int,
               stream_width: int | None, arith: dict[str, Any] | None = None) -> Design:
    digest = graph.digest()
    hdr = header("dataflow", digest)
    dense_opts, arith_info = arith_options(graph, arith, parallelism) if arith else (None, {})
    stages, rest, tail_t, tail_n = plan_stages(graph, hdr, parallelism, dense_opts)
    if not stages:
        raise UnsupportedOpError(graph.ops[0].kind, graph.ops[0].name, ["conv", "pool"], "the dataflow streaming generator")
    iface, k = cnn_interface(graph, stream_width)
    tail_layers = layers_for(rest, tail_t, tail_n, "dataflow", hdr, TAIL_EXTRA, dense_opts) if rest else []
    core = "bondflow_dataflow_core"
    pix0 = stages[0].in_bits
    out_bits = tail_layers[-1].n_out * tail_layers[-1].out_width if tail_layers else tail_n * tail_t.width
    lines = [hdr.rstrip("\n"), f"// {core}: {len(stages)} streaming stage(s) ({', '.join(s.name for s in stages)}), one pixel per "
             "transfer, then the vector tail.", "//   Every stage: a window generator (line history, padding masks) and a "
             "compute layer, chained by valid/ready.", "`timescale 1ns/1ps", "`default_nettype none", f"module {core} (",
             "    input  wire clk,", "    input  wire rst_n,", f"    input  wire [{k * pix0 - 1}:0] in_data,",
             "    input  wire in_valid,", "    output wire in_ready,", f"    output wire [{out_bits - 1}:0] out_data,",
             "    output wire out_valid,", "    input  wire out_ready", ");"]
    n_pix = int(math.prod(graph.input.shape[:-1]))
    if k > 1:
        lines += [f"    wire [{pix0 - 1}:0] px_d;", "    wire px_v, px_r;",
                  f"    bondflow_serializer #(.K({k}), .PIX({pix0}), .N({n_pix})) u_ser (.clk(clk), .rst_n(rst_n), "
                  ".in_data(in_data), .in_valid(in_valid), .in_ready(in_ready), .out_data(px_d), .out_valid(px_v), .out_ready(px_r));"]
        prev = ("px_d", "px_v", "px_r")
    else:
        prev = ("in_data", "in_valid", "in_ready")
    for n, s in enumerate(stages):
        w = f"w{n}"
        lines += [f"    // stage {n}: {s.name}", f"    wire [{s.geom.kh * s.geom.kw * s.in_bits - 1}:0] {w}_d;",
                  f"    wire {w}_v, {w}_r;", f"    wire [{s.out_bits - 1}:0] s{n}_d;", f"    wire s{n}_v, s{n}_r;",
                  f"    {s.window_module} u_{w} (.clk(clk), .rst_n(rst_n), .in_data({prev[0]}), .in_valid({prev[1]}), "
                  f".in_ready({prev[2]}), .win_data({w}_d), .win_valid({w}_v), .win_ready({w}_r));",
                  f"    {s.compute.module} u_c{n} (.clk(clk), .rst_n(rst_n), .in_data({w}_d), .in_valid({w}_v), "
                  f".in_ready({w}_r), .out_data(s{n}_d), .out_valid(s{n}_v), .out_ready(s{n}_r));"]
        prev = (f"s{n}_d", f"s{n}_v", f"s{n}_r")
    last_pix = stages[-1].out_bits
    n_out_pix = tail_n * tail_t.width // last_pix
    files: dict[str, str] = {}
    tail_latency = 0
    if tail_layers:
        lines += [f"    wire [{tail_n * tail_t.width - 1}:0] vec_d;", "    wire vec_v, vec_r;",
                  f"    bondflow_collect #(.N({n_out_pix}), .PIX({last_pix})) u_collect (.clk(clk), .rst_n(rst_n), "
                  f".in_data({prev[0]}), .in_valid({prev[1]}), .in_ready({prev[2]}), .out_data(vec_d), .out_valid(vec_v), .out_ready(vec_r));"]
        tail = "bondflow_dataflow_tail"
        tstages, p_ = [], "in_data"
        for q, layer in enumerate(tail_layers):
            tstages.append({"module": layer.module, "inp": p_, "out": f"l{q}_y", "out_bits": layer.n_out * layer.out_width})
            p_ = f"l{q}_y"
        tail_latency = sum(layer.latency for layer in tail_layers)
        files[f"rtl/{tail}.v"] = render("layers/core.v.j2", header=hdr, module=tail, description="the dense tail after the "
                                        "streaming stages", in_bits=tail_n * tail_t.width, out_bits=out_bits, stages=tstages,
                                        latency=tail_latency)
        lines.append(f"    {tail} u_tail (.clk(clk), .rst_n(rst_n), .in_data(vec_d), .in_valid(vec_v), .in_ready(vec_r), "
                     ".out_data(out_data), .out_valid(out_valid), .out_ready(out_ready));")
    else:
        lines.append(f"    bondflow_collect #(.N({n_out_pix}), .PIX({last_pix})) u_collect (.clk(clk), .rst_n(rst_n), "
                     f".in_data({prev[0]}), .in_valid({prev[1]}), .in_ready({prev[2]}), .out_data(out_data), "
                     ".out_valid(out_valid), .out_ready(out_ready));")
    lines += ["endmodule", "`default_nettype wire", ""]
    computes = [s.compute for s in stages]
    for layer in computes + tail_layers:
        files[f"rtl/{layer.module}.v"] = layer.text
        files.update(dict(layer.extra))
    for s in stages:
        files[f"rtl/{s.window_module}.v"] = s.window_text
    statics = ["bondflow_requant.v", "bondflow_pipe_adapter.v", "bondflow_collect.v"] + (["bondflow_serializer.v"] if k > 1 else [])
    files.update({f"rtl/{name}": static_rtl(name) for name in statics})
    files[f"rtl/{core}.v"] = "\n".join(lines)
    files["rtl/bondflow_top.v"] = render_shell(core, iface, digest, "dataflow", tlast_mode, stream_in=True)
    files["graph.json"] = graph.to_json(indent=1)
    rtl = [f"rtl/{name}" for name in statics] + [p for l in computes + tail_layers for p, _ in l.extra] + \
          [f"rtl/{l.module}.v" for l in computes + tail_layers] + [f"rtl/{s.window_module}.v" for s in stages] + \
          ([f"rtl/bondflow_dataflow_tail.v"] if tail_layers else []) + [f"rtl/{core}.v", "rtl/bondflow_top.v"]
    timing = [StageTiming(geom=s.geom, compute_latency=s.compute.latency, reuse=s.reuse) for s in stages]
    t = measure(timing, pixels=n_pix, pixels_per_beat=k, beats_in=iface.input.beats, out_pixels=n_out_pix,
                tail_latency=tail_latency if tail_layers else None, beats_out=iface.output.beats)
    info = {"streaming": True, "pixels_per_beat": k, "tlast_mode": tlast_mode,
            "stages": [{"op": s.name, "module": s.compute.module, "window": [s.geom.kh, s.geom.kw],
                        "stride": [s.geom.sh, s.geom.sw], "image": [s.geom.h, s.geom.w], "cycles_per_window": s.reuse,
                        "multipliers": s.compute.multipliers, "latency": s.compute.latency} for s in stages],
            "layers": [{"module": l.module, "latency": l.latency, "multipliers": l.multipliers, "n_in": l.n_in, "n_out": l.n_out}
                       for l in computes + tail_layers],
            "multipliers": sum(l.multipliers for l in computes + tail_layers), "ii_model": t.ii, "core_latency": t.latency,
            **arith_info}
    return Design(arch="dataflow", top="bondflow_top", language="verilog", files=files, interface=iface, graph_digest=digest,
                  rtl_files=tuple(rtl), latency_cycles=t.latency, ii_cycles=round(t.ii), options=options, info=info,
                  generator_version=__version__)

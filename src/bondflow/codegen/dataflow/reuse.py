"""Dataflow layers with reuse factor R > 1: shared, pipelined multipliers time-multiplexed over R cycles (as hls4ml's RF)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import __version__
from ...design import Design
from ...errors import ConfigError, UnsupportedOpError
from ...ir.graph import Graph
from ...ir.ops import Activation, Dense, ExpLinear, Flatten, ParamRelu, PRelu, Sigmoid, Softmax, Tanh
from ...ir.types import FixedType
from ..hls4ml.generator import check_reuse_factor, per_layer_reuse
from ..layers import LayerRTL, _term, activation_layer, product_shape, requant_params
from ..pipeline import fused_activation
from ..render import clog2, header, render, sanitize, static_rtl, vlog_literal
from ..shell import interface_for, render_shell, shell_latency
from .exp_linear import exp_linear_layer
from .param_relu import param_relu_layer, prelu_layer
from .tables import table_layer

__all__ = ["reuse_design", "reuse_layer", "live_multipliers", "chain_text"]


def live_multipliers(op: Dense, rf: int) -> list[int]:
    """The shared multipliers (of n_in * n_out / rf) that see a non-zero weight; the others are the constant 0.

    Multiplier m takes the flattened weight k * n_mult + m in select cycle k (row-major over inputs, outputs).
    """
    n_mult = op.n_in * op.n_out // rf
    w = np.asarray(op.weight).reshape(rf, n_mult)
    return [int(m) for m in np.flatnonzero(np.any(w != 0, axis=0))]


def reuse_layer(module: str, op: Dense, x_type: FixedType, act: Activation | None, rf: int, hdr: str,
                dsp: int | None = None) -> LayerRTL:
    """``dsp``: how many of the shared multipliers are written as ``*`` (DSP blocks); the rest, and all of them
    when 0, are shift-and-add over the weight's bits, which no synthesizer maps to a DSP (None: all ``*``)."""
    acc = op.accum_type
    shape = product_shape(op, x_type)
    shift, pw = shape.shift, shape.width
    n_in, n_out = op.n_in, op.n_out
    xw, ww, aw = x_type.width, shape.w_view, acc.width  # weights held in their signed view
    n_mult = (n_in * n_out) // rf
    live = live_multipliers(op, rf)
    on_dsp = set(live if dsp is None else live[:max(0, int(dsp))])
    kw = clog2(rf)
    decls, assigns, comb, regs, insts = [], [], [], [], []
    read: set[int] = set()  # inputs some live multiplier reads
    for m in live:  # a multiplier whose every weight is pruned is the constant 0: left out, and out of the sums
        decls += [f"reg [{xw - 1}:0] xs_{m}, xa_{m};", f"reg signed [{ww - 1}:0] ws_{m}, wa_{m};",
                  f"wire signed [{pw - 1}:0] xe_{m};", f"wire signed [{pw - 1}:0] p_{m};", f"reg signed [{pw - 1}:0] pr_{m};"]
        ext = f"xa_{m}[{xw - 1}]" if x_type.signed else "1'b0"
        assigns.append(f"assign xe_{m} = {{{{{pw - xw}{{{ext}}}}}, xa_{m}}};")
        assigns.append(f"assign p_{m} = xe_{m} * {{{{{pw - ww}{{wa_{m}[{ww - 1}]}}}}, wa_{m}}};" if m in on_dsp
                       else f"assign p_{m} = {_shift_add(m, ww, pw)};")
        regs.append(f"if (en) begin xa_{m} <= xs_{m}; wa_{m} <= ws_{m}; pr_{m} <= p_{m}; end")
        cases_x, cases_w = [], []
        for k in range(rf):
            p = k * n_mult + m
            i, j = divmod(p, n_out)
            read.add(i)
            cases_x.append(f"{kw}'d{k}: xs_{m} = xr[{i * xw + xw - 1}:{i * xw}];")
            cases_w.append(f"{kw}'d{k}: ws_{m} = {vlog_literal(int(op.weight[i, j]), ww)};")
        comb.append("always @(*) begin\n        case (k)\n            " + "\n            ".join(cases_x) +
                    f"\n            default: xs_{m} = {xw}'d0;\n        endcase\n    end")
        comb.append("always @(*) begin\n        case (k)\n            " + "\n            ".join(cases_w) +
                    f"\n            default: ws_{m} = {ww}'d0;\n        endcase\n    end")
    if aw < pw + shift:
        decls.insert(0, "/* verilator lint_off UNUSEDSIGNAL */")
        decls.append("/* verilator lint_on UNUSEDSIGNAL */")
    y_type = act.result_type if act else op.result_type
    yw = y_type.width
    for j in range(n_out):
        decls += [f"reg [{aw - 1}:0] acc_{j};", f"reg [{aw - 1}:0] add_{j};", f"wire [{aw - 1}:0] sum_{j};",
                  f"wire [{op.result_type.width - 1}:0] d_{j};", f"reg [{yw - 1}:0] y_{j};"]
        cases = []
        for k in range(rf):
            ms = [m for m in live if (k * n_mult + m) % n_out == j]
            expr = " + ".join(_term(f"pr_{m}", pw, aw, shift) for m in ms) or f"{aw}'d0"
            cases.append(f"{kw}'d{k}: add_{j} = {expr};")
        comb.append("always @(*) begin\n        case (k2)\n            " + "\n            ".join(cases) +
                    f"\n            default: add_{j} = {aw}'d0;\n        endcase\n    end")
        bias = int(acc.requantize(op.bias[j:j + 1], op.bias_type.frac_bits)[0])
        assigns.append(f"assign sum_{j} = (k2 == {kw}'d0 ? {vlog_literal(bias, aw)} : acc_{j}) + add_{j};")
        regs.append(f"if (en && v2) acc_{j} <= sum_{j};")
        insts.append(f"bondflow_requant {requant_params(acc, op.result_type, False)} u_rq_{j} (.x(sum_{j}), .y(d_{j}));")
        if act:
            decls.append(f"wire [{yw - 1}:0] a_{j};")
            insts.append(f"bondflow_requant {requant_params(op.result_type, act.result_type, act.function == 'relu')} "
                         f"u_act_{j} (.x(d_{j}), .y(a_{j}));")
        regs.append(f"if (en && last2) y_{j} <= {'a' if act else 'd'}_{j};")
        assigns.append(f"assign out_data[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    text = render("layers/reuse_layer.v.j2", header=hdr, module=module, n_in=n_in, n_out=n_out, x_w=xw, y_w=yw,
                  rf=rf, kw=kw, n_mult=n_mult, act=(act.function if act else None), x_type=str(x_type),
                  w_type=str(op.weight_type), acc_type=str(acc), y_type=str(y_type), decls=decls, assigns=assigns,
                  comb=comb, regs=regs, insts=insts, n_live=len(live), xr_partly_unused=len(read) < n_in)
    # One cycle to register the input, R select cycles, then the multiply and accumulate stages (the latter
    # ends in the output register): R + 3. Samples overlap in the pipeline, so the interval stays R.
    return LayerRTL(module, text, rf + 3, n_in, xw, n_out, yw, len(live))


def _shift_add(m: int, ww: int, pw: int) -> str:
    """x * w in two's complement as the sum of x shifted by each weight bit, the sign bit's term subtracted."""
    terms = [f"({{{pw}{{wa_{m}[{b}]}}}} & (xe_{m} <<< {b}))" for b in range(ww - 1)]
    neg = f"({{{pw}{{wa_{m}[{ww - 1}]}}}} & (xe_{m} <<< {ww - 1}))"
    return (" + ".join(terms) or f"{pw}'d0") + f" - {neg}"


def handshake_layer(inner: LayerRTL, hdr: str, in_bits: int | None = None, positions: int = 0) -> LayerRTL:
    """A fixed-latency, never-stalling layer behind valid/ready: a travelling valid bit and the pipe adapter.

    ``in_bits``: the input bus when it is not ``n_in * in_width`` (a merge of inputs of different widths).
    ``positions``: count accepted samples modulo this (an image's pixels) and hand the count to the layer above
    its input (a layer whose parameters differ per pixel).
    """
    module = f"{inner.module}_hs"
    from .elementwise_quant import position_bits
    position = {"bits": position_bits(positions), "count": positions} if positions else None
    text = render("layers/core.v.j2", header=hdr, module=module, latency=inner.latency, position=position,
                  description=f"{inner.module} behind valid/ready (pipe adapter)", in_bits=in_bits or inner.n_in * inner.in_width,
                  out_bits=inner.n_out * inner.out_width,
                  stages=[{"module": inner.module, "inp": "{pos, in_data}" if position else "in_data", "out": "l0_y",
                           "out_bits": inner.n_out * inner.out_width}])
    extra = inner.extra + ((f"rtl/{inner.module}.v", inner.text),)
    # + 1: the adapter's FIFO sits between the pipeline's last register and out_valid
    return LayerRTL(module, text, inner.latency + 1, inner.n_in, inner.in_width, inner.n_out, inner.out_width,
                    inner.multipliers, extra)


def chain_text(module: str, chain: list[tuple[LayerRTL, int]], in_bits: int, hdr: str, what: str) -> str:
    """A module chaining layers: handshake layers (second field ≥ 1) bonded by valid/ready, combinational ones
    (second field 0, e.g. per-element casts) wired inline between them."""
    out_bits = chain[-1][0].n_out * chain[-1][0].out_width
    lines = [hdr.rstrip("\n"), f"// {module}: {what}", "`timescale 1ns/1ps", "`default_nettype none", f"module {module} (",
             "    input  wire clk,", "    input  wire rst_n,", f"    input  wire [{in_bits - 1}:0] in_data,",
             "    input  wire in_valid,", "    output wire in_ready,", f"    output wire [{out_bits - 1}:0] out_data,",
             "    output wire out_valid,", "    input  wire out_ready", ");"]
    d, v, r = "in_data", "in_valid", "in_ready"
    for q, (layer, hs) in enumerate(chain):
        last = q == len(chain) - 1
        od = "out_data" if last else f"l{q}_d"
        if not last:
            lines.append(f"    wire [{layer.n_out * layer.out_width - 1}:0] {od};")
        if hs == 0:  # combinational: data through it, valid and ready past it
            lines.append(f"    {layer.module} u_l{q} (.clk(clk), .x({d}), .y({od}));")
            d = od
            if last:
                lines += [f"    assign out_valid = {v};", f"    assign {r} = out_ready;"]
            continue
        ov, orr = ("out_valid", "out_ready") if last else (f"l{q}_v", f"l{q}_r")
        if not last:
            lines.append(f"    wire {ov}, {orr};")
        lines.append(f"    {layer.module} u_l{q} (.clk(clk), .rst_n(rst_n), .in_data({d}), .in_valid({v}), "
                     f".in_ready({r}), .out_data({od}), .out_valid({ov}), .out_ready({orr}));")
        d, v, r = od, ov, orr
    return "\n".join(lines + ["endmodule", "`default_nettype wire", ""])


def reuse_design(graph: Graph, reuse_factor: "int | dict[str, int]", options: dict[str, Any], tlast_mode: int,
                 stream_width: int | None, arith: dict[str, Any] | None = None) -> Design:
    """Every Dense shares its multipliers; ``arith`` (multipliers dsp/lut/auto, target, dsp_budget) says how many
    of them are DSP products, the rest shift-and-add (arith.shared_options)."""
    check_reuse_factor(graph, reuse_factor)  # the same valid set as hls4ml, so both compare like for like
    rfs = per_layer_reuse(graph, reuse_factor)
    split: dict[str, int] | None = None
    arith_info: dict[str, Any] = {}
    if arith:
        if arith.get("stage_adders") is not None:
            raise ConfigError("stage_adders applies to constant multipliers (reuse factor 1); a reuse factor > 1 shares "
                              f"multipliers, so stage_adders must be unset, not {arith['stage_adders']}")
        from .arith import shared_options
        shared = [(op.name, len(live_multipliers(op, rfs[op.name]))) for op in graph.ops if isinstance(op, Dense)]
        opts, arith_info = shared_options([], shared, arith.get("multipliers", "dsp"), None, arith.get("target"),
                                          arith.get("dsp_budget"))
        split = {k: v["dsp"] for k, v in opts.items()}
    digest = graph.digest()
    hdr = header("dataflow", digest)
    layers: list[LayerRTL] = []
    ops = list(graph.ops)
    cur = graph.input.type
    i = 0
    while i < len(ops):
        op = ops[i]
        if isinstance(op, Dense):
            act = fused_activation(ops, i)
            layers.append(reuse_layer(f"bondflow_dataflow_{sanitize(op.name)}", op, cur, act, rfs[op.name], hdr,
                                      dsp=None if split is None else split[op.name]))
            cur = (act or op).result_type
            i += 2 if act else 1
        elif isinstance(op, Flatten) and op.result_type == cur:
            i += 1
        elif isinstance(op, (Activation, Sigmoid, Tanh, Softmax, ParamRelu, PRelu, ExpLinear)):
            n = layers[-1].n_out if layers else graph.input.size
            name = f"bondflow_dataflow_{sanitize(op.name)}"
            inner = (activation_layer(name, op, cur, n, hdr) if isinstance(op, Activation)
                     else param_relu_layer(name, op, cur, n, hdr) if isinstance(op, ParamRelu)
                     else prelu_layer(name, op, cur, n, hdr) if isinstance(op, PRelu)
                     else exp_linear_layer(name, op, cur, n, hdr) if isinstance(op, ExpLinear)
                     else table_layer(name, op, cur, n, hdr))
            layers.append(handshake_layer(inner, hdr))
            cur = op.result_type
            i += 1
        else:
            raise UnsupportedOpError(op.kind, op.name, ["dense (+ activation)", "activation", "param_relu", "prelu", "sigmoid", "tanh", "elu", "selu",
                                                      "softmax", "flatten"],
                                     "the dataflow generator at reuse factor > 1")
    core = "bondflow_dataflow_core"
    text = chain_text(core, [(l, 1) for l in layers], graph.input.size * graph.input.type.width, hdr,
                      f"{len(layers)} time-multiplexed layers chained by valid/ready handshakes.")
    iface = interface_for(graph, stream_width, None)
    files = {f"rtl/{l.module}.v": l.text for l in layers}
    extra = [p for l in layers for p, _ in l.extra]
    files.update({p: t for l in layers for p, t in l.extra})
    if extra:
        files["rtl/bondflow_pipe_adapter.v"] = static_rtl("bondflow_pipe_adapter.v")
        extra.insert(0, "rtl/bondflow_pipe_adapter.v")
    files.update({"rtl/bondflow_requant.v": static_rtl("bondflow_requant.v"), f"rtl/{core}.v": text,
                  "rtl/bondflow_top.v": render_shell(core, iface, digest, "dataflow", tlast_mode),
                  "graph.json": graph.to_json(indent=1)})
    rtl = ["rtl/bondflow_requant.v"] + extra + [f"rtl/{l.module}.v" for l in layers] + [f"rtl/{core}.v", "rtl/bondflow_top.v"]
    ii = max(list(rfs.values()) + [iface.input.beats, iface.output.beats])
    info = {"layers": [{"module": l.module, "latency": l.latency, "multipliers": l.multipliers} for l in layers],
            "multipliers": sum(l.multipliers for l in layers), "tlast_mode": tlast_mode, **arith_info}
    latency = sum(l.latency for l in layers) + shell_latency(iface, adapter=False)  # these layers handshake themselves
    return Design(arch="dataflow", top="bondflow_top", language="verilog", files=files, interface=iface,
                  graph_digest=digest, rtl_files=tuple(rtl), latency_cycles=latency, ii_cycles=ii,
                  options={**options, "reuse_factor": rfs}, info=info, generator_version=__version__)

"""Architecture "moldable": render the mapped processor network to Verilog behind the common shell."""
from __future__ import annotations

import json
from typing import Any

from ... import __version__
from ...codegen.base import register_arch
from ...codegen.layers import _term, product_shape, requant_params
from ...codegen.render import clog2, header, render, sanitize, static_rtl, vlog_literal
from ...codegen.shell import interface_for, render_shell, shell_latency
from ...design import Design
from ...errors import ConfigError
from ...ir.graph import Graph
from .conv_program import ShapedLayer
from .conv_rtl import shaped_core_text
from .program import Layer, Network, TableLayer, map_network
from .tables import table_unit
from .units import UnitLayer, unit_files

__all__ = ["generate_moldable"]


def _core_text(layer: Layer, core, module: str, hdr: str) -> str:
    d, x_t = layer.dense, layer.x_type
    acc = d.accum_type
    ops = core.opcodes
    opw = clog2(len(ops))
    code = {o: i for i, o in enumerate(ops)}
    shape = product_shape(d, x_t, "the moldable generator")
    pw, shift, wv = shape.width, shape.shift, shape.w_view  # weights held in their signed view
    aw_idx, nw, pcw = clog2(d.n_in), clog2(len(core.neurons)), clog2(len(core.program) + 1)
    lanes = len(core.program[0].a)
    rom = [f"{pcw}'d{k}: begin op = {opw}'d{code[i.op]}; "
           + "".join(f"a{l} = {aw_idx}'d{i.a[l]}; w{l} = $signed({vlog_literal(i.w[l], wv)}); " for l in range(lanes))
           + f"n = {nw}'d{i.n}; end  // {i.op}" for k, i in enumerate(core.program)]
    xw = x_t.width
    # Per lane, only the inputs that lane reads with a non-zero weight reach its multiplexer.
    xmux = [sorted({i.a[l] for i in core.program if i.op != "BIASO" and i.w[l] != 0}) for l in range(lanes)]
    bias = acc.requantize(d.bias, d.bias_type.frac_bits)
    biasrom = [f"{nw}'d{s}: bias = {vlog_literal(int(bias[j]), acc.width)};" for s, j in enumerate(core.neurons)]

    def any_of(names: list[str]) -> str:
        hits = [f"op_r == {opw}'d{code[o]}" for o in names if o in code]
        return " || ".join(hits) if hits else "1'b0"
    act = layer.act
    y_t = (act or d).result_type
    return render("moldable/core.v.j2", header=hdr, module=module, neurons=core.neurons, layer=layer.name, opcodes=ops,
                  plen=len(core.program), acc_type=str(acc), n_in=d.n_in, x_w=xw, slots=len(core.neurons), y_w=y_t.width,
                  pcw=pcw, opw=opw, aw_idx=aw_idx, w_w=wv, nw=nw, rom=rom, xmux=xmux, biasrom=biasrom,
                  acc_w=acc.width, pw=pw, shift=shift, x_signed=x_t.signed, lanes=lanes, first_a=core.program[0].a,
                  terms=[_term(f"p{l}", pw, acc.width, shift) for l in range(lanes)],
                  uses_bias=any_of(["MACB", "MACBO", "BIASO"]), no_product=any_of(["BIASO"]),
                  writes_out=any_of(["MACO", "MACBO", "BIASO"]), r_w=d.result_type.width,
                  rq_dense=requant_params(acc, d.result_type, False),
                  rq_act=requant_params(d.result_type, act.result_type, act.function == "relu") if act else None)


def _bonds(net: Network, layer_modules: list[tuple[str, Any]]) -> tuple[list[str], dict[str, list[int]]]:
    """The core's body: a valid/ready bond per tensor, a lazy fork (a word moves when every reader is ready) where a
    tensor has several readers, a fifo per input of a merge unit (sized by ``Network.fifo_depths``); also those sizes."""
    names = {net.source: "in"}
    readers: dict[str, list[str]] = {net.source: []}
    for k, (srcs, dst) in enumerate(net.wiring):
        names[dst], readers[dst] = f"b{k}", []
        for j, s in enumerate(srcs):
            readers[s].append(f"b{k}_i{j}")
    readers[net.output].append("out")
    body: list[str] = []
    for t, w in names.items():
        if t != net.source:
            body += [f"    wire [{_out_bits(layer_modules[int(w[1:])][1]) - 1}:0] {w}_d;", f"    wire {w}_v, {w}_r;"]
    body += ["    wire in_v, in_r;", "    assign in_v = in_valid;", "    assign in_ready = in_r;"]
    for t, w in names.items():
        data = "in_data" if t == net.source else f"{w}_d"
        ports = readers[t]
        body += [f"    wire {p}_v, {p}_r;" for p in ports if p != "out"]
        if "out" in ports:
            body += ["    assign out_data = " + data + ";", "    wire out_v, out_r;", "    assign out_valid = out_v;",
                     "    assign out_r = out_ready;"]
        if len(ports) == 1:
            body += [f"    assign {ports[0]}_v = {w}_v;", f"    assign {w}_r = {ports[0]}_r;"]
        else:
            body += [f"    // {t} feeds {len(ports)} readers: a word moves when every reader is ready",
                     f"    assign {w}_r = {' && '.join(p + '_r' for p in ports)};",
                     *(f"    assign {p}_v = {w}_v && {w}_r;" for p in ports)]
    fifos: dict[str, list[int]] = {}
    for k, ((lmod, layer), (srcs, _)) in enumerate(zip(layer_modules, net.wiring)):
        w = f"b{k}"
        if len(srcs) == 1:
            data = "in_data" if srcs[0] == net.source else f"{names[srcs[0]]}_d"
            body.append(f"    {lmod} u_{k} (.clk(clk), .rst_n(rst_n), .in_data({data}), .in_valid({w}_i0_v), .in_ready({w}_i0_r), "
                        f".out_data({w}_d), .out_valid({w}_v), .out_ready({w}_r));")
            continue
        depths = net.fifo_depths(k)
        fifos[layer.name] = depths
        body += [f"    // the inputs of {layer.name} wait in fifos (the shorter branch runs ahead); it takes one word from each at once",
                 f"    wire {w}_mv, {w}_mr, {w}_join;"]
        heads = []
        for j, (s, depth) in enumerate(zip(srcs, depths)):
            f, bits = f"{w}_f{j}", layer.in_sizes[j] * layer.x_types[j].width
            data = "in_data" if s == net.source else f"{names[s]}_d"
            body += [f"    wire [{bits - 1}:0] {f}_q;", f"    wire {f}_empty, {f}_full;", f"    assign {w}_i{j}_r = !{f}_full;",
                     "    /* verilator lint_off PINCONNECTEMPTY */",  # the fill count is not needed
                     f"    bondflow_kfifo #(.WIDTH({bits}), .LOG2_DEPTH({depth.bit_length() - 1})) u_{f} (.clk(clk), .rst_n(rst_n), "
                     f".push({w}_i{j}_v), .din({data}), .pop({w}_join), .dout({f}_q), .empty({f}_empty), .full({f}_full), .count());",
                     "    /* verilator lint_on PINCONNECTEMPTY */"]
            heads.append(f"{f}_q")
        body += [f"    assign {w}_mv = {' && '.join(f'!{w}_f{j}_empty' for j in range(len(srcs)))};",
                 f"    assign {w}_join = {w}_mv && {w}_mr;",
                 f"    {lmod} u_{k} (.clk(clk), .rst_n(rst_n), .in_data({{{', '.join(reversed(heads))}}}), .in_valid({w}_mv), "
                 f".in_ready({w}_mr), .out_data({w}_d), .out_valid({w}_v), .out_ready({w}_r));"]
    return body, fifos


def _out_bits(layer: Any) -> int:
    """Bits of a layer's output word."""
    if isinstance(layer, TableLayer):
        return layer.n * layer.op.result_type.width
    if isinstance(layer, Layer):
        return layer.dense.n_out * (layer.act or layer.dense).result_type.width
    return layer.n * layer.result_type.width


@register_arch("moldable")
def generate_moldable(graph: Graph, cores: int | list[int] | str = "auto", tlast_mode: int = 0, stream_width: int | None = None,
                      lanes: int = 1, **options: Any) -> Design:
    """``cores``: processors per layer (one number for all layers, a list, or "auto": sized from the model, see
    ``auto_cores``); ``lanes``: multipliers per core.

    Both trade area for latency: cores split a layer's neurons, lanes split a neuron's multiply-accumulates.
    """
    if options:
        raise ConfigError(f"moldable options must be among cores, lanes, tlast_mode, stream_width, not {sorted(options)}")
    net = map_network(graph, cores, lanes)
    digest = graph.digest()
    hdr = header("moldable", digest)
    files: dict[str, str] = {}
    layer_modules: list[tuple[str, Layer | TableLayer]] = []
    table_files: list[str] = []
    for k, layer in enumerate(net.layers):
        if isinstance(layer, (TableLayer, UnitLayer)):
            lmod = f"bondflow_moldable_{sanitize(layer.name)}"
            unit = table_unit(layer, lmod, hdr) if isinstance(layer, TableLayer) else unit_files(layer, lmod, hdr)
            files.update(unit)
            table_files += sorted(f for f in unit if f != f"rtl/{lmod}.v") + [f"rtl/{lmod}.v"]
            layer_modules.append((lmod, layer))
            continue
        shaped = isinstance(layer, ShapedLayer)
        y_t = layer.result_type if shaped else (layer.act or layer.dense).result_type
        yw = y_t.width
        # A shaped core holds its channels at every position: slot s of position p is output p * channels + channel.
        positions, width = (layer.geom.positions, layer.channels_out) if shaped else (1, 0)
        core_info, assemble = [], []
        for c, core in enumerate(layer.cores):
            mod = f"bondflow_moldable_{sanitize(layer.name)}_c{c}"
            files[f"rtl/{mod}.v"] = shaped_core_text(layer, core, mod, hdr) if shaped else _core_text(layer, core, mod, hdr)
            core_info.append({"module": mod, "slots": positions * len(core.neurons), "x_in": not shaped})
            for p in range(positions):
                for s, j in enumerate(core.neurons):
                    o, i = p * width + j, p * len(core.neurons) + s
                    assemble.append(f"assign assembled[{o * yw + yw - 1}:{o * yw}] = y_{c}[{i * yw + yw - 1}:{i * yw}];")
        lmod = f"bondflow_moldable_{sanitize(layer.name)}"
        files[f"rtl/{lmod}.v"] = render("moldable/layer.v.j2", header=hdr, module=lmod, layer=layer.name, cores=core_info,
                                        cycles=layer.cycles, n_in=layer.n_in if shaped else layer.dense.n_in,
                                        x_w=layer.x_type.width, n_out=layer.n if shaped else layer.dense.n_out,
                                        y_w=yw, assemble=assemble)
        layer_modules.append((lmod, layer))
    core_mod = "bondflow_moldable_core"
    body, fifos = _bonds(net, layer_modules)
    lines = [hdr.rstrip(), f"// {core_mod}: {len(net.layers)} layers of moldable processors, bonded by valid/ready"
             + (" (forks where a tensor has several readers, fifos where branches merge)." if fifos else "."),
             "`timescale 1ns/1ps", "`default_nettype none", f"module {core_mod} (", "    input  wire clk,", "    input  wire rst_n,",
             f"    input  wire [{graph.input.size * graph.input.type.width - 1}:0] in_data,", "    input  wire in_valid,",
             "    output wire in_ready,", f"    output wire [{graph.output.size * graph.output.type.width - 1}:0] out_data,",
             "    output wire out_valid,", "    input  wire out_ready", ");", *body, "endmodule", "`default_nettype wire", ""]
    files[f"rtl/{core_mod}.v"] = "\n".join(lines)
    iface = interface_for(graph, stream_width, None)
    files["rtl/bondflow_top.v"] = render_shell(core_mod, iface, digest, "moldable", tlast_mode)
    files["rtl/bondflow_requant.v"] = static_rtl("bondflow_requant.v")
    if fifos:
        files["rtl/bondflow_kfifo.v"] = static_rtl("bondflow_kfifo.v")
    files["moldable.json"] = json.dumps(net.to_json_dict(), indent=1)
    files["graph.json"] = graph.to_json(indent=1)
    rtl = ["rtl/bondflow_requant.v"] + (["rtl/bondflow_kfifo.v"] if fifos else []) + sorted(f for f in files if f.startswith("rtl/bondflow_moldable_") and "_c" in f.rsplit("/", 1)[1]) \
        + table_files + [f"rtl/{m}.v" for m, _ in layer_modules] + [f"rtl/{core_mod}.v", "rtl/bondflow_top.v"]
    rtl = list(dict.fromkeys(rtl))
    mac = [l for l in net.layers if isinstance(l, Layer) or (isinstance(l, ShapedLayer) and l.mode == "mac")]
    pool = [l for l in net.layers if isinstance(l, ShapedLayer) and l.mode != "mac"]
    tables = [l for l in net.layers if isinstance(l, TableLayer)]
    units = [l for l in net.layers if isinstance(l, UnitLayer)]
    info = {"cores": sum(len(l.cores) for l in mac + pool),
            "cores_per_layer": [len(l.cores) for l in net.layers if not isinstance(l, (TableLayer, UnitLayer))],
            "program_cycles": [l.cycles for l in net.layers], "isa_latency": net.latency, "isa_ii": net.ii,
            "opcodes": sorted({o for l in mac for c in l.cores for o in c.opcodes}), "tlast_mode": tlast_mode,
            "lanes": lanes, "multipliers": lanes * sum(len(l.cores) for l in mac) + sum(l.n for l in tables
                                                                                      if l.op.kind == "softmax"),
            "table_units": [f"{l.name} ({l.op.kind})" for l in tables],
            **({"element_units": [f"{l.name} ({l.to_json_dict()['kind']})" for l in units],
                "fifo_words": fifos} if units else {}),
            **({"pixel_loops": {l.name: l.geom.positions for l in net.layers if isinstance(l, ShapedLayer)}} if pool or
               any(isinstance(l, ShapedLayer) for l in mac) else {})}
    return Design(arch="moldable", top="bondflow_top", language="verilog", files=files, interface=iface, graph_digest=digest,
                  rtl_files=tuple(rtl), latency_cycles=net.latency + shell_latency(iface, adapter=False),
                  ii_cycles=max(net.ii, iface.input.beats, iface.output.beats),
                  options={"cores": cores, "lanes": lanes, "tlast_mode": tlast_mode, "stream_width": stream_width}, info=info,
                  generator_version=__version__)

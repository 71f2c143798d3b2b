"""Architecture "bondmachine": the real BondMachine Go toolchain (neuralbond, basm, bondmachine) behind the common shell."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .. import __version__
from ..codegen.base import register_arch
from ..codegen.render import header, render
from ..codegen.shell import interface_for, render_shell
from ..design import Design
from ..errors import ConfigError
from ..ir.graph import Graph
from .model import summarize
from .netjson import config_json, net_json, plan
from .numbers import parse_number_type
from .numerics import reference_name
from .toolchain import BM_PIN, OUR_NEURONS, run_flow

__all__ = ["generate_bondmachine", "CORE_MODULE", "prepare_for_sim"]

CORE_MODULE = "bondflow_bm_core"
_DISPLAY = re.compile(r"^(\s*)(\$display\(.*\);)\s*$", re.M)
_STATE = re.compile(r"^(\s*)reg\s*(\[\d+:0\])\s*(\w+_state);\s*$", re.M)


def prepare_for_sim(text: str) -> str:
    """The two edits bondflow makes to BondMachine's Verilog (verbatim copies are kept under bondmachine/hdl/):

    - its per-instruction ``$display`` lines are commented out (every CP prints every clock: gigabytes of log);
    - the put/get state register of fixed-point ops (``<op>_<cp>_state``) has no reset and no initial value, so a
      4-state simulator keeps it X and the CP hangs at its first multfps; it gets ``initial ... = 0``, the FPGA power-up value.
    """
    text = _DISPLAY.sub(r"\1// \2  (disabled by bondflow for simulation)", text)
    return _STATE.sub(r"\1reg \2 \3;\n\1initial \3 = 0;  // added by bondflow: no reset upstream (power-up value)", text)


@register_arch("bondmachine")
def generate_bondmachine(graph: Graph, number_type: str = "fps16f10", tlast_mode: int = 0, stream_width: int | None = None,
                         benchmark_core: bool = False, expprec: int | None = None, softmax_neuron: str = "softmax",
                         keep_display: bool = False, workdir: str | None = None, **options: Any) -> Design:
    """Lower ``graph`` to neuralbond's net JSON, run the three tools, wrap ``bondmachine`` behind the shell.

    ``number_type``: fps<s>f<f> or fixed<s,i> (bit-exact, checked in RTL), float32/float16 (generated, not wrapped yet).
    A final softmax becomes BondMachine's ``softmax_neuron`` (softmax or softmaxq) with ``expprec`` Taylor terms
    (default: the most whose factorials fit the register, ``max_expprec``).
    """
    if options:
        raise ConfigError(f"bondmachine options must be among number_type, tlast_mode, stream_width, benchmark_core, "
                          f"expprec, softmax_neuron, keep_display, workdir, not {sorted(options)}")
    nt = parse_number_type(number_type)
    if not nt.is_fixed:
        raise ConfigError(f"number type must be fps<s>f<f> or fixed<s,i> for a simulatable design, not {nt.name}: "
                          "the wrapper does not convert float32/float16 to the graph's fixed-point stream yet")
    net = plan(graph, nt, softmax_neuron, expprec)
    nj, cfg = net_json(net), config_json(net, "")
    tmp = Path(tempfile.mkdtemp(prefix="bondflow-bm-", dir=workdir))
    try:
        flow = run_flow(nj, cfg, nt.name, nt.bits, tmp / "flow", benchmark_core=benchmark_core)
        files: dict[str, str] = {}
        bm_dir = "bondmachine"
        for rel in ("net.json", "config.in.json", "config.json", "bminfo.json", "steps.json"):
            files[f"{bm_dir}/{rel}"] = (flow.workdir / rel).read_text()
        files[f"{bm_dir}/bondmachine.basm"] = flow.basm.read_text()
        files[f"{bm_dir}/bondmachine.json"] = flow.bondmachine_json.read_text()
        files[f"{bm_dir}/requirements.json"] = (flow.workdir / "wd" / "requirements.json").read_text()
        for log in sorted((flow.workdir / "logs").iterdir()):
            files[f"{bm_dir}/logs/{log.name}"] = log.read_text()[-200_000:]
        for n in OUR_NEURONS:
            for f in (f"{n}.nb", f"frag-{n}.basm"):
                files[f"{bm_dir}/neurons/{f}"] = (flow.workdir / "neurons" / f).read_text()
        verilog = sorted(p for p in flow.hdl_dir.glob("*.v") if p.name != "bondmachine_tb.v")
        bm_rtl = []
        for p in verilog:  # verbatim copies for the record, display-free copies to simulate and synthesize
            text = p.read_text()
            files[f"{bm_dir}/hdl/{p.name}"] = text
            rel = f"rtl/bm/{p.name}"
            files[rel] = text if keep_display else prepare_for_sim(text)
            bm_rtl.append(rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    digest = graph.digest()
    hdr = header("bondmachine", digest)
    i_t, o_t = graph.input.type, graph.output.type
    files[f"rtl/{CORE_MODULE}.v"] = render("bondmachine/core.v.j2", header=hdr, module=CORE_MODULE, number_type=nt.name, s=nt.bits,
                                           n_in=graph.input.size, w_in=i_t.width, in_signed=i_t.signed,
                                           n_out=graph.output.size, w_out=o_t.width, ext_w=64,
                                           in_shift=int(nt.frac) - i_t.frac_bits, out_shift=o_t.frac_bits - int(nt.frac))
    iface = interface_for(graph, stream_width, None)
    files["rtl/bondflow_top.v"] = render_shell(CORE_MODULE, iface, digest, "bondmachine", tlast_mode)
    files["graph.json"] = graph.to_json(indent=1)
    model = summarize(json.loads(files[f"{bm_dir}/bondmachine.json"]), json.loads(files[f"{bm_dir}/bminfo.json"]))
    info = {"reference": reference_name(nt, net.softmax, net.expprec), "softmax_neuron": net.softmax,
            "expprec": net.expprec or None, "number_type": nt.name, "register_size": nt.bits, "bm_pin": BM_PIN,
            "connecting_processors": model["processors"], "bonds": model["bond_count"],
            "weights": net.weights_count(), "pruned_zero_weights": net.pruned_zero_weights,
            "inexact_constants": sum(l.inexact for l in net.layers),
            "neurons": {l.name: l.neuron for l in net.layers}, "own_neurons": list(OUR_NEURONS),
            "tool_steps": [{k: s[k] for k in ("tool", "cmd", "rc", "seconds", "log")} for s in flow.steps],
            "lint_exclude": bm_rtl, "sim_edits": [] if keep_display else ["$display commented out", "fps op state regs: initial 0"], "tlast_mode": tlast_mode,
            "verilator_note": "BondMachine Verilog uses <= #1 delays: Verilator needs -Wno-STMTDLY"}
    rtl = bm_rtl + [f"rtl/{CORE_MODULE}.v", "rtl/bondflow_top.v"]
    return Design(arch="bondmachine", top="bondflow_top", language="verilog", files=files, interface=iface, graph_digest=digest,
                  rtl_files=tuple(rtl), latency_cycles=None, ii_cycles=None,
                  options={"number_type": nt.name, "tlast_mode": tlast_mode, "stream_width": stream_width,
                           "benchmark_core": benchmark_core, "expprec": net.expprec or None, "softmax_neuron": softmax_neuron, "keep_display": keep_display,
                           "verilator_args": ["--no-timing", "-Wno-STMTDLY", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN",
                                              "-Wno-INITIALDLY", "-Wno-COMBDLY"]},
                  info=info, generator_version=__version__)

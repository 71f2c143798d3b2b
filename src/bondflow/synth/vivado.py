"""Vivado flow: generated TCL for out-of-context synthesis/implementation and a PYNQ block design; run when present."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..codegen.render import render
from ..tools import find_tool, run_tool
from .targets import Target

__all__ = ["write_vivado_scripts", "run_vivado", "parse_utilization", "parse_timing", "PYNQ_BOARDS"]

#: Boards with a Zynq block design (PS + AXI DMA + core -> .bit + .hwh), as hls4ml's VivadoAccelerator does.
PYNQ_BOARDS = {"xc7z020": "processing_system7", "xczu9eg": "zynq_ultra_ps_e"}


def write_vivado_scripts(rtl: list[str], target: Target, clock_mhz: float, out: Path, design_digest: str,
                         top: str = "bondflow_top", clock_port: str = "clk") -> list[Path]:
    """Write ooc.tcl (synth + impl of ``top``) and, for the stream shell on Zynq parts, bd.tcl (block design, bitstream, hwh)."""
    out.mkdir(parents=True, exist_ok=True)
    ctx = dict(rtl=rtl, part=target.part, clock_ns=round(1000.0 / clock_mhz, 3), clock_mhz=clock_mhz,
               digest=design_digest, target=target.name, ps=PYNQ_BOARDS.get(target.name), top=top, clock_port=clock_port)
    paths = [out / "ooc.tcl"]
    paths[0].write_text(render("scripts/vivado_ooc.tcl.j2", **ctx))
    if target.name in PYNQ_BOARDS and top == "bondflow_top":
        paths.append(out / "bd.tcl")
        paths[1].write_text(render("scripts/vivado_bd.tcl.j2", **ctx))
    return paths


def parse_utilization(text: str) -> dict[str, int]:
    """LUT/FF/DSP/BRAM from `report_utilization` text (Vivado has no JSON report)."""
    def grab(label: str) -> int:
        m = re.search(rf"^\|\s*{label}\s*\|\s*([\d.]+)", text, re.M)
        return int(float(m.group(1))) if m else 0
    return {"lut": grab("(?:Slice|CLB) LUTs\\*?"), "ff": grab("(?:Slice|CLB) Registers"), "dsp": grab("DSPs"),
            "bram": grab("Block RAM Tile")}


def parse_timing(text: str) -> dict[str, Any]:
    m = re.search(r"WNS\(ns\)\s+TNS\(ns\).*?\n[\s-]+\n\s*(-?[\d.]+)", text, re.S)
    wns = float(m.group(1)) if m else None
    return {"wns_ns": wns, "timing_met": (wns is not None and wns >= 0)}


def run_vivado(script: Path, work: Path) -> dict[str, Any]:
    run_tool("vivado", ["-mode", "batch", "-nojournal", "-source", script.name], cwd=work, log=work / "vivado.log", timeout=6 * 3600)
    util = parse_utilization((work / "utilization.rpt").read_text())
    timing = parse_timing((work / "timing.rpt").read_text())
    return {"resources": util, **timing, "log": str(work / "vivado.log")}


def has_vivado() -> bool:
    return find_tool("vivado") is not None

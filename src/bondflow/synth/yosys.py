"""yosys synthesis: synth_xilinx / synth_ecp5 / synth_ice40, resources read from `stat -json`."""
from __future__ import annotations

import json
from pathlib import Path

from ..tools import run_tool
from .targets import Target

__all__ = ["synthesize_yosys", "count_resources", "CELL_CLASSES"]

#: Which primitive cells count as LUT, FF, DSP and BRAM, per family (documented in docs/synthesis.md).
CELL_CLASSES: dict[str, dict[str, tuple[str, ...]]] = {
    "xilinx": {"lut": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D",
                       "RAM128X1D", "SRL16E", "SRLC32E"),
               "ff": ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"),
               "dsp": ("DSP48E1", "DSP48E2"),
               "bram": ("RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2")},
    "ecp5": {"lut": ("LUT4", "TRELLIS_DPR16X4", "CCU2C"), "ff": ("TRELLIS_FF",),
             "dsp": ("MULT18X18D", "ALU54B"), "bram": ("DP16KD", "PDPW16KD")},
    "ice40": {"lut": ("SB_LUT4",), "ff": ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFS", "SB_DFFESR",
                                          "SB_DFFER", "SB_DFFES", "SB_DFFSS", "SB_DFFESS"),
              "dsp": ("SB_MAC16",), "bram": ("SB_RAM40_4K",)},
}


def count_resources(cells: dict[str, int], flow: str) -> dict[str, int]:
    classes = CELL_CLASSES[flow]
    out = {k: sum(n for c, n in cells.items() if c in names) for k, names in classes.items()}
    if flow == "ecp5":  # a CCU2C carry cell holds two LUT4s
        out["lut"] += cells.get("CCU2C", 0)
    if flow == "ice40":
        out["ff"] = sum(n for c, n in cells.items() if c.startswith("SB_DFF"))
    return out


def synthesize_yosys(sources: list[Path], top: str, target: Target, work: Path, nodsp: bool = False,
                     timeout: float | None = None) -> tuple[dict[str, int], dict[str, int], Path, Path]:
    """Run yosys (for at most ``timeout`` s, default an hour); return (resources, raw cell counts, netlist JSON path, log path)."""
    work.mkdir(parents=True, exist_ok=True)
    # YoWASP's WebAssembly yosys sees only its working directory: copy sources in, use relative paths.
    src_dir = work / "src"
    src_dir.mkdir(exist_ok=True)
    rel = []
    for p in sources:
        (src_dir / p.name).write_text(Path(p).read_text())
        rel.append(f"src/{p.name}")
    netlist = work / "netlist.json"
    stat = work / "stat.json"
    reads = "; ".join(f"read_verilog -sv {p}" for p in rel)
    if target.flow == "xilinx":
        synth = f"synth_xilinx -flatten -family {target.family} -top {top}"
    elif target.flow == "ecp5":
        synth = f"synth_ecp5 -top {top} -json netlist.json"
    else:
        synth = f"synth_ice40 -top {top} -json netlist.json"
    if nodsp:
        synth += " -nodsp"
    script = f"{reads}; {synth}; tee -q -o stat.json stat -json"
    log = work / "yosys.log"
    run_tool("yosys", ["-q", "-l", "yosys.log", "-p", script], cwd=work, log=work / "yosys.run.log", timeout=timeout or 3600)
    data = json.loads(stat.read_text())
    mod = data.get("design") or next(iter(data["modules"].values()))
    cells = {k: int(v) for k, v in mod.get("num_cells_by_type", {}).items()}
    return count_resources(cells, target.flow), cells, netlist, log

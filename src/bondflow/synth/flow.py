"""Synthesis flow: yosys (+ nextpnr and a real bitstream for Lattice), Vivado scripts; cached by digest."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codegen.render import header, render
from ..design import Design
from ..errors import DesignError, DoesNotFitError, ToolNotFoundError
from ..fsutil import atomic_write_text
from ..progress import follow_file, get_reporter
from ..tools import tool_version
from .nextpnr import place_and_route
from .targets import TARGETS, Target, get_target
from .vivado import has_vivado, run_vivado, write_vivado_scripts
from .yosys import synthesize_yosys

if TYPE_CHECKING:
    from ..progress import Task

__all__ = ["SynthReport", "synthesize", "LFSR_BITS", "check_fit_from_lut6"]

LFSR_BITS = 32


@dataclass(frozen=True)
class SynthReport:
    """Resources, timing and artifacts of one synthesis of one design on one target."""

    design_digest: str
    arch: str
    target: str
    family: str
    tool: str
    tool_versions: dict[str, str]
    lut: int
    ff: int
    dsp: int
    bram: int
    cells: dict[str, int]
    utilization_pct: dict[str, float]
    clock_mhz: float
    fmax_mhz: float | None = None
    timing_met: bool | None = None
    placed: bool = False
    bitstream: str | None = None
    bitstream_bytes: int | None = None
    vivado_scripts: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    cached: bool = False
    note: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def summary(self) -> str:
        s = [f"{self.arch} on {self.target} ({self.tool}{', cached' if self.cached else ''}): LUT {self.lut}, FF {self.ff}, "
             f"DSP {self.dsp}, BRAM {self.bram}  ({', '.join(f'{k} {v:.1f}%' for k, v in self.utilization_pct.items())})"]
        if self.fmax_mhz is not None:
            s.append(f"  fmax {self.fmax_mhz:.1f} MHz vs {self.clock_mhz:g} MHz target: {'met' if self.timing_met else 'NOT met'}")
        if self.bitstream:
            s.append(f"  bitstream {self.bitstream} ({self.bitstream_bytes:,} bytes)")
        if self.vivado_scripts:
            s.append(f"  Vivado scripts: {', '.join(self.vivado_scripts)}")
        if self.note:
            s.append(f"  note: {self.note}")
        s.append(f"  wall {self.wall_seconds:.1f} s")
        return "\n".join(s)


def _harness(design: Design) -> str:
    """The pin-light LFSR harness used for place and route (see hdl_templates/synth/bitstream_top.v.j2)."""
    iface = design.interface
    in_bits, out_bits = iface.input.tdata_bits, iface.output.tdata_bits
    assigns = [f"assign tdata[{i}] = lfsr[{i % LFSR_BITS}] ^ lfsr[{(7 * i + 3) % LFSR_BITS}];" for i in range(in_bits)]
    return render("synth/bitstream_top.v.j2", header=header(design.arch, design.graph_digest), lfsr_bits=LFSR_BITS,
                  in_bits=in_bits, out_bits=out_bits, in_assigns=assigns)


def check_fit_from_lut6(lut6: int, source: str, t: Target) -> None:
    """Refuse a 4-input-LUT part when a 6-input-LUT synthesis of the same design already needs more LUTs.

    Any LUT4 netlist is also a LUT6 netlist, so the LUT6 count bounds the LUT4 count from below (DSPs and
    carry cells only make the bound more conservative); this saves an hour of yosys on the larger examples.
    """
    if t.flow in ("ecp5", "ice40") and lut6 > t.luts:
        raise DoesNotFitError(f"design must fit {t.name}, not need at least {lut6} LUTs (its {source} synthesis used "
                              f"{lut6} 6-input LUTs; the part has {t.luts} 4-input LUTs, {100 * lut6 / t.luts - 100:.0f}% over)")


def _known_lut6(root: Path, digest: str) -> tuple[int, str] | None:
    """The largest 6-input-LUT count among cached reports of this design (same digest) under ``root``."""
    best = None
    for p in root.glob("*/synth_report.json"):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if d.get("design_digest") == digest and getattr(TARGETS.get(d.get("target")), "flow", None) == "xilinx" \
                and (best is None or d["lut"] > best[0]):
            best = (int(d["lut"]), d["target"])
    return best


def synthesize(design: Design | str | Path, target: str, clock_mhz: float | None = None, bitstream: bool = False,
               out: str | Path | None = None, vivado: bool = False, force: bool = False,
               timeout: float | None = None, router: str | None = None) -> SynthReport:
    """Synthesize ``design`` for ``target``; results are cached under ``<out>/<key>/`` (default: the design dir's synth/).

    ``timeout`` bounds each yosys run and nextpnr (ToolTimeoutError past it; default an hour for yosys, two for nextpnr).
    ``router``: nextpnr's router for Lattice targets (None: nextpnr's default; "router2" for big designs).
    """
    t: Target = get_target(target)
    design_dir = None
    if not isinstance(design, Design):
        design_dir = Path(design)
        design = Design.load(design_dir)
    if design.language != "verilog":
        raise DesignError(f"design must be Verilog to synthesize with yosys, not '{design.language}' ({design.arch}); "
                          "hls4ml projects need Vitis HLS (bondflow generate --arch hls4ml --synth)")
    clock = float(clock_mhz or t.clock_mhz)
    tools = ["yosys"] + ([f"nextpnr-{t.flow}", "ecppack" if t.flow == "ecp5" else "icepack"] if bitstream and t.flow != "xilinx" else [])
    versions = {n: tool_version(n) or "missing" for n in tools}
    key_parts: list[Any] = [design.digest(), t.name, clock, bitstream, versions] + ([router] if router else [])
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(out) if out else (design_dir / "synth" if design_dir else Path("synth_build"))
    work = root / f"{t.name}-{key}"
    cached = work / "synth_report.json"
    if cached.exists() and not force and not vivado:
        d = json.loads(cached.read_text())
        d["cached"] = True
        return SynthReport(**d)
    if bitstream and t.flow == "xilinx" and not vivado:
        raise ToolNotFoundError("vivado", f"AMD Vivado; Xilinx bitstreams need it (use --vivado), target {t.name} gets yosys estimates without it")
    mults = int(design.info.get("multipliers", 0) or 0)
    if mults > t.luts + t.dsps:  # every multiplier needs a DSP or at least one LUT: refuse before a long run
        raise DoesNotFitError(f"design must fit {t.name}, not need at least {mults} multipliers "
                              f"(the part has {t.luts} LUTs and {t.dsps} DSPs); use a reuse factor or a larger part")
    # only the LUT4 parts can be refused this way, so only they read the other reports
    known = _known_lut6(root, design.digest()) if t.flow in ("ecp5", "ice40") and root.is_dir() else None
    if known:
        check_fit_from_lut6(known[0], known[1], t)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with get_reporter().task(f"synthesize {design.arch} for {t.name}", 4 if place_route(t, bitstream) else 1,
                             "phases") as bar:
        return _run(design, design_dir, t, clock, bitstream, vivado, versions, work, cached, bar, timeout, router)


def place_route(t: Target, bitstream: bool) -> bool:
    """Whether a synthesis for ``t`` places, routes and writes a bitstream (ECP5 and iCE40 with ``bitstream``)."""
    return bitstream and t.flow in ("ecp5", "ice40")


def _run(design: Design, design_dir: Path | None, t: Target, clock: float, bitstream: bool, vivado: bool,
         versions: dict[str, str], work: Path, cached: Path, bar: Task, timeout: float | None = None,
         router: str | None = None) -> SynthReport:
    """The uncached synthesis into ``work``; ``bar`` hears each phase (yosys, place, route, bitstream)."""
    t0 = time.monotonic()
    src_dir = work / "rtl"
    src_dir.mkdir()
    sources = []
    for rel in design.rtl_files:
        p = src_dir / Path(rel).name
        p.write_text(design.files[rel])
        sources.append(p)
    top = design.top
    note = ""
    place = place_route(t, bitstream)
    if place and design.top != "bondflow_top":
        raise DesignError(f"bitstream harness must wrap the stream shell bondflow_top, not {design.top} "
                          "(synthesize the kernel for resource figures without --bitstream)")
    if place:
        h = src_dir / "bondflow_bitstream_top.v"
        h.write_text(_harness(design))
        sources.append(h)
        top = "bondflow_bitstream_top"
        note = f"placed with a pin-light harness ({LFSR_BITS}-bit LFSR inputs, XOR-folded outputs) included in the counts"
    bar.start_phase("yosys synth")
    res, cells, netlist, ylog = _yosys(sources, top, t, work / "yosys", bar, timeout=timeout)
    pct = {k: round(100.0 * res[k] / cap, 2) for k, cap in (("lut", t.luts), ("ff", t.ffs), ("dsp", t.dsps), ("bram", t.brams)) if cap}
    over = {k: v for k, v in pct.items() if v > 100}
    if set(over) == {"dsp"}:  # more constant multipliers than DSP blocks: build them from LUTs, as vendor tools do
        bar.extend()
        bar.start_phase("yosys synth, multipliers in LUTs")
        res, cells, netlist, ylog = _yosys(sources, top, t, work / "yosys", bar, nodsp=True, timeout=timeout)
        pct = {k: round(100.0 * res[k] / cap, 2) for k, cap in (("lut", t.luts), ("ff", t.ffs), ("dsp", t.dsps), ("bram", t.brams)) if cap}
        over = {k: v for k, v in pct.items() if v > 100}
        hint = "; dataflow's --multipliers auto fits them to the part" if design.arch == "dataflow" else ""
        note = (note + "; " if note else "") + f"multipliers in LUTs (they need more than the {t.dsps} DSP blocks{hint})"
    report: dict[str, Any] = dict(design_digest=design.digest(), arch=design.arch, target=t.name, family=t.family,
                                  tool="yosys" + ("+nextpnr" if place else ""), tool_versions=versions, lut=res["lut"],
                                  ff=res["ff"], dsp=res["dsp"], bram=res["bram"], cells=cells, utilization_pct=pct,
                                  clock_mhz=clock, logs={"yosys": str(ylog)}, note=note)
    
    if over and place:  # refuse before a long place and route
        k, v = next(iter(over.items()))
        raise DoesNotFitError(f"design must fit {t.name}, not need {res[k]} {k.upper()} of {getattr(t, k + 's')} ({v - 100:.0f}% over)")
    if place:
        pnr = place_and_route(work / "yosys" / "netlist.json", t, clock, work / "yosys", on_phase=bar.start_phase,
                              timeout=timeout, router=router)
        report.update(fmax_mhz=pnr["fmax_mhz"], timing_met=(pnr["fmax_mhz"] or 0) >= clock, placed=True,
                      bitstream=pnr["bitstream"], bitstream_bytes=pnr["bitstream_bytes"])
        report["logs"]["nextpnr"] = pnr["log"]
    if t.flow == "xilinx":
        rtl_names = [f"rtl/{Path(r).name}" for r in design.rtl_files]
        scripts = write_vivado_scripts(rtl_names, t, clock, work, design.digest(), design.top,
                                       str(design.info.get("clock_port", "clk")))
        report["vivado_scripts"] = [str(s) for s in scripts]
        if vivado:
            if not has_vivado():
                raise ToolNotFoundError("vivado", f"AMD Vivado; the scripts are written: cd {work} && vivado -mode batch -source ooc.tcl")
            bar.extend()
            bar.start_phase("vivado")
            v = run_vivado(scripts[0], work)
            report.update(tool="vivado", lut=v["resources"]["lut"], ff=v["resources"]["ff"], dsp=v["resources"]["dsp"],
                          bram=v["resources"]["bram"], timing_met=v["timing_met"])
            report["logs"]["vivado"] = v["log"]
        elif not report["note"]:
            report["note"] = f"yosys estimates; run Vivado with: cd {work} && vivado -mode batch -source ooc.tcl"
    report["wall_seconds"] = round(time.monotonic() - t0, 2)
    atomic_write_text(cached, json.dumps(report, indent=1))
    if design_dir is not None:
        atomic_write_text(design_dir / "synth_report.json", json.dumps(report, indent=1))
    return SynthReport(**report)


#: A yosys log section such as "6.23. Executing ABC pass (technology mapping using ABC)." names the pass running now.
_YOSYS_PASS = re.compile(r"^\d+(?:\.\d+)*\. Executing (.+?)(?: pass)?[.:]? ?(?:\(|$)")


def _yosys(sources: list[Path], top: str, t: Target, work: Path, bar: Task, nodsp: bool = False,
           timeout: float | None = None) -> Any:
    """synthesize_yosys; on a terminal the bar names the yosys pass running (runs on big designs take an hour)."""
    if get_reporter().mode != "rich":  # a log line per pass would be thousands of lines; only a bar can show them
        return synthesize_yosys(sources, top, t, work, nodsp=nodsp, timeout=timeout)

    def show(line: str) -> None:
        m = _YOSYS_PASS.match(line)
        if m:
            bar.note(m.group(1))
    with follow_file(work / "yosys.log", show):
        return synthesize_yosys(sources, top, t, work, nodsp=nodsp, timeout=timeout)

"""nextpnr place and route (ECP5, iCE40) and ecppack / icepack bitstreams; fmax from the JSON report."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..progress import follow_file
from ..tools import run_tool
from .targets import Target

__all__ = ["place_and_route", "BITSTREAM_MAGIC"]

#: Sync words inside the first bytes of a real bitstream (after the comment preamble 0xFF 0x00 ... 0x00 0xFF).
BITSTREAM_MAGIC = {"ecp5": b"\xff\xff\xbd\xb3", "ice40": b"\x7e\xaa\x99\x7e"}


def place_and_route(netlist: Path, target: Target, clock_mhz: float, work: Path, seed: int = 1,
                    on_phase: Callable[[str], None] = lambda _: None, timeout: float | None = None,
                    router: str | None = None) -> dict[str, Any]:
    """P&R the yosys JSON netlist (relative paths: YoWASP sees only ``work``); return fmax, utilisation, bitstream.

    ``router`` picks nextpnr's router (None: its default, router1 for ECP5; router2 routes big congested designs
    far faster: a jet-tagger-sized ECP5 design did not converge in router1).

    ``on_phase`` hears "place" (packing included), "route" and "bitstream" as nextpnr and the packer reach them.
    """
    report = "pnr_report.json"
    # A missed clock target is a result to report (fmax, timing_met), not a failure: keep the bitstream.
    # nextpnr writes its --log as it goes (run_tool's log comes at the end): following it tells placement from routing.
    common = ["--json", netlist.name, "--report", report, "--freq", f"{clock_mhz:g}", "--seed", str(seed),
              "--timing-allow-fail", "--log", "nextpnr.live.log"] + (["--router", router] if router else [])
    (work / "nextpnr.live.log").unlink(missing_ok=True)
    seen: set[str] = set()

    def phase(line: str) -> None:
        if line.startswith("Info: Routing") and "route" not in seen:
            seen.add("route")
            on_phase("route")
    on_phase("place")
    if target.flow == "ecp5":
        args = [f"--{target.part}", "--package", target.package, "--textcfg", "design.config",
                "--lpf-allow-unconstrained"] + common
        with follow_file(work / "nextpnr.live.log", phase):
            run_tool("nextpnr-ecp5", args, cwd=work, log=work / "nextpnr.log", timeout=timeout or 7200)
        bit = work / "design.bit"
        on_phase("bitstream")
        run_tool("ecppack", ["design.config", bit.name], cwd=work, log=work / "ecppack.log", timeout=600)
    else:
        args = [f"--{target.part}", "--package", target.package, "--asc", "design.asc", "--pcf-allow-unconstrained"] + common
        with follow_file(work / "nextpnr.live.log", phase):
            run_tool("nextpnr-ice40", args, cwd=work, log=work / "nextpnr.log", timeout=timeout or 7200)
        bit = work / "design.bin"
        on_phase("bitstream")
        run_tool("icepack", ["design.asc", bit.name], cwd=work, log=work / "icepack.log", timeout=600)
    rep = json.loads((work / report).read_text())
    fmax = {k: v.get("achieved") for k, v in rep.get("fmax", {}).items()}
    util = {k: {"used": v.get("used"), "available": v.get("available")} for k, v in rep.get("utilization", {}).items()}
    return {"fmax_mhz": min(fmax.values()) if fmax else None, "fmax_by_clock": fmax, "utilization": util,
            "bitstream": str(bit), "bitstream_bytes": bit.stat().st_size, "log": str(work / "nextpnr.log")}

"""FPGA targets bondflow can synthesize for: family, part, package, capacities and default clock."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Target", "TARGETS", "get_target"]


@dataclass(frozen=True)
class Target:
    """One device. ``flow`` is 'xilinx' (yosys estimates; Vivado when present) or 'ecp5'/'ice40' (real bitstreams)."""

    name: str
    board: str
    flow: str
    family: str  # yosys synth_xilinx -family, or the Lattice family
    part: str  # Vivado part, or nextpnr device flag
    package: str
    luts: int
    ffs: int
    dsps: int
    brams: int
    clock_mhz: float


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("xc7z020", "PYNQ-Z2", "xilinx", "xc7", "xc7z020clg400-1", "clg400", 53_200, 106_400, 220, 140, 100.0),
    Target("xczu9eg", "ZCU102", "xilinx", "xcup", "xczu9eg-ffvb1156-2-e", "ffvb1156", 274_080, 548_160, 2_520, 912, 200.0),
    Target("xcu250", "Alveo U250", "xilinx", "xcup", "xcu250-figd2104-2L-e", "figd2104", 1_728_000, 3_456_000, 12_288, 2_688, 300.0),
    Target("xcvu9p", "AWS F1 (VU9P)", "xilinx", "xcup", "xcvu9p-flgb2104-2-i", "flgb2104", 1_182_240, 2_364_480, 6_840, 2_160, 250.0),
    Target("ecp5-25k", "ECP5 25k (e.g. ULX3S-25F)", "ecp5", "ecp5", "25k", "CABGA256", 24_288, 24_288, 28, 56, 50.0),
    Target("ecp5-85k", "ECP5 85k (e.g. ULX3S-85F)", "ecp5", "ecp5", "85k", "CABGA381", 83_640, 83_640, 156, 208, 50.0),
    Target("ice40-up5k", "iCE40 UltraPlus 5k (iCEBreaker)", "ice40", "ice40", "up5k", "sg48", 5_280, 5_280, 8, 30, 12.0),
    Target("ice40-hx8k", "iCE40 HX8K", "ice40", "ice40", "hx8k", "ct256", 7_680, 7_680, 0, 32, 12.0),
)}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ConfigError(f"target must be one of {', '.join(TARGETS)}, not {name!r}") from None

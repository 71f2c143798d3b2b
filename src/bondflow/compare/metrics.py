"""Figures a user chooses by: clock, latency in ns, throughput, utilisation of the part and fit, from measured cycles and resources."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ..synth.targets import Target

__all__ = ["DesignMetrics", "metrics_for", "RESOURCES"]

RESOURCES = ("lut", "ff", "dsp", "bram")


@dataclass(frozen=True)
class DesignMetrics:
    """Derived figures of one design on one part; ``clock_source`` says where the clock came from."""

    clock_mhz: float | None
    clock_source: str  # "placed and routed", "assumed (--clock-mhz)", "assumed (target default)"
    latency_ns: float | None
    throughput_per_s: float | None
    util_lut: float | None  # % of the part
    util_ff: float | None
    util_dsp: float | None
    util_bram: float | None
    fits: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _capacity(target: Target, res: str) -> int:
    return {"lut": target.luts, "ff": target.ffs, "dsp": target.dsps, "bram": target.brams}[res]


def metrics_for(result: Mapping[str, Any], target: Target, clock_mhz: float | None = None) -> DesignMetrics:
    """Figures of a result (a compare ArchResult as a dict) on ``target``.

    The clock is the placed-and-routed fmax where nextpnr measured one (ECP5/iCE40); Xilinx parts have no
    timing from yosys, so the user's ``clock_mhz`` (or the target's default) is used and marked assumed.
    A resource the part has none of (iCE40 HX DSPs) fits only when the design uses none.
    """
    fmax = result.get("fmax_mhz")
    if fmax:
        clock, source = float(fmax), "placed and routed"
    elif clock_mhz:
        clock, source = float(clock_mhz), "assumed (--clock-mhz)"
    else:
        clock, source = float(target.clock_mhz), "assumed (target default)"
    lat, ii = result.get("latency_cycles"), result.get("ii_cycles")
    util: dict[str, float | None] = {}
    over, missing = False, False
    for r in RESOURCES:
        used, cap = result.get(r), _capacity(target, r)
        if used is None:
            util[r], missing = None, True
            continue
        util[r] = 100.0 * used / cap if cap else (0.0 if used == 0 else float("inf"))
        over = over or used > cap
    fits = False if over else (None if missing else True)  # unmeasured resources: fit unknown, never assumed
    return DesignMetrics(clock_mhz=clock, clock_source=source,
                         latency_ns=None if lat is None else 1000.0 * float(lat) / clock,
                         throughput_per_s=None if not ii else clock * 1e6 / float(ii),
                         util_lut=util["lut"], util_ff=util["ff"], util_dsp=util["dsp"], util_bram=util["bram"], fits=fits)

"""Choosing a design from a compare report under the user's constraints: fit, latency, throughput, then an objective."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NoDesignError
from ..synth.targets import get_target
from .metrics import DesignMetrics, metrics_for

__all__ = ["Constraints", "Choice", "choose", "load_report", "OBJECTIVES", "REPORT_VERSION"]

#: results.json format that carries everything choose needs (status, bit_exact, cycles, resources, fmax, target).
REPORT_VERSION = 2
#: objective -> (what it reads, whether larger is better)
OBJECTIVES: dict[str, tuple[str, bool]] = {
    "lut": ("lut", False), "ff": ("ff", False), "dsp": ("dsp", False), "bram": ("bram", False),
    "latency": ("latency_ns", False), "throughput": ("throughput_per_s", True), "util": ("max_util", False),
}


@dataclass(frozen=True)
class Constraints:
    """What the user asks for; None means no limit."""

    fit: str | None = None
    max_latency_ns: float | None = None
    min_throughput: float | None = None
    objective: str = "lut"
    clock_mhz: float | None = None

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        for name, v in (("--max-latency-ns", self.max_latency_ns), ("--min-throughput", self.min_throughput),
                        ("--clock-mhz", self.clock_mhz)):
            if v is not None and not v > 0:
                raise ConfigError(f"{name} must be a positive number, not {v}")

    def describe(self) -> str:
        parts = [f"fits {self.fit}" if self.fit else "", f"latency <= {self.max_latency_ns:g} ns" if self.max_latency_ns else "",
                 f"throughput >= {self.min_throughput:g}/s" if self.min_throughput else ""]
        return ", ".join(p for p in parts if p) or "no constraints"


@dataclass(frozen=True)
class Candidate:
    label: str
    arch: str
    result: dict[str, Any]
    metrics: DesignMetrics

    def value(self, objective: str) -> float:
        key, _ = OBJECTIVES[objective]
        if key == "max_util":
            vals = [v for v in (self.metrics.util_lut, self.metrics.util_ff, self.metrics.util_dsp, self.metrics.util_bram) if v is not None]
            return max(vals) if vals else float("inf")
        v = getattr(self.metrics, key, None) if hasattr(self.metrics, key) else self.result.get(key)
        return float("inf") if v is None else float(v)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "arch": self.arch, "options": self.result.get("options"),
                "design_digest": self.result.get("design_digest"), "latency_cycles": self.result.get("latency_cycles"),
                "ii_cycles": self.result.get("ii_cycles"), **{r: self.result.get(r) for r in ("lut", "ff", "dsp", "bram")},
                **self.metrics.to_dict()}


@dataclass(frozen=True)
class Choice:
    """The chosen design, why, the runners-up in order, and why every other design was excluded."""

    chosen: Candidate
    why: str
    runners_up: tuple[Candidate, ...]
    excluded: dict[str, str] = field(default_factory=dict)
    constraints: Constraints = Constraints()
    target: str = ""

    def to_dict(self) -> dict[str, Any]:
        c = self.constraints
        return {"chosen": self.chosen.to_dict(), "why": self.why, "target": self.target,
                "constraints": {"fit": c.fit, "max_latency_ns": c.max_latency_ns, "min_throughput": c.min_throughput,
                                "objective": c.objective, "clock_mhz": c.clock_mhz},
                "runners_up": [r.to_dict() for r in self.runners_up], "excluded": self.excluded}


def load_report(report_dir: Path) -> dict[str, Any]:
    """results.json of a compare run, refused in one line when missing or from an older bondflow."""
    p = Path(report_dir) / "results.json"
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"report directory must hold results.json (from bondflow compare), not lack it: {report_dir}") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p} must be JSON written by bondflow compare, not unreadable ({type(e).__name__})") from None
    if not isinstance(d, dict) or d.get("version") != REPORT_VERSION:
        got = d.get("version", 1) if isinstance(d, dict) else "?"
        raise ConfigError(f"{p} must be a version {REPORT_VERSION} report, not version {got}: rerun bondflow compare "
                          "into the same directory (finished steps resume)")
    return d


def _why_out(c: Candidate, k: Constraints, fit_name: str) -> str | None:
    r, m = c.result, c.metrics
    if r.get("status") == "refused":
        return "refused: the architecture cannot build this model"
    if r.get("status") != "ok":
        return f"failed in {r.get('failed_step')}"
    if not r.get("bit_exact"):
        return "not bit-exact with the golden model"
    if m.fits is None:
        return f"resources not measured for {fit_name}"
    if not m.fits:
        over = [f"{n.upper()} {v:.0f} %" for n, v in (("lut", m.util_lut), ("ff", m.util_ff), ("dsp", m.util_dsp),
                                                       ("bram", m.util_bram)) if v is not None and v > 100]
        return f"does not fit {fit_name} ({', '.join(over)})"
    if k.max_latency_ns is not None and (m.latency_ns is None or m.latency_ns > k.max_latency_ns):
        return f"latency {m.latency_ns:.0f} ns > {k.max_latency_ns:g} ns" if m.latency_ns is not None else "latency not measured"
    if k.min_throughput is not None and (m.throughput_per_s is None or m.throughput_per_s < k.min_throughput):
        return (f"throughput {m.throughput_per_s:.3g}/s < {k.min_throughput:g}/s" if m.throughput_per_s is not None
                else "throughput not measured")
    return None


def choose(report: dict[str, Any], k: Constraints) -> Choice:
    """Apply the constraints in order (working, bit-exact, fit, latency, throughput), then rank by the objective;
    ties go to lower latency, then fewer LUTs, then the label. NoDesignError names what excluded each design."""
    measured_on = get_target(report["target"])
    fit = get_target(k.fit) if k.fit else measured_on
    if fit.flow != measured_on.flow and {fit.flow, measured_on.flow} & {"xilinx"}:
        raise ConfigError(f"--fit must be a part of the family the report measured ({measured_on.name}, {measured_on.flow}), "
                          f"not {fit.name} ({fit.flow}): LUT counts of different families are not comparable")
    k = replace(k, fit=fit.name)  # the fit is always checked: the report's own target when none is named
    cands = [Candidate(r.get("label") or r["arch"], r["arch"], r, metrics_for(r, fit, k.clock_mhz)) for r in report["results"]]
    excluded: dict[str, str] = {}
    ok = []
    for c in cands:
        why = _why_out(c, k, fit.name)
        if why:
            excluded[c.label] = why
        else:
            ok.append(c)
    if not ok:
        raise NoDesignError(f"no design meets {k.describe()}: " + "; ".join(f"{lab}: {w}" for lab, w in excluded.items()))
    _, larger = OBJECTIVES[k.objective]
    sign = -1 if larger else 1
    ok.sort(key=lambda c: (sign * c.value(k.objective), c.value("latency"), c.value("lut"), c.label))
    best = ok[0]
    unit = {"latency": " ns", "throughput": "/s", "util": " % (largest resource share)"}.get(k.objective, "")
    why = (f"{len(ok)} of {len(cands)} designs meet {k.describe()}; {best.label} has the "
           f"{'highest' if larger else 'lowest'} {k.objective} ({best.value(k.objective):,.4g}{unit})")
    if len(ok) > 1 and ok[1].value(k.objective) == best.value(k.objective):
        why += f", tied with {ok[1].label}: lower latency, then fewer LUTs, then name decided"
    return Choice(best, why, tuple(ok[1:]), excluded, k, fit.name)

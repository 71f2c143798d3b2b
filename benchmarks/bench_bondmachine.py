"""The real BondMachine per example: CPs, tool times, its simulator's agreement and ticks, RTL clocks vs moldable (same run)."""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# moldable (cores, lanes) compared per example (those of benchmarks/results/moldable.json, plus iris 16 and 16x4).
MOLDABLE = {"iris": ((4, 1), (16, 1), (16, 4)), "jet_tagger": ((8, 1), (32, 1), (32, 4))}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _resources(design_dir: Path, target: str | None) -> dict[str, Any] | None:
    """yosys LUT/FF/DSP of a design on ``target`` (None: not measured)."""
    if not target:
        return None
    from bondflow.synth.flow import synthesize
    r = synthesize(design_dir, target)
    return {"target": target, "lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram": r.bram, "seconds": r.wall_seconds}


def bench_example(ex: str, nt: str, a: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import bondflow
    from bondflow.bondmachine.bmsim import bm_ticks, cross_check
    from bondflow.bondmachine.numbers import parse_number_type
    from bondflow.bondmachine.numerics import input_to_bm
    from bondflow.codegen.base import generate
    from bondflow.sim.runner import simulate
    g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
    data = np.load(ROOT / "examples" / ex / "data.npz")["x_test"]
    t0 = time.monotonic()
    d = generate(g, "bondmachine", number_type=nt, workdir=str(tmp))
    row: dict[str, Any] = {"example": ex, "number_type": nt, "connecting_processors": d.info["connecting_processors"],
                           "bonds": d.info["bonds"], "generate_seconds": round(time.monotonic() - t0, 2),
                           **{f"{s['tool']}_seconds": s["seconds"] for s in d.info["tool_steps"]}}
    print(json.dumps(row), flush=True)
    # BondMachine's own simulator: ticks until every output is valid, on a few real samples (branch-free code:
    # the count should not depend on the data; min and max show whether it does).
    ntype = parse_number_type(nt)
    bm = tmp / f"{ex}-bondmachine.json"
    bm.write_text(d.files["bondmachine/bondmachine.json"])
    from bondflow.sim.vectors import make_vectors
    tv = make_vectors(g, a.tick_vectors, 0, data, "golden")
    x_bm = input_to_bm(tv.inputs, g.input.type, ntype)
    ticks = [max(bm_ticks(bm, r, ntype.prefix, int(ntype.frac), tmp)) for r in x_bm]
    row.update(sim_ticks_per_inference=max(ticks), sim_ticks_min=min(ticks), sim_tick_vectors=len(ticks))
    if a.cross_check:
        t0 = time.monotonic()
        r = cross_check(d, vectors=a.cross_check, data=data, ticks=max(ticks) + 50)
        row.update(bm_sim_agree=r.agree, bm_sim_vectors=r.vectors, cross_check_seconds=round(time.monotonic() - t0, 1))
    print(json.dumps(row), flush=True)
    if a.sim:
        # RTL clocks (bondflow's wrapper included) and the moldable reference, same simulator, same run.
        r = simulate(d.write(tmp / f"{ex}-bm"), vectors=a.sim, simulator=a.simulator, data=data)
        row.update(rtl_vectors=r.vectors, rtl_mismatches=r.mismatches, rtl_latency_cycles=r.latency_cycles,
                   rtl_ii_cycles=r.ii_cycles)
        bm_res = _resources(tmp / f"{ex}-bm", a.synth)
        row["rtl_resources"] = bm_res
        for c, lanes in MOLDABLE.get(ex, ()):
            key = f"moldable_cores{c}" + (f"_lanes{lanes}" if lanes > 1 else "")
            mdir = bondflow.generate(g, "moldable", cores=c, lanes=lanes).write(tmp / f"{ex}-{key}")
            m = simulate(mdir, vectors=a.sim, simulator=a.simulator, data=data)
            res = _resources(mdir, a.synth)
            row[key] = {"bit_exact": m.passed, "latency_cycles": m.latency_cycles, "ii_cycles": m.ii_cycles,
                        "bm_rtl_latency_ratio": _ratio(r.latency_cycles, m.latency_cycles),
                        "bm_rtl_ii_ratio": _ratio(r.ii_cycles, m.ii_cycles),
                        "bm_sim_ticks_ratio": _ratio(max(ticks), m.latency_cycles), "resources": res,
                        "bm_lut_ratio": _ratio(bm_res["lut"], res["lut"]) if bm_res and res else None}
            print(json.dumps(row), flush=True)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--examples", default="iris", help="comma list of examples/<name>")
    p.add_argument("--types", default="fps16f10", help="comma list of number types")
    p.add_argument("--tick-vectors", type=int, default=5, help="samples whose simulator ticks are measured")
    p.add_argument("--cross-check", type=int, default=30, help="vectors compared with bondmachine -sim (0: none)")
    p.add_argument("--sim", type=int, default=0, help="vectors to RTL-simulate, with the moldable reference (0: none)")
    p.add_argument("--simulator", default="icarus")
    p.add_argument("--synth", default=None, help="also yosys resources of every design on this target (e.g. xc7z020)")
    p.add_argument("--tools-origin", default="", help="how the Go tools were obtained, recorded verbatim")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bondmachine.json"))
    a = p.parse_args()
    from bondflow.bondmachine.toolchain import BM_PIN, TOOLS_MISSING, missing_tools
    from bondflow.tools import find_tool
    if missing_tools():
        print(f"skipped: {TOOLS_MISSING}")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-bm-") as tmp:
        for ex in a.examples.split(","):
            for nt in a.types.split(","):
                rows.append(bench_example(ex, nt, a, Path(tmp)))
    out = {"benchmark": "bondmachine", "machine": platform.machine(), "python": platform.python_version(),
           "bm_pin": BM_PIN, "tools": {t: str(find_tool(t)) for t in ("neuralbond", "basm", "bondmachine")},
           "tools_origin": a.tools_origin, "simulator": a.simulator,
           "notes": ["sim_ticks: bondmachine -sim ticks until every output is valid (1 tick = 1 instruction per CP, "
                     "multi-cycle ops count 1); rtl_*: clock cycles of the wrapped design (one sample in flight)",
                     "ratios: BondMachine / moldable, measured in this run with the same simulator"],
           "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""dataflow's multiplier modes (lut, dsp, auto) vs da4ml vs hls4ml's published figures, one run, same yosys script.

Per example and design: generation time, latency (cycles, II 1), yosys xc7z020 LUT/FF/DSP, and ECP5 fmax placed and
routed by nextpnr (ecp5-85k); ratios against the da4ml row measured in the same run. hls4ml's rows are published
Vivado HLS estimates of similar (not identical) models, quoted from ../shared/notes/hls4ml_and_peers.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.errors import BondflowError  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGE_ADDERS = 5  # the same stage depth for da4ml and dataflow lut
DESIGNS: dict[str, tuple[str, dict[str, Any]]] = {
    "da4ml": ("da4ml", {"stage_adders": STAGE_ADDERS}),
    "dataflow lut": ("dataflow", {"multipliers": "lut", "stage_adders": STAGE_ADDERS}),
    "dataflow dsp": ("dataflow", {"multipliers": "dsp"}),
    "dataflow auto": ("dataflow", {"multipliers": "auto", "target": "xc7z020"}),
}
#: Published hls4ml figures (Vivado/Vitis HLS estimates, RF 1, latency strategy): not this run, not this flow.
HLS4ML_PUBLISHED = {
    "iris": {"model": "Iris 4-8-8-3 + softmax, ap_fixed<16,6> (ours: 4-16-8-3, 8-bit)", "part": "xc7z020 @5 ns",
             "latency_cycles": 32, "lut": 4725, "ff": 13240, "dsp": 110,
             "source": "github.com/Thifjj/Iris_hls4ml_pynqZ2 myproject_csynth.rpt (Vitis HLS 2025.1)"},
    "jet_tagger": {"model": "jet tagger 16-64-32-32-5, ap_fixed<16,6> (ours: 6-bit weights)", "part": "xcu250 @5 ns",
                   "latency_cycles": 12, "lut": 109753, "ff": 12562, "dsp": 2118,
                   "source": "github.com/Liu-Zhiheng/hls4ml-pynqz2-vivado2019-2-results RESULTS_VIVADO2019_2.md"},
}


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's figures over the da4ml row of the same example (this run)."""
    ref = {r["example"]: r for r in rows if r["design"] == "da4ml" and "lut" in r}
    for r in rows:
        base = ref.get(r["example"])
        if base is None or r["design"] == "da4ml":
            continue
        r["vs_da4ml"] = {k: round(r[k] / base[k], 3) for k in ("lut", "ff", "latency_cycles", "fmax_ecp5_mhz")
                         if r.get(k) is not None and base.get(k)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", default="iris,jet_tagger")
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--no-synth", action="store_true", help="latency and generation time only")
    ap.add_argument("--ecp5", default="iris", help="examples also placed and routed on ecp5-85k for fmax ('' for none)")
    a = ap.parse_args()
    rows: list[dict[str, Any]] = []
    ecp5 = set(filter(None, a.ecp5.split(",")))
    with tempfile.TemporaryDirectory(prefix="bench-arith-") as tmp:
        for ex in a.examples.split(","):
            g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
            for name in a.designs.split(","):
                arch, opts = DESIGNS[name]
                t0 = time.perf_counter()
                d = bondflow.generate(g, arch, **opts)
                row: dict[str, Any] = {"example": ex, "design": name, "arch": arch, "options": opts, "digest": d.digest(),
                                       "generate_seconds": round(time.perf_counter() - t0, 2),
                                       "latency_cycles": d.latency_cycles, "ii_cycles": d.ii_cycles,
                                       "core_latency": d.info.get("core_latency")}
                if arch == "dataflow":
                    row["layer_multipliers"] = d.info.get("layer_multipliers")
                    row["dsp_estimate"] = d.info.get("dsp_estimate")
                if not a.no_synth:
                    path = d.write(Path(tmp) / f"{ex}-{name.replace(' ', '-')}")
                    try:
                        r = synthesize(path, "xc7z020")
                        row.update(lut=r.lut, ff=r.ff, dsp=r.dsp, bram=r.bram, synth_seconds=round(r.wall_seconds, 1))
                    except BondflowError as e:
                        row["error"] = str(e)
                    if ex in ecp5:
                        try:
                            p = synthesize(path, "ecp5-85k", bitstream=True)
                            row.update(fmax_ecp5_mhz=p.fmax_mhz, ecp5_lut4=p.lut, ecp5_dsp=p.dsp,
                                       ecp5_seconds=round(p.wall_seconds, 1))
                        except BondflowError as e:
                            row["ecp5_error"] = str(e)
                rows.append(row)
                print({k: v for k, v in row.items() if k not in ("digest", "options")}, flush=True)
                _ratios(rows)
                write("arith", {"target": "xc7z020 (yosys synth_xilinx, bondflow synth); fmax: ecp5-85k nextpnr placed and routed",
                                "stage_adders": STAGE_ADDERS, "rows": rows, "hls4ml_published": HLS4ML_PUBLISHED})


if __name__ == "__main__":
    main()

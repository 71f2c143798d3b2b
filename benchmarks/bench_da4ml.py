"""da4ml vs dataflow RF 1 on Iris and the jet tagger, one run: latency, II, generation time, yosys xc7z020 LUT/FF/DSP."""
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
DESIGNS = {"da4ml": ("da4ml", {"stage_adders": 5}), "dataflow RF1": ("dataflow", {"reuse_factor": 1})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", default="iris,jet_tagger")
    ap.add_argument("--no-synth", action="store_true", help="latency and generation time only")
    a = ap.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-da4ml-") as tmp:
        for ex in a.examples.split(","):
            g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
            for name, (arch, opts) in DESIGNS.items():
                t0 = time.perf_counter()
                d = bondflow.generate(g, arch, **opts)
                row: dict[str, Any] = {"example": ex, "design": name, "options": opts, "digest": d.digest(),
                                       "generate_seconds": round(time.perf_counter() - t0, 2),
                                       "latency_cycles": d.latency_cycles, "ii_cycles": d.ii_cycles}
                if arch == "da4ml":
                    row.update(da4ml_version=d.info["da4ml_version"], da4ml_stages=d.info["stages"],
                               core_latency=d.info["core_latency"], trace_seconds=d.info["trace_seconds"])
                if not a.no_synth:
                    try:
                        r = synthesize(d.write(Path(tmp) / f"{ex}-{arch}"), "xc7z020")
                        row.update(lut=r.lut, ff=r.ff, dsp=r.dsp, bram=r.bram, synth_seconds=r.wall_seconds)
                    except BondflowError as e:
                        row["error"] = str(e)
                rows.append(row)
                print(row, flush=True)
                write("da4ml", {"target": "xc7z020 (yosys synth_xilinx, bondflow synth)", "rows": rows})


if __name__ == "__main__":
    main()

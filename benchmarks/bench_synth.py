"""Resources and fmax of each example x architecture: yosys estimates on xc7z020, placed and routed on ecp5-85k."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.codegen.hls4ml.generator import closest_valid_reuse  # noqa: E402
from bondflow.errors import BondflowError  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


#: Moldable core counts per example: the two the moldable benchmark measures.
CORES = {"iris": (4, 16), "jet_tagger": (8, 32), "muon_pt": (4, 15)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--resume", action="store_true", help="keep rows of an earlier (stopped) run, measure the others")
    a = ap.parse_args()
    old = RESULTS / "synth.json"
    rows = [r for r in json.loads(old.read_text())["rows"] if "design" in r] if a.resume and old.exists() else []
    done = {(r["example"], r["design"], r["target"]) for r in rows}
    secs = {(r["example"], r["design"]): r["seconds"] for r in rows if r.get("seconds")}
    jobs = []
    for ex in ("iris", "jet_tagger", "muon_pt"):
        designs = [("dataflow RF1", "dataflow", {}), ("dataflow RF4", "dataflow", {"reuse_factor": 4})]
        designs += [(f"moldable cores={c}", "moldable", {"cores": c}) for c in CORES[ex]]
        jobs += [(ex, name, arch, opts, target) for name, arch, opts in designs for target in ("xc7z020", "ecp5-85k")
                 if (ex, name, target) not in done]
    # Designs that already took over 20 min for one target go last, so a stopped run has measured the most.
    jobs.sort(key=lambda j: secs.get((j[0], j[1]), 0) > 1200)
    with tempfile.TemporaryDirectory() as tmp:
        for ex, name, arch, opts, target in jobs:
            g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
            if "reuse_factor" in opts:
                opts = {"reuse_factor": closest_valid_reuse(g, opts["reuse_factor"])}
            d = bondflow.generate(g, arch, **opts).write(Path(tmp) / f"{ex}-{name.replace(' ', '_').replace('=', '')}-{target}")
            try:
                r = synthesize(d, target, bitstream=target.startswith("ecp5"))
                row = {"example": ex, "design": name, "target": target, "lut": r.lut, "ff": r.ff, "dsp": r.dsp,
                       "bram": r.bram, "fmax_mhz": r.fmax_mhz, "seconds": r.wall_seconds, "note": r.note}
            except BondflowError as e:
                row = {"example": ex, "design": name, "target": target, "error": str(e)}
            rows.append(row)
            print(row, flush=True)
            write("synth", {"partial": "run in progress or stopped", "rows": rows})  # a stop keeps what was measured
    write("synth", {"rows": rows})


if __name__ == "__main__":
    main()

"""Resources and fmax of each example x architecture: yosys estimates on xc7z020, placed and routed on ecp5-85k."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.codegen.hls4ml.generator import closest_valid_reuse  # noqa: E402
from bondflow.errors import BondflowError  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ex in ("iris", "jet_tagger", "muon_pt"):
            g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
            for name, opts in (("dataflow RF1", {}), ("dataflow RF4", {"reuse_factor": closest_valid_reuse(g, 4)})):
                d = bondflow.generate(g, "dataflow", **opts).write(Path(tmp) / f"{ex}-{name.replace(' ', '_')}")
                for target, bit in (("xc7z020", False), ("ecp5-85k", True)):
                    try:
                        r = synthesize(d, target, bitstream=bit)
                        row = {"example": ex, "design": name, "target": target, "lut": r.lut, "ff": r.ff, "dsp": r.dsp,
                               "bram": r.bram, "fmax_mhz": r.fmax_mhz, "seconds": r.wall_seconds, "note": r.note}
                    except BondflowError as e:
                        row = {"example": ex, "design": name, "target": target, "error": str(e)}
                    rows.append(row)
                    print(row, flush=True)
    write("synth", {"rows": rows})


if __name__ == "__main__":
    main()

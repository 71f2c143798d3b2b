"""moldable vs dataflow on each example: cycles per inference, II and yosys LUT/FF/DSP on xc7z020 (same run).

The issue's reference is the real BondMachine design of the same model; its Go tools cannot be installed on
this machine (the Go proxy answers 403 for github.com/BondMachineHQ/BondMachine), so that column is 'blocked'.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.sim.runner import simulate  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _measured(digest: str, target: str) -> dict | None:
    """The bench_synth row of this exact design (same digest) on ``target``, so yosys does not run twice."""
    path = RESULTS / "synth.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    return next((r for r in rows if r.get("digest") == digest and r["target"] == target and "lut" in r), None)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ex, core_counts in (("iris", (1, 4)), ("jet_tagger", (8, 32)), ("muon_pt", (4, 15))):
            g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
            data = np.load(ROOT / "examples" / ex / "data.npz")["x_test"]
            for arch, opts in [("dataflow", {})] + [("moldable", {"cores": c}) for c in core_counts]:
                label = arch + (f" cores={opts['cores']}" if opts else "")
                design = bondflow.generate(g, arch, **opts)
                d = design.write(Path(tmp) / f"{ex}-{label.replace(' ', '_')}")
                r = simulate(d, 1000, simulator="verilator", data=data)
                known = _measured(design.digest(), "xc7z020")
                s = known or vars(synthesize(d, "xc7z020"))
                row = {"example": ex, "design": label, "bit_exact": r.passed, "vectors": r.vectors,
                       "latency_cycles": r.latency_cycles, "ii_cycles": r.ii_cycles, "lut": s["lut"], "ff": s["ff"],
                       "dsp": s["dsp"], "resources_from": "synth.json (same digest)" if known else "this run",
                       "bondmachine": "blocked (Go proxy 403)"}
                rows.append(row)
                print(row, flush=True)
    write("moldable", {"rows": rows})


if __name__ == "__main__":
    main()

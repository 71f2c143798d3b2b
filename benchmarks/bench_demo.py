"""Wall time of the Iris `bondflow compare` per step, as ratios to the golden model on the same vectors (same run)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import best_of, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.ir import reference  # noqa: E402
from bondflow.sim.vectors import make_vectors  # noqa: E402

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vectors", type=int, default=200)
    ap.add_argument("--arch", default="dataflow")
    ap.add_argument("--target", default="xc7z020")
    a = ap.parse_args()
    g = bondflow.load_model(IRIS / "model.h5")
    x = np.load(IRIS / "data.npz")["x_test"]
    tv = make_vectors(g, a.vectors, 0, x)  # the vectors compare simulates (seed 0, the example's data first)
    golden = best_of(lambda: reference.run_raw(g, tv.inputs), repeat=20)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report"
        cmd = [sys.executable, "-m", "bondflow.cli.main", "compare", str(IRIS / "model.h5"), "--arch", a.arch,
               "--target", a.target, "--vectors", str(a.vectors), "-o", str(out)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)  # every step resumed from its checkpoint
        resumed_wall = time.perf_counter() - t0
        results = json.loads((out / "results.json").read_text())["results"]
    rows = {}
    for r in results:
        assert r["status"] == "ok" and r["bit_exact"], r
        steps = r["step_seconds"]
        rows[r["label"]] = {"step_seconds": steps, "step_over_golden": {k: v / golden for k, v in steps.items()},
                            "resumed": r["resumed"], "latency_cycles": r["latency_cycles"], "ii_cycles": r["ii_cycles"],
                            "lut": r["lut"], "dsp": r["dsp"]}
        print(f"{r['label']}: " + ", ".join(f"{k} {v:.2f} s ({v / golden:,.0f}x golden)" for k, v in steps.items()))
    print(f"golden model, {a.vectors} vectors: {golden * 1e3:.3f} ms; whole compare {wall:.1f} s ({wall / golden:,.0f}x), "
          f"resumed rerun {resumed_wall:.1f} s ({resumed_wall / wall:.2f} of the first run)")
    path = write("demo", {"vectors": a.vectors, "target": a.target, "golden_seconds": golden, "compare_wall_seconds": wall,
                          "compare_over_golden": wall / golden, "resumed_wall_seconds": resumed_wall,
                          "resumed_over_first": resumed_wall / wall, "archs": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

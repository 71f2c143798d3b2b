"""moldable on the CNN examples: cycles per image, II (Verilator, against the golden model) and yosys xc7z020 resources.

Slow settings simulate fewer images (about 400k cycles per design, at least 20 images): the harness still checks
every image bit for bit and measures latency and II; 1000 images where the II allows it. Arguments (example names)
run only those examples; their rows replace the same settings' rows in the results file.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.sim.runner import simulate  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: (example, cores, lanes): the default (auto), a fixed small count, and wider settings; the residual CNN (branches).
SETTINGS = [("digits_cnn", "auto", 1), ("digits_cnn", 4, 1), ("digits_cnn", "auto", 4),
            ("conv1d", 2, 1), ("conv1d", "auto", 1), ("conv1d", "auto", 3), ("residual_cnn", "auto", 1)]
CYCLE_BUDGET = 400_000


def main() -> None:
    rows = []
    only = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        for ex, cores, lanes in SETTINGS:
            if only and ex not in only:
                continue
            g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
            data = np.load(ROOT / "examples" / ex / "data.npz")["x_test"]
            design = bondflow.generate(g, "moldable", cores=cores, lanes=lanes)
            d = design.write(Path(tmp) / f"{ex}-{cores}-{lanes}")
            n = int(min(1000, max(20, CYCLE_BUDGET // design.ii_cycles - 65)))
            t0 = time.monotonic()
            r = simulate(d, n, simulator="verilator", data=data, seed=1)
            t_sim = time.monotonic() - t0
            s = synthesize(d, "xc7z020")
            row = {"example": ex, "cores": cores, "lanes": lanes, "cores_per_layer": design.info["cores_per_layer"],
                   "bit_exact": r.passed, "images": r.vectors, "backpressure": r.backpressure,
                   "latency_cycles": r.latency_cycles, "ii_cycles": r.ii_cycles,
                   "declared": [design.latency_cycles, design.ii_cycles], "input_pixels": int(np.prod(g.input.shape[:-1])),
                   "lut": s.lut, "ff": s.ff, "dsp": s.dsp, "bram": s.bram, "xc7z020_util_pct": s.utilization_pct,
                   "sim_seconds": round(t_sim, 1), "synth_seconds": round(s.wall_seconds, 1)}
            rows.append(row)
            print(row, flush=True)
    path = RESULTS / "cnn_moldable.json"
    key = lambda r: (r["example"], str(r["cores"]), r["lanes"])  # noqa: E731
    done = {key(r) for r in rows}
    kept = [r for r in json.loads(path.read_text())["rows"] if key(r) not in done] if path.exists() and only else []
    order = [(e, str(c), l) for e, c, l in SETTINGS]
    write("cnn_moldable", {"rows": sorted(kept + rows, key=lambda r: order.index(key(r)) if key(r) in order else len(order))})


if __name__ == "__main__":
    main()

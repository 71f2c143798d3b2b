"""Per example and number type: connecting processors, tool step times, and (with --sim N) cycles per inference."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--examples", default="iris", help="comma list of examples/<name>")
    p.add_argument("--types", default="fps16f10", help="comma list of number types")
    p.add_argument("--sim", type=int, default=0, help="vectors to simulate (0: generation only)")
    p.add_argument("--simulator", default="icarus")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bondmachine.json"))
    a = p.parse_args()
    import bondflow
    from bondflow.bondmachine.toolchain import TOOLS_MISSING, missing_tools
    from bondflow.codegen.base import generate
    if missing_tools():
        print(f"skipped: {TOOLS_MISSING}")
        return 0
    rows = []
    for ex in a.examples.split(","):
        g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
        for nt in a.types.split(","):
            t0 = time.monotonic()
            d = generate(g, "bondmachine", number_type=nt)
            row = {"example": ex, "number_type": nt, "connecting_processors": d.info["connecting_processors"],
                   "bonds": d.info["bonds"], "generate_seconds": round(time.monotonic() - t0, 2),
                   **{f"{s['tool']}_seconds": s["seconds"] for s in d.info["tool_steps"]}}
            if a.sim:
                from bondflow.sim.runner import simulate
                data = np.load(ROOT / "examples" / ex / "data.npz")["x_test"]
                r = simulate(d, vectors=a.sim, simulator=a.simulator, data=data)
                row.update(vectors=r.vectors, mismatches=r.mismatches, cycles_per_inference=r.latency_cycles, ii_cycles=r.ii_cycles)
            rows.append(row)
            print(json.dumps(row))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

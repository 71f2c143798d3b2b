"""Icarus vs Verilator wall time for the same 10,000-vector run of the reference core (ratio, same run)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _util import write  # noqa: E402
from simgraphs import one_layer  # noqa: E402

import bondflow  # noqa: E402
from bondflow.sim.runner import simulate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vectors", type=int, default=10_000)
    ap.add_argument("--no-backpressure", action="store_true")
    a = ap.parse_args()
    n, bp = a.vectors, not a.no_backpressure
    with tempfile.TemporaryDirectory() as tmp:
        d = bondflow.generate(one_layer(), "reference").write(Path(tmp) / "ref")
        res = {}
        for sim in ("icarus", "verilator"):
            warm = simulate(d, 10, simulator=sim)  # build outside the timed run (build once, test many)
            r = simulate(d, n, simulator=sim, backpressure=bp)
            assert r.passed, r.summary()
            assert r.build_seconds == 0.0, "the timed run must reuse the build"
            res[sim] = {"version": r.simulator_version, "build_seconds": warm.build_seconds, "wall_seconds": r.wall_seconds,
                        "cycles": r.cycles, "cycles_per_second": r.cycles_per_second,
                        "latency_cycles": r.latency_cycles, "ii_cycles": r.ii_cycles}
            print(f"{sim:9s}: build {warm.build_seconds:.2f} s; {n} vectors in {r.wall_seconds:.2f} s, {r.cycles} cycles "
                  f"({r.cycles_per_second:,.0f} cycles/s), latency {r.latency_cycles}, II {r.ii_cycles}")
    ratio = res["icarus"]["wall_seconds"] / res["verilator"]["wall_seconds"]
    print(f"Icarus / Verilator wall time = {ratio:.2f}")
    path = write("sim", {"vectors": n, "backpressure": bp, **res, "icarus_over_verilator": ratio})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

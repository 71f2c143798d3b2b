"""Icarus vs Verilator wall time for the same 10,000-vector run of the reference core (ratio, same run)."""
from __future__ import annotations

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
    n = 10_000
    with tempfile.TemporaryDirectory() as tmp:
        d = bondflow.generate(one_layer(), "reference").write(Path(tmp) / "ref")
        res = {}
        for sim in ("icarus", "verilator"):
            simulate(d, 10, simulator=sim)  # build outside the timed run
            r = simulate(d, n, simulator=sim)
            assert r.passed, r.summary()
            res[sim] = {"wall_seconds": r.wall_seconds, "cycles": r.cycles, "cycles_per_second": r.cycles_per_second}
            print(f"{sim:9s}: {n} vectors in {r.wall_seconds:.2f} s, {r.cycles} cycles ({r.cycles_per_second:,.0f} cycles/s)")
    ratio = res["icarus"]["wall_seconds"] / res["verilator"]["wall_seconds"]
    print(f"Icarus / Verilator wall time = {ratio:.2f}")
    write("sim", {"vectors": n, **res, "icarus_over_verilator": ratio})


if __name__ == "__main__":
    main()

"""Data-centre kernel throughput: RTL cycles per sample over AXI4 memory, as a ratio to the core's own II (same run)."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.deploy.kernel import kernel_design, layout_from_dict, start_writes  # noqa: E402
from bondflow.sim.kernel import run_kernel  # noqa: E402
from bondflow.stream import pack_slots, unpack_slots  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
IN_ADDR, OUT_ADDR = 0x4_0000_0000, 0x5_0000_0000


def measure(kdir: Path, n: int, backpressure: bool, simulator: str) -> dict:
    k = bondflow.design.Design.load(kdir)
    lay, g = layout_from_dict(k.info["kernel"]), k.graph()
    x = np.random.default_rng(0).uniform(-4, 4, (n, g.input.size))
    writes = start_writes(IN_ADDR, OUT_ADDR, n)
    t0 = time.perf_counter()
    r = run_kernel(kdir, [(IN_ADDR, pack_slots(lay.inp.stream, g.input.type.quantize(x), lay.inp.slot_bytes))], writes,
                   [(OUT_ADDR, n * lay.out.slot_bytes)], simulator=simulator, backpressure=backpressure)
    wall = time.perf_counter() - t0
    y = g.output.type.to_float(unpack_slots(lay.out.stream, r.reads[0], lay.out.slot_bytes))
    ok = bool(r.done and np.array_equal(y, bondflow.reference.run(g, x)))
    return {"samples": n, "backpressure": backpressure, "bit_exact": ok, "kernel_cycles": r.cycles,
            "cycles_per_sample": round(r.cycles / n, 3), "sim_wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--simulator", default="icarus")
    a = ap.parse_args()
    rows = []
    cases = [("iris", "dataflow", {}), ("iris", "dataflow", {"reuse_factor": 4}), ("iris", "moldable", {"cores": 4}),
             ("jet_tagger", "dataflow", {"reuse_factor": 16})]
    with tempfile.TemporaryDirectory() as tmp:
        for example, arch, opts in cases:
            g = bondflow.load_model(EXAMPLES / example / "model.h5")
            d = bondflow.generate(g, arch, **opts)
            kdir = kernel_design(d).write(Path(tmp) / f"{example}-{arch}-{len(rows)}")
            lay = layout_from_dict(bondflow.design.Design.load(kdir).info["kernel"])
            for bp in (False, True):
                m = measure(kdir, a.samples, bp, a.simulator)
                # Reference: the core's own initiation interval, the best a stream feeder could do.
                m.update(example=example, arch=arch, options=opts, core_ii=d.ii_cycles,
                         ratio_to_core_ii=round(m["cycles_per_sample"] / d.ii_cycles, 3),
                         in_slot_bytes=lay.inp.slot_bytes, out_slot_bytes=lay.out.slot_bytes,
                         mem_bits=[lay.inp.word_bits, lay.out.word_bits])
                rows.append(m)
                print(f"{example:10s} {arch:9s} {str(opts):22s} bp={bp!s:5s} {m['cycles_per_sample']:7.3f} cycles/sample "
                      f"(core II {d.ii_cycles}, x{m['ratio_to_core_ii']}) bit-exact {m['bit_exact']}")
    print(f"results: {write('kernel', {'simulator': a.simulator, 'rows': rows})}")


if __name__ == "__main__":
    main()

"""Jet tagger at fixed<16,6>, RF=1: dataflow latency/II from simulation next to hls4ml's published HLS estimate;
golden-model throughput vs hls4ml predict() throughput (ratio, same run); full 1000-vector triangle per example."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.codegen.hls4ml.generator import build_project, closest_valid_reuse  # noqa: E402
from bondflow.sim.runner import simulate  # noqa: E402
from bondflow.sim.vectors import make_vectors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {"latency_cycles": 12, "clock_mhz": 200, "ii": 1,
             "source": "hls4ml 1.2 + Vivado HLS 2019.2, xcu250 @5 ns (Liu-Zhiheng/hls4ml-pynqz2-vivado2019-2-results)"}


def jet_tagger_16_6() -> bondflow.Graph:
    """The jet-tagger weights as a float Keras model imported at hls4ml's default fixed<16,6>."""
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    q = bondflow.load_model(ROOT / "examples" / "jet_tagger" / "model.h5")
    layers = [tfk.layers.InputLayer(input_shape=(16,))]
    for op in q.ops:
        if op.kind == "dense":
            layers.append(tfk.layers.Dense(op.n_out, name=op.name))
        else:
            layers.append(tfk.layers.Activation("relu", name=op.name))
    m = tfk.Sequential(layers)
    for op in q.dense_layers():
        m.get_layer(op.name).set_weights([op.weight_type.to_float(op.weight), op.bias_type.to_float(op.bias)])
    with tempfile.TemporaryDirectory() as tmp:
        m.save(Path(tmp) / "jet_float.h5")
        return bondflow.load_model(Path(tmp) / "jet_float.h5", default_precision="fixed<16,6>",
                                   input_precision="fixed<16,6,RND_CONV,SAT>")


def triangle(n: int = 1000) -> list[dict]:
    """golden == hls4ml C-sim == dataflow RTL (Verilator) on n vectors per example, RF 1 and a valid RF >= 2."""
    rows = []
    for example, target in (("iris", 4), ("jet_tagger", 8), ("muon_pt", 4)):
        g = bondflow.load_model(ROOT / "examples" / example / "model.h5")
        data = np.load(ROOT / "examples" / example / "data.npz")["x_test"]
        for rf in (1, target):
            reuse = closest_valid_reuse(g, rf)
            tv = make_vectors(g, n, seed=rf, data=data)
            with tempfile.TemporaryDirectory() as tmp:
                prj = build_project(g, Path(tmp) / "hls", reuse_factor=reuse)
                hls_bad = int(np.count_nonzero(np.any(prj.predict_raw(tv.inputs) != tv.expected, axis=1)))
                d = bondflow.generate(g, "dataflow", reuse_factor=reuse)
                r = simulate(d.write(Path(tmp) / "df"), tv, simulator="verilator")
            rows.append({"example": example, "reuse_factor": reuse, "vectors": len(tv), "hls4ml_source": prj.source,
                         "hls4ml_vs_golden_mismatches": hls_bad, "rtl_vs_golden_mismatches": r.mismatches,
                         "rtl_passed": r.passed, "latency_cycles": r.latency_cycles, "ii_cycles": r.ii_cycles})
            print(f"{example:10s} RF {max(reuse.values()):3d}: {len(tv)} vectors, hls4ml != golden {hls_bad}, "
                  f"RTL != golden {r.mismatches}, latency {r.latency_cycles}, II {r.ii_cycles}")
    return rows


def main() -> None:
    g = jet_tagger_16_6()
    out: dict = {"published_hls4ml": PUBLISHED}
    with tempfile.TemporaryDirectory() as tmp:
        design = bondflow.generate(g, "dataflow")
        d = design.write(Path(tmp) / "df")
        r = simulate(d, 1000, simulator="verilator")
        assert r.passed, r.summary()
        core = design.info["core_latency"]
        out["dataflow"] = {"latency_cycles": r.latency_cycles, "core_latency_cycles": core,
                           "shell_cycles": r.latency_cycles - core, "ii_cycles": r.ii_cycles, "vectors": r.vectors,
                           "mismatches": r.mismatches, "multipliers": design.info["multipliers"]}
        print(f"jet tagger fixed<16,6> RF=1: dataflow latency {r.latency_cycles} cycles ({core} in the layers + "
              f"{r.latency_cycles - core} in the AXI-Stream shell), II {r.ii_cycles}, {r.vectors} vectors, "
              f"{r.mismatches} mismatches; hls4ml published: {PUBLISHED['latency_cycles']} cycles @ "
              f"{PUBLISHED['clock_mhz']} MHz, II {PUBLISHED['ii']} (HLS estimate, no shell)")
        prj = build_project(g, Path(tmp) / "hls")
        tv = make_vectors(g, 20_000, 0)
        t0 = time.perf_counter()
        y_hls = prj.predict_raw(tv.inputs)
        t_hls = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_gold = bondflow.reference.run_raw(g, tv.inputs)
        t_gold = time.perf_counter() - t0
        assert np.array_equal(y_hls, y_gold)
        out["throughput"] = {"samples": len(tv), "golden_samples_per_s": len(tv) / t_gold,
                             "hls4ml_predict_samples_per_s": len(tv) / t_hls, "golden_over_hls4ml": t_hls / t_gold}
        print(f"golden {len(tv) / t_gold:,.0f} samples/s vs hls4ml predict {len(tv) / t_hls:,.0f} samples/s: "
              f"{t_hls / t_gold:.1f}x (identical outputs on {len(tv)} vectors)")
    out["triangle"] = triangle()
    write("dataflow", out)
    assert all(row["hls4ml_vs_golden_mismatches"] == 0 and row["rtl_passed"] for row in out["triangle"])


if __name__ == "__main__":
    main()

"""Large MLPs: dataflow generation time, lint peak memory (Verilator), and the Icarus vs Verilator build of a big design.

A 6-layer 16x500x500x500x500x500x5 MLP (1M MACs) is generated with the CLI (``--no-lint``) and linted in a child
process whose peak RSS (its own and Verilator's) is read from wait4; a 16x200...x5 MLP is built with Icarus and with
Verilator (ratio in the same run, the machine is shared) and simulated with simulator "auto" to record its choice.
``--whole-lint`` also measures one Verilator run over the whole 1M-MAC design (about 14 GB and tens of minutes).
The ``lut`` rows time ``--multipliers lut`` generation (subexpression sharing, ``codegen/cse.py``) for the jet tagger
and a 200x200 8-bit layer against dsp-mode generation of the same graph in the same run, and the search itself
against the first implementation (``_cmvm_v1.py``) on the jet tagger's layers and a 64x64 layer.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.ir.graph import Graph, TensorSpec, dumps_indented  # noqa: E402
from bondflow.ir.ops import Activation, Dense  # noqa: E402
from bondflow.ir.types import FixedType  # noqa: E402

PY = sys.executable
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def mlp(width: int, hidden: int = 5, n_in: int = 16, n_out: int = 5, seed: int = 0) -> Graph:
    """16 x width x ... x 5 with ReLUs, 8-bit activations, 6-bit random weights (about 1/64 of them zero)."""
    rng = np.random.default_rng(seed)
    x = FixedType(8, 3, rounding="RND_CONV", overflow="SAT")
    w = FixedType(6, 1)
    a = FixedType(8, 3, False, "RND_CONV", "SAT")
    dims = [n_in] + [width] * hidden + [n_out]
    ops: list = []
    prev = "x"
    for k, (i, o) in enumerate(zip(dims[:-1], dims[1:])):
        acc = FixedType(8 + 6 + i.bit_length() + 1, 3 + 1 + i.bit_length() + 1)
        ops.append(Dense(name=f"fc{k}", input=prev, result_type=acc, weight=rng.integers(-32, 32, (i, o)), weight_type=w,
                         bias=rng.integers(-32, 32, o), bias_type=w, accum_type=acc))
        prev = f"fc{k}"
        if k < len(dims) - 2:
            ops.append(Activation(name=f"relu{k}", input=prev, result_type=a, function="relu"))
            prev = f"relu{k}"
    return Graph(f"mlp{width}", TensorSpec("x", n_in, x), tuple(ops))


def dense(n: int, seed: int = 0) -> Graph:
    """One n x n Dense layer: 8-bit input, 8-bit random weights (the lut mode's sharing at a medium size)."""
    rng = np.random.default_rng(seed)
    x = FixedType(8, 3)
    acc = FixedType(8 + 8 + n.bit_length() + 1, 3 + 1 + n.bit_length() + 1)
    return Graph(f"dense{n}", TensorSpec("x", n, x), (Dense(name="fc", input="x", result_type=acc,
                 weight=rng.integers(-128, 128, (n, n)), weight_type=FixedType(8, 1), bias=rng.integers(-128, 128, n),
                 bias_type=FixedType(8, 1), accum_type=acc),))


def lut_speed(reference: bool, mlp_width: int = 0, small: bool = True) -> dict:
    """lut vs dsp generation seconds per graph (same run), and the sharing search vs the first implementation."""
    from bondflow.codegen import cmvm
    out: dict = {}
    graphs = {"jet_tagger": bondflow.load_model(ROOT / "examples" / "jet_tagger" / "model.h5")}
    if small:
        graphs["dense200"] = dense(200)
    if mlp_width:
        graphs[f"mlp{mlp_width}"] = mlp(mlp_width)
    bondflow.generate(graphs["jet_tagger"], "dataflow", multipliers="lut")  # imports and templates: not in the figures
    for name, g in graphs.items():
        t0 = time.perf_counter()
        bondflow.generate(g, "dataflow")
        dsp = time.perf_counter() - t0
        t0 = time.perf_counter()
        d = bondflow.generate(g, "dataflow", multipliers="lut", stage_adders=5)
        lut = time.perf_counter() - t0
        out[name] = {"macs": g.macs(), "dsp_seconds": round(dsp, 2), "lut_seconds": round(lut, 2),
                     "lut_over_dsp": round(lut / dsp, 1), "lut_latency_cycles": d.latency_cycles}
        print(f"{name}: dataflow lut {lut:.1f} s, dsp {dsp:.1f} s ({lut / dsp:.0f}x), {d.latency_cycles} cycles", flush=True)
    if reference:
        import _cmvm_v1 as v1
        rng = np.random.default_rng(0)
        layers = {f"jet_{op.name}": np.asarray(op.weight) for op in graphs["jet_tagger"].ops if isinstance(op, Dense)}
        layers["random64x64"] = rng.integers(-128, 128, (64, 64))
        ref: dict = {}
        for name, w in layers.items():
            row = {}
            for impl, mod in (("new", cmvm), ("v1", v1)):
                t0 = time.perf_counter()
                gr = mod.build_cmvm(w, -128, 127, max_depth=3)
                row[f"{impl}_seconds"], row[f"{impl}_adders"] = round(time.perf_counter() - t0, 2), gr.adders
            row["speedup"] = round(row["v1_seconds"] / row["new_seconds"], 1)
            ref[name] = row
            print(f"search {name} {w.shape}: {row}", flush=True)
        out["search_vs_v1"] = ref
    return out


def child(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GB of the child and everything it waited for, stdout) of one command."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read() if p.stdout else ""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} must succeed, not exit {p.returncode}: {out[-400:]}")
    return time.perf_counter() - t0, ru.ru_maxrss / 1e6, out


LINT = ("import sys, bondflow.sim.lint as L\n"
        "if sys.argv[2] == 'whole': L.SPLIT_TOTAL_CHARS = 1 << 62\n"
        "r = L.lint(sys.argv[1]); print(r.runs, r.clean)\n")
BUILD = ("import sys, json\nfrom bondflow.sim.runner import simulate\n"
         "r = simulate(sys.argv[1], 20, simulator=sys.argv[2], workdir=sys.argv[3])\n"
         "print(json.dumps({'passed': r.passed, 'simulator': r.simulator, 'build_seconds': r.build_seconds, "
         "'choice': r.simulator_choice}))\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--width", type=int, default=500, help="hidden width of the generation/lint MLP")
    ap.add_argument("--build-width", type=int, default=200, help="hidden width of the simulator-build MLP")
    ap.add_argument("--whole-lint", action="store_true", help="also lint the whole design in one Verilator run")
    ap.add_argument("--no-build", action="store_true", help="skip the simulator builds")
    ap.add_argument("--lut-only", action="store_true", help="only the lut-mode generation rows")
    ap.add_argument("--no-reference", action="store_true", help="lut rows without the first search implementation")
    ap.add_argument("--lut-mlp", action="store_true", help="generate the big MLP in lut mode too (with --lut-only: "
                                                        "the jet tagger and the MLP only)")
    a = ap.parse_args()
    if a.lut_only:
        lut = lut_speed(not a.no_reference, a.width if a.lut_mlp else 0, not a.lut_mlp)
        prev = RESULTS / "generate_scale_lut.json"
        old = json.loads(prev.read_text()).get("lut", {}) if prev.exists() else {}
        print(f"wrote {write('generate_scale_lut', {'lut': {**old, **lut}})}")  # rows of earlier runs stay
        return
    out: dict = {"lut": lut_speed(not a.no_reference)}
    with tempfile.TemporaryDirectory(prefix="bench-genscale-") as tmp:
        tmpd = Path(tmp)
        g = mlp(a.width)
        gpath = tmpd / "mlp.json"
        g.save(gpath)
        # End to end, as a user runs it: load the graph, generate, write the directory.
        secs, rss, _ = child([str(BIN / "bondflow"), "generate", str(gpath), "--arch", "dataflow", "-o", str(tmpd / "d"),
                              "--no-lint"])
        t0 = time.perf_counter()
        d = bondflow.generate(g, "dataflow")
        gen = time.perf_counter() - t0
        gd = g.to_dict()
        t0 = time.perf_counter()
        fast = dumps_indented(gd, 1)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        slow = json.dumps(gd, indent=1)
        t_slow = time.perf_counter() - t0
        assert fast == slow
        rtl_mb = sum(len(d.files[r]) for r in d.rtl_files) / 1e6
        if a.lut_mlp:
            t0 = time.perf_counter()
            bondflow.generate(g, "dataflow", multipliers="lut", stage_adders=5)
            out["lut"]["mlp"] = {"model": f"16x{a.width}x...x5", "macs": g.macs(), "lut_seconds": round(time.perf_counter() - t0, 1),
                                 "dsp_seconds": round(gen, 1)}
            print(f"lut mode {out['lut']['mlp']}", flush=True)
        out["generate"] = {"model": f"16x{a.width}x{a.width}x{a.width}x{a.width}x{a.width}x5", "macs": g.macs(),
                           "rtl_mb": round(rtl_mb, 1), "cli_generate_no_lint_seconds": secs, "cli_peak_rss_gb": rss,
                           "api_generate_seconds": gen, "graph_json_fast_seconds": t_fast, "graph_json_json_dumps_seconds": t_slow,
                           "graph_json_speedup": t_slow / t_fast, "goal_seconds": 30}
        print(f"generate {out['generate']['model']} ({g.macs():,} MACs, {rtl_mb:.0f} MB RTL): CLI {secs:.1f} s "
              f"(peak {rss:.2f} GB), API {gen:.1f} s; graph.json {t_fast:.2f} s vs json.dumps {t_slow:.2f} s")
        secs, rss, o = child([PY, "-c", LINT, str(tmpd / "d"), "split"])
        out["lint"] = {"seconds": secs, "peak_rss_gb": rss, "verilator_runs": int(o.split()[0]), "goal_gb": 4}
        print(f"lint (module by module): {secs:.0f} s, peak {rss:.2f} GB in {o.split()[0]} Verilator runs")
        if a.whole_lint:
            secs, rss, _ = child([PY, "-c", LINT, str(tmpd / "d"), "whole"])
            out["lint"].update(whole_seconds=secs, whole_peak_rss_gb=rss, whole_over_split_rss=rss / out["lint"]["peak_rss_gb"])
            print(f"lint (whole design, one run): {secs:.0f} s, peak {rss:.2f} GB")
        if not a.no_build:
            gb = mlp(a.build_width)
            db = bondflow.generate(gb, "dataflow").write(tmpd / "b")
            res = {}
            for sim in ("icarus", "verilator", "auto"):
                secs, rss, o = child([PY, "-c", BUILD, str(db), sim, str(tmpd / "sim")])
                r = json.loads(o.strip().splitlines()[-1])
                res[sim] = {**r, "wall_seconds": secs, "peak_rss_gb": rss}
                print(f"{sim:9s}: {r['simulator']} build {r['build_seconds']:.0f} s, wall {secs:.0f} s, peak {rss:.2f} GB, "
                      f"passed {r['passed']}" + (f" ({r['choice']})" if r["choice"] else ""))
            out["build"] = {"model": f"16x{a.build_width}x...x5", "macs": gb.macs(), **res,
                            "icarus_over_verilator_build": res["icarus"]["build_seconds"] / res["verilator"]["build_seconds"],
                            "goal_icarus_seconds": 60}
    path = write("generate_scale", out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

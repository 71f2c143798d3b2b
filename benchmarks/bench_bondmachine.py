"""BondMachine vs moldable (default, fastest) vs dataflow per example: cycles, II, LUT/FF/DSP, tool-step times, agreement.

Per example (and, for the classifiers, the same model with a softmax appended): the real BondMachine design's
RTL against bondflow's model of its arithmetic and against ``bondmachine -sim``, its distance to the golden model,
and the same measurements for moldable and dataflow. Long: run it by hand, not in ``make test``:
``.venv/bin/python benchmarks/bench_bondmachine.py --examples iris,jet_tagger,muon_pt``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: moldable's fastest configuration measured here: one core per neuron (at most 16 per layer), 4 MAC lanes each.
FASTEST = {"cores": 16, "lanes": 4}
CLASSIFIERS = ("iris", "jet_tagger")


def _known_resources(digest: str, target: str) -> dict[str, Any] | None:
    """A bench_synth/bench_bondmachine row of this exact design (same digest), so yosys does not run twice."""
    for name in ("synth.json", "bondmachine.json"):
        path = RESULTS / name
        doc = json.loads(path.read_text()) if path.exists() else {}
        for r in doc.get("rows", []):
            for m in [r, *(v for v in r.values() if isinstance(v, dict))]:
                if m.get("digest") == digest and m.get("target", target) == target and m.get("lut") is not None:
                    return {k: m.get(k) for k in ("lut", "ff", "dsp", "bram")} | {"from": f"{name} (same digest)"}
    return None


def _resources(design: Any, design_dir: Path, a: argparse.Namespace, big: bool) -> dict[str, Any]:
    known = _known_resources(design.digest(), a.target)
    if known:
        return known
    if not a.synth or (big and not a.synth_big):
        return {"lut": None, "from": "not measured (--synth / --synth-big)"}
    from bondflow.synth.flow import synthesize
    t0 = time.monotonic()
    r = synthesize(design_dir, a.target)
    return {"lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram": r.bram, "from": f"this run ({time.monotonic() - t0:.0f} s)"}


def _with_softmax(g: Any) -> Any:
    from bondflow.ir.graph import Graph
    from bondflow.ir.ops import Softmax
    from bondflow.ir.types import FixedType
    return Graph(g.name + "_softmax", g.input, (*g.ops, Softmax(name="probs", input=g.ops[-1].name,
                                                                 result_type=FixedType(16, 6))))


def _golden_distance(g: Any, ref: str, data: np.ndarray) -> dict[str, Any]:
    """BondMachine's outputs (its model, = its RTL) against the golden model on the example's real test inputs."""
    from bondflow.ir.reference import quantize_input, run_raw
    from bondflow.sim.vectors import reference_for
    x = quantize_input(g, data)
    gold, bm = run_raw(g, x), reference_for(ref)(g, x)
    t = g.output.type
    diff = np.abs(t.to_float(bm) - t.to_float(gold))
    out = {"samples": len(x), "max_abs_diff": float(diff.max()), "mean_abs_diff": round(float(diff.mean()), 5),
           "raw_equal_fraction": round(float(np.mean(np.all(bm == gold, axis=1))), 4)}
    if g.output.size > 1:
        out["argmax_agreement"] = round(float(np.mean(bm.argmax(1) == gold.argmax(1))), 4)
    return out


def _kept_design(ddir: Path, g: Any, nt: str) -> Any:
    """The BondMachine design an earlier run left in ``ddir`` for this graph and number type, else None."""
    from bondflow.design import Design
    if not (ddir / "design.json").exists() or not (ddir / "generate_seconds.txt").exists():
        return None
    d = Design.load(ddir)
    return d if d.graph().digest() == g.digest() and d.info.get("number_type") == nt else None


def bench_bondmachine(g: Any, label: str, nt: str, data: np.ndarray, a: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from bondflow.bondmachine.bmsim import cross_check
    from bondflow.codegen.base import generate
    from bondflow.sim.runner import simulate
    t0 = time.monotonic()
    ddir = tmp / f"{label}-bm"
    d = _kept_design(ddir, g, nt)
    if d is None:
        d = generate(g, "bondmachine", number_type=nt, workdir=str(tmp))
        gen_s = round(time.monotonic() - t0, 2)
        ddir = d.write(ddir, force=True)
        (ddir / "generate_seconds.txt").write_text(f"{gen_s}\n")
    else:  # --workdir: the design of an earlier run of this same graph and number type
        gen_s = float((ddir / "generate_seconds.txt").read_text())
        print(f"{label}: reusing the BondMachine design in {ddir} (generated in {gen_s:.0f} s)", flush=True)
    row: dict[str, Any] = {"design": "bondmachine", "model": label, "number_type": nt, "reference": d.info["reference"],
                           "digest": d.digest(), "connecting_processors": d.info["connecting_processors"],
                           "bonds": d.info["bonds"], "generate_seconds": gen_s,
                           "tool_seconds": {s["tool"]: s["seconds"] for s in d.info["tool_steps"]}}
    row["golden_distance"] = _golden_distance(g, d.info["reference"], data)
    print(json.dumps(row), flush=True)
    if a.rtl_vectors:
        t0 = time.monotonic()
        r = simulate(ddir, vectors=a.rtl_vectors, simulator=a.simulator, data=data)
        row.update(rtl_vectors=r.vectors, rtl_mismatches=r.mismatches, rtl_equals_model=r.passed,
                   latency_cycles=r.latency_cycles, ii_cycles=r.ii_cycles, rtl_seconds=round(time.monotonic() - t0, 1))
        print(json.dumps(row), flush=True)
    if a.bmsim_vectors:
        t0 = time.monotonic()
        ticks = 2 * (row.get("latency_cycles") or a.bmsim_ticks)  # ticks <= clocks per inference: 2x lets every CP redo it
        c = cross_check(d, vectors=a.bmsim_vectors, data=data, ticks=ticks)
        row.update(bmsim_vectors=c.vectors, bmsim_agree=c.agree, bmsim_ticks_per_sample=ticks,
                   bmsim_seconds=round(time.monotonic() - t0, 1), bmsim_first_disagreements=c.first_disagreements[:2])
        print(json.dumps(row), flush=True)
    row["resources"] = _resources(d, ddir, a, big=True)
    return row


def bench_generated(g: Any, ex: str, label: str, arch: str, opts: dict[str, Any], data: np.ndarray, a: argparse.Namespace,
                    tmp: Path) -> dict[str, Any]:
    import bondflow
    from bondflow.sim.runner import simulate
    t0 = time.monotonic()
    d = bondflow.generate(g, arch, **opts)
    gen = round(time.monotonic() - t0, 2)
    name = arch + "".join(f" {k}={v}" for k, v in opts.items()) if opts else arch + (" default" if arch == "moldable" else "")
    ddir = d.write(tmp / f"{label}-{name.replace(' ', '_').replace('=', '')}", force=True)
    row: dict[str, Any] = {"design": name, "model": label, "digest": d.digest(), "generate_seconds": gen,
                           "latency_cycles": d.latency_cycles, "ii_cycles": d.ii_cycles}
    if arch == "moldable":
        row["cores_per_layer"] = d.info["cores_per_layer"]
    if a.other_rtl_vectors:
        r = simulate(ddir, vectors=a.other_rtl_vectors, simulator="verilator" if a.fast_sim else a.simulator, data=data)
        row.update(rtl_vectors=r.vectors, bit_exact=r.passed, latency_cycles=r.latency_cycles, ii_cycles=r.ii_cycles)
    row["resources"] = _resources(d, ddir, a, big=arch == "dataflow" and ex != "iris")
    print(json.dumps(row), flush=True)
    return row


def _put(rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
    """Add ``row``, replacing an earlier row of the same model and design (--append re-measures in place)."""
    same = [i for i, r in enumerate(rows) if (r["model"], r["design"]) == (row["model"], row["design"])]
    if same:
        rows[same[0]] = row
        for i in reversed(same[1:]):
            del rows[i]
    else:
        rows.append(row)


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:g}" if isinstance(v, float) else str(v)


def render_table(doc: dict[str, Any]) -> str:
    """The results as a Markdown table (benchmarks/results/bondmachine.md)."""
    head = ("| model | design | latency / II (clk) | LUT / FF / DSP (xc7z020) | generation (tool steps) | verified |\n"
            "|---|---|---|---|---|---|\n")
    lines = []
    for r in doc["rows"]:
        res = r.get("resources") or {}
        hw = " / ".join(_fmt(res.get(k)) for k in ("lut", "ff", "dsp")) if res.get("lut") is not None else "not measured"
        if r["design"] == "bondmachine":
            steps = ", ".join(f"{k} {v:.0f} s" for k, v in r["tool_seconds"].items())
            gen = f"{r['generate_seconds']:.0f} s ({steps})"
            ver = []
            if r.get("rtl_vectors"):
                ver.append(f"RTL == model {r['rtl_vectors'] - r['rtl_mismatches']}/{r['rtl_vectors']}")
            if r.get("bmsim_vectors"):
                ver.append(f"bondmachine -sim == model {r['bmsim_agree']}/{r['bmsim_vectors']}")
            gd = r.get("golden_distance") or {}
            if "argmax_agreement" in gd:
                ver.append(f"argmax = golden {gd['argmax_agreement']:.1%}, max abs diff {gd['max_abs_diff']:.3g}")
            elif gd:
                ver.append(f"max abs diff vs golden {gd['max_abs_diff']:.3g}")
            name = f"BondMachine {r['number_type']}, {r['connecting_processors']:,} CPs"
        else:
            gen = f"{r['generate_seconds']:.2f} s"
            ver = [f"RTL == golden {r['rtl_vectors']}" if r.get("bit_exact") else "cycles: generator figure (= RTL in tests/moldable, tests/codegen)"]
            name = r["design"] + (f" ({', '.join(map(str, r['cores_per_layer']))} cores)" if r["design"] == "moldable default" else "")
        lat = f"{_fmt(r.get('latency_cycles'))} / {_fmt(r.get('ii_cycles'))}"
        lines.append(f"| {r['model']} | {name} | {lat} | {hw} | {gen} | {'; '.join(ver)} |")
    return head + "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--examples", default="iris,jet_tagger,muon_pt", help="comma list of examples/<name>")
    p.add_argument("--number-type", default="fps16f10")
    p.add_argument("--rtl-vectors", type=int, default=500, help="vectors per BondMachine RTL simulation (0: none)")
    p.add_argument("--other-rtl-vectors", type=int, default=0,
                   help="vectors per moldable/dataflow RTL simulation (0: the generators' cycle figures, equal to RTL in tests)")
    p.add_argument("--bmsim-vectors", type=int, default=500, help="vectors compared with bondmachine -sim (0: none)")
    p.add_argument("--bmsim-ticks", type=int, default=2000, help="simulator ticks per sample when the RTL was not run")
    p.add_argument("--append", action="store_true", help="add rows to --out instead of replacing it")
    p.add_argument("--simulator", default="icarus", help="for BondMachine's RTL (its <= #1 delays suit Icarus)")
    p.add_argument("--fast-sim", action="store_true", help="Verilator for the moldable and dataflow designs")
    p.add_argument("--target", default="xc7z020")
    p.add_argument("--synth", action="store_true", help="run yosys for designs without a same-digest measurement")
    p.add_argument("--synth-big", action="store_true", help="also for BondMachine and large dataflow designs (hours)")
    p.add_argument("--no-softmax", action="store_true", help="skip the classifiers' softmax variants")
    p.add_argument("--designs", default="bondmachine,moldable,moldable-fastest,dataflow", help="comma list to run")
    p.add_argument("--variants", default="plain,softmax", help="plain and/or softmax (classifiers only)")
    p.add_argument("--out", default=str(RESULTS / "bondmachine.json"))
    p.add_argument("--table", action="store_true", help="only print --out as a Markdown table")
    p.add_argument("--workdir", default=None,
                   help="keep designs here and reuse a BondMachine design an earlier run generated (jet: ~10 min each)")
    a = p.parse_args()
    if a.table:
        print(render_table(json.loads(Path(a.out).read_text())), end="")
        return 0
    import bondflow
    from bondflow.bondmachine.provenance import read_provenance
    from bondflow.bondmachine.toolchain import BM_PIN, missing_tools
    if missing_tools():
        print(f"bondmachine column skipped: missing {', '.join(missing_tools())} (make setup)")
        return 1
    out_path = Path(a.out)
    rows: list[dict[str, Any]] = json.loads(out_path.read_text())["rows"] if a.append and out_path.exists() else []

    def save() -> None:
        doc = {"benchmark": "bondmachine", "machine": platform.machine(), "python": platform.python_version(),
               "bm_pin": BM_PIN, "tools_origin": read_provenance(), "simulator": a.simulator, "target": a.target,
               "notes": ["latency/II: clock cycles of the wrapped design, measured in RTL (one sample in flight for "
                         "BondMachine); moldable/dataflow without RTL vectors: the generator's figures, equal to RTL in tests",
                         "bmsim: bondmachine -sim, several samples per run (bondflow.bondmachine.bmsim.bm_simulate)",
                         "golden_distance: BondMachine's outputs vs the golden model on the example's test inputs"],
               "rows": rows}
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=1) + "\n")
        out_path.with_suffix(".md").write_text(render_table(doc))

    with tempfile.TemporaryDirectory(prefix="bench-bm-") as scratch:
        tmp = a.workdir or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for ex in a.examples.split(","):
            g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
            data = np.load(ROOT / "examples" / ex / "data.npz")["x_test"]
            kinds = a.variants.split(",")
            variants = ([(ex, g)] if "plain" in kinds else []) + \
                ([(f"{ex}+softmax", _with_softmax(g))] if ex in CLASSIFIERS and "softmax" in kinds and not a.no_softmax else [])
            designs = a.designs.split(",")
            for label, gv in variants:
                if "bondmachine" in designs:
                    _put(rows, {"example": ex, **bench_bondmachine(gv, label, a.number_type, data, a, Path(tmp))})
                    save()
                for key, arch, opts in (("moldable", "moldable", {}), ("moldable-fastest", "moldable", FASTEST),
                                        ("dataflow", "dataflow", {})):
                    if key not in designs:
                        continue
                    _put(rows, {"example": ex, **bench_generated(gv, ex, label, arch, opts, data, a, Path(tmp))})
                    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

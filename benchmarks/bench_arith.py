"""dataflow's multiplier modes (lut, dsp, auto) vs da4ml vs hls4ml's published figures, one run, same yosys script.

Per example and design: generation time, latency (cycles, II 1), yosys xc7z020 LUT/FF/DSP, and ECP5 fmax placed and
routed by nextpnr (ecp5-85k); ratios against the da4ml row measured in the same run. hls4ml's rows are published
Vivado HLS estimates of similar (not identical) models, quoted from ../shared/notes/hls4ml_and_peers.md.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.errors import BondflowError  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGE_ADDERS = 5  # the same stage depth for da4ml and dataflow lut
DESIGNS: dict[str, tuple[str, dict[str, Any]]] = {
    "da4ml": ("da4ml", {"stage_adders": STAGE_ADDERS}),
    "dataflow lut": ("dataflow", {"multipliers": "lut", "stage_adders": STAGE_ADDERS}),
    "dataflow dsp": ("dataflow", {"multipliers": "dsp"}),
    "dataflow auto": ("dataflow", {"multipliers": "auto", "target": "xc7z020"}),
}
#: Published hls4ml figures (Vivado/Vitis HLS estimates, RF 1, latency strategy): not this run, not this flow.
HLS4ML_PUBLISHED = {
    "iris": {"model": "Iris 4-8-8-3 + softmax, ap_fixed<16,6> (ours: 4-16-8-3, 8-bit)", "part": "xc7z020 @5 ns",
             "latency_cycles": 32, "lut": 4725, "ff": 13240, "dsp": 110,
             "source": "github.com/Thifjj/Iris_hls4ml_pynqZ2 myproject_csynth.rpt (Vitis HLS 2025.1)"},
    "jet_tagger": {"model": "jet tagger 16-64-32-32-5, ap_fixed<16,6> (ours: 6-bit weights)", "part": "xcu250 @5 ns",
                   "latency_cycles": 12, "lut": 109753, "ff": 12562, "dsp": 2118,
                   "source": "github.com/Liu-Zhiheng/hls4ml-pynqz2-vivado2019-2-results RESULTS_VIVADO2019_2.md"},
}


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's figures over the da4ml row of the same example (this run)."""
    ref = {r["example"]: r for r in rows if r["design"] == "da4ml" and "lut" in r}
    for r in rows:
        base = ref.get(r["example"])
        if base is None or r["design"] == "da4ml":
            continue
        r["vs_da4ml"] = {k: round(r[k] / base[k], 3) for k in ("lut", "ff", "latency_cycles", "fmax_ecp5_mhz")
                         if r.get(k) is not None and base.get(k)}


ECP5 = ("import json, sys\nfrom bondflow.synth.flow import synthesize\n"
        "p = synthesize(sys.argv[1], 'ecp5-85k', bitstream=True, out=sys.argv[2], timeout=float(sys.argv[3]), router=sys.argv[4] or None)\n"
        "print(json.dumps({'fmax_mhz': p.fmax_mhz, 'lut': p.lut, 'dsp': p.dsp, 'wall_seconds': p.wall_seconds, "
        "'cached': bool(getattr(p, 'cached', False)), 'tools': p.tool_versions}))\n")


def ecp5_fmax(path: Path, out: Path, timeout: float, router: str = "") -> dict[str, Any]:
    """ECP5-85k synthesis, place and route in a child process group, ended after ``timeout`` seconds.

    A child, so that a jet-sized place and route that runs past the bench's budget can be stopped (with its nextpnr)
    and recorded as timed out instead of blocking the run for hours.
    """
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", ECP5, str(path), str(out), str(timeout), router], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        stdout, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)  # the session this child leads: its yosys/nextpnr, nothing else
        p.communicate()
        return {"ecp5_error": f"timed out after {timeout:.0f} s (synthesis + place and route)",
                "ecp5_seconds": round(time.perf_counter() - t0, 1)}
    if p.returncode != 0:
        return {"ecp5_error": (err.strip().splitlines() or ["exit %d" % p.returncode])[-1][:300]}
    r = json.loads(stdout.strip().splitlines()[-1])
    return {"fmax_ecp5_mhz": r["fmax_mhz"], "ecp5_lut4": r["lut"], "ecp5_dsp": r["dsp"],
            "ecp5_seconds": round(r["wall_seconds"], 1), "ecp5_tools": r["tools"], **({"ecp5_router": router} if router else {}), **({"ecp5_cached": True} if r["cached"] else {})}


def ecp5_from_log(cache: Path, router: str = "") -> dict[str, Any]:
    """What a stopped ECP5 place and route got to, read from the newest nextpnr log under ``cache`` for this router:
    nextpnr's timing estimate after placement (before routing: not a routed fmax) and the router's last iteration.
    Nothing is run."""
    import re
    logs = sorted(cache.glob("ecp5-85k-*/yosys/nextpnr.live.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for log in logs:
        cmd = (log.parent / "nextpnr.log").read_text(errors="replace").splitlines()[:1] if (log.parent / "nextpnr.log").exists() else []
        text = log.read_text(errors="replace")
        if router and f"Running {router}" not in text and not any(f"--router {router}" in c for c in cmd):
            continue
        est = re.search(r"Max frequency for clock '[^']*': ([0-9.]+) MHz", text)
        iters = re.findall(r"iter=(\d+) wires=(\d+) overused=(\d+)", text)
        out: dict[str, Any] = {"ecp5_log": str(log)}
        lut4, dff = re.search(r"Total LUT4s:\s+(\d+)/", text), re.search(r"Total DFFs:\s+(\d+)/", text)
        if lut4 and dff:
            out.update(ecp5_lut4=int(lut4.group(1)), ecp5_ff=int(dff.group(1)))
        ylog = log.parent / "yosys.log"
        ver = re.search(r"Yosys (\d[^\s]*)", ylog.read_text(errors="replace")[:5000]) if ylog.exists() else None
        if ver:
            out["ecp5_yosys"] = ver.group(1)
        if est:
            out["ecp5_placed_estimate_mhz"] = float(est.group(1))
        if iters:
            (k, _, o), (_, _, o1) = iters[-1], iters[0]
            out["ecp5_route_progress"] = f"stopped after {k} {router or 'router'} iterations: {o} wires overused ({o1} after the first)"
        out["ecp5_error"] = "place and route stopped before routing converged; the estimate is nextpnr's after placement, not routed"
        return out
    return {"ecp5_error": f"no nextpnr log{' for ' + router if router else ''} under {cache}"}


def record_stopped_ecp5(examples: list[str], designs: list[str], workdir: Path, router: str) -> None:
    """Add a stopped ECP5 run (ecp5_from_log) to each arith.json row of these examples and designs, as its own
    ``ecp5_stopped_run`` entry with the digest of the design it placed; the row's own figures stay as measured."""
    prev = RESULTS / "arith.json"
    data = json.loads(prev.read_text())
    for ex in examples:
        g = bondflow.load_model(next(p for p in (ROOT / "examples" / ex / n for n in ("model.h5", "model.keras")) if p.exists()))
        for name in designs:
            arch, opts = DESIGNS[name]
            digest = bondflow.generate(g, arch, **opts).digest()
            run = {"digest": digest, **ecp5_from_log(workdir / "synth" / f"{ex}-{name.replace(' ', '-')}", router),
                   "recorded_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())}
            row = next((r for r in data["rows"] if (r["example"], r["design"]) == (ex, name)), None)
            if row is None:
                print(f"{ex} {name}: no arith.json row to add the stopped run to", flush=True)
                continue
            row["ecp5_stopped_run"] = run
            print(f"{ex} {name}: {run}", flush=True)
    write("arith", data)


def _earlier_xilinx(example: str, design: str, digest: str) -> dict[str, Any] | None:
    """The xc7z020 figures arith.json already holds for this exact design (same digest), for --ecp5-only."""
    prev = RESULTS / "arith.json"
    for r in (json.loads(prev.read_text()).get("rows", []) if prev.exists() else []):
        if (r["example"], r["design"], r["digest"]) == (example, design, digest) and r.get("lut") is not None:
            return {k: r[k] for k in ("lut", "ff", "dsp", "bram", "synth_seconds") if k in r} | {
                "synth_measured_utc": r.get("measured_utc")}
    return None


def _merge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the previous arith.json that this run did not measure (another example or design), then this run's."""
    prev = RESULTS / "arith.json"
    old = json.loads(prev.read_text()).get("rows", []) if prev.exists() else []
    mine = {(r["example"], r["design"]) for r in rows}
    return [r for r in old if (r["example"], r["design"]) not in mine] + rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", default="iris,jet_tagger")
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--no-synth", action="store_true", help="latency and generation time only")
    ap.add_argument("--ecp5", default="iris", help="examples also placed and routed on ecp5-85k for fmax ('' for none)")
    ap.add_argument("--ecp5-designs", default="da4ml,dataflow lut", help="designs placed and routed on ecp5-85k")
    ap.add_argument("--ecp5-timeout", type=float, default=1800, help="seconds for one ECP5 synthesis + place and route")
    ap.add_argument("--ecp5-router", default="", help="nextpnr router (router2 for jet-sized designs; default nextpnr's)")
    ap.add_argument("--ecp5-only", action="store_true",
                    help="keep the xc7z020 figures arith.json holds for the same digest; run only the ECP5 flow")
    ap.add_argument("--ecp5-from-log", action="store_true",
                    help="record a stopped ECP5 run from its nextpnr log in --workdir (placement estimate, routing progress)")
    ap.add_argument("--workdir", help="keep designs and synthesis here (results are cached by design digest and tool "
                                      "versions, so a rerun of an unchanged design reuses them); default a temp dir")
    a = ap.parse_args()
    if a.ecp5_from_log:
        if not a.workdir:
            ap.error("--ecp5-from-log reads the nextpnr logs of --workdir: give it")
        record_stopped_ecp5(a.examples.split(","), [d for d in a.ecp5_designs.split(",") if d], Path(a.workdir), a.ecp5_router)
        return
    rows: list[dict[str, Any]] = []
    ecp5 = set(filter(None, a.ecp5.split(",")))
    ecp5_designs = set(filter(None, a.ecp5_designs.split(",")))
    with tempfile.TemporaryDirectory(prefix="bench-arith-") as tmp:
        if a.workdir:
            tmp = a.workdir
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for ex in a.examples.split(","):
            g = bondflow.load_model(next(p for p in (ROOT / "examples" / ex / n for n in ("model.h5", "model.keras")) if p.exists()))
            for name in a.designs.split(","):
                arch, opts = DESIGNS[name]
                t0 = time.perf_counter()
                d = bondflow.generate(g, arch, **opts)
                row: dict[str, Any] = {"example": ex, "design": name, "arch": arch, "options": opts, "digest": d.digest(),
                                       "generate_seconds": round(time.perf_counter() - t0, 2),
                                       "latency_cycles": d.latency_cycles, "ii_cycles": d.ii_cycles,
                                       "core_latency": d.info.get("core_latency")}
                if arch == "dataflow":
                    row["layer_multipliers"] = d.info.get("layer_multipliers")
                    row["dsp_estimate"] = d.info.get("dsp_estimate")
                if not a.no_synth:
                    tag = f"{ex}-{name.replace(' ', '-')}"
                    path = d.write(Path(tmp) / tag, force=True)
                    cache = Path(tmp) / "synth" / tag  # outside the design directory, which a rerun replaces
                    earlier = _earlier_xilinx(ex, name, row["digest"]) if a.ecp5_only else None
                    if earlier:
                        row.update(earlier)
                    else:
                        try:
                            r = synthesize(path, "xc7z020", out=cache)
                            row.update(lut=r.lut, ff=r.ff, dsp=r.dsp, bram=r.bram, synth_seconds=round(r.wall_seconds, 1))
                            if getattr(r, "cached", False):
                                row["synth_cached"] = True  # same digest and tool versions as an earlier run in --workdir
                        except BondflowError as e:
                            row["error"] = str(e)
                    if ex in ecp5 and name in ecp5_designs:
                        row.update(ecp5_fmax(path, cache, a.ecp5_timeout, a.ecp5_router))
                row["measured_utc"] = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
                row["command"] = "benchmarks/bench_arith.py " + " ".join(sys.argv[1:])  # rows of several runs are merged
                rows.append(row)
                print({k: v for k, v in row.items() if k not in ("digest", "options")}, flush=True)
                merged = _merge(rows)
                _ratios(merged)
                write("arith", {"target": "xc7z020 (yosys synth_xilinx, bondflow synth); fmax: ecp5-85k nextpnr placed and routed",
                                "stage_adders": STAGE_ADDERS, "rows": merged, "hls4ml_published": HLS4ML_PUBLISHED,
                                "command": "nice -n 10 .venv/bin/python benchmarks/bench_arith.py " + " ".join(sys.argv[1:])})


if __name__ == "__main__":
    main()

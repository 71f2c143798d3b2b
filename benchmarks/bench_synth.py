"""Resources and fmax of each example x architecture: yosys estimates on xc7z020, placed and routed on ecp5-85k."""
from __future__ import annotations

import argparse
import fcntl
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.codegen.hls4ml.generator import closest_valid_reuse  # noqa: E402
from bondflow.errors import BondflowError  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("iris", "jet_tagger", "muon_pt")
TARGETS = ("xc7z020", "ecp5-85k")
#: Moldable core counts per example: the two the moldable benchmark measures.
CORES = {"iris": (4, 16), "jet_tagger": (8, 32), "muon_pt": (4, 15)}


def _designs(ex: str) -> list[tuple[str, str, dict[str, Any]]]:
    return ([("dataflow RF1", "dataflow", {}), ("dataflow RF4", "dataflow", {"reuse_factor": 4})]
            + [(f"moldable cores={c}", "moldable", {"cores": c}) for c in CORES[ex]])


def _key(r: dict[str, Any]) -> tuple[str, str, str]:
    return r["example"], r["design"], r["target"]


def _record(row: dict[str, Any]) -> None:
    """Merge one row into synth.json under a lock, so several runs (one per example) can share the file."""
    with open(RESULTS / ".synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = RESULTS / "synth.json"
        rows = json.loads(path.read_text())["rows"] if path.exists() else []
        rows = [r for r in rows if _key(r) != _key(row)] + [row]
        order = {(ex, name, t): i for i, (ex, name, t) in enumerate(
            (ex, n, t) for ex in EXAMPLES for n, _, _ in _designs(ex) for t in TARGETS)}
        rows.sort(key=lambda r: order.get(_key(r), len(order)))
        missing = len(order) - len({_key(r) for r in rows} & set(order))
        write("synth", {**({"partial": f"{missing} of {len(order)} rows not measured yet"} if missing else {}), "rows": rows})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--resume", action="store_true",
                    help="keep rows of an earlier run whose design digest is unchanged, measure the others")
    ap.add_argument("--examples", default=",".join(EXAMPLES), help="comma-separated subset (run several at once)")
    a = ap.parse_args()
    old = RESULTS / "synth.json"
    rows = json.loads(old.read_text())["rows"] if a.resume and old.exists() else []
    kept = {_key(r): r.get("digest") for r in rows}
    if not a.resume:
        write("synth", {"partial": "run in progress", "rows": []})
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for ex in a.examples.split(","):
            g = bondflow.load_model(ROOT / "examples" / ex / "model.h5")
            for name, arch, opts in _designs(ex):
                if "reuse_factor" in opts:
                    opts = {"reuse_factor": closest_valid_reuse(g, opts["reuse_factor"])}
                d = bondflow.generate(g, arch, **opts)
                jobs += [(ex, name, d, t) for t in TARGETS if kept.get((ex, name, t)) != d.digest()]
        # Generic-multiplier designs (dataflow RF > 1 on the larger examples) take yosys longest: last.
        jobs.sort(key=lambda j: (j[0] != "iris" and j[1] == "dataflow RF4", j[3] != "xc7z020"))
        for ex, name, d, target in jobs:
            path = d.write(Path(tmp) / f"{ex}-{name.replace(' ', '_').replace('=', '')}-{target}")
            row: dict[str, Any] = {"example": ex, "design": name, "target": target, "digest": d.digest(),
                                   "latency": d.latency_cycles, "ii": d.ii_cycles}
            try:
                r = synthesize(path, target, bitstream=target.startswith("ecp5"))
                # the Vivado hint names a temporary directory: keep only that these are yosys estimates
                note = "yosys estimates" if r.note.startswith("yosys estimates") else r.note
                row.update(lut=r.lut, ff=r.ff, dsp=r.dsp, bram=r.bram, fmax_mhz=r.fmax_mhz, seconds=r.wall_seconds,
                           note=note)
            except BondflowError as e:
                row["error"] = str(e)
            _record(row)
            print(row, flush=True)


if __name__ == "__main__":
    main()

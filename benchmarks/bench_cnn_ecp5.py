"""CNN designs placed and routed on an ECP5-85k (yosys + nextpnr, YoWASP): bitstream, fmax, LUT4s and wall time per step.

Slow (the digits CNN takes yosys and nextpnr an hour or more on 2 cores), so ``run_all`` skips it (BY_HAND). Designs are
written under ``--workdir`` and synthesis is cached there by digest: a second run reports the first one's result.
A run stopped by ``--timeout`` (per tool) is recorded as such, with the phase it reached.

    .venv/bin/python benchmarks/bench_cnn_ecp5.py [--designs digits_cnn:moldable:cores=4,...] [--timeout 4000]
    .venv/bin/python benchmarks/bench_cnn_ecp5.py --designs \
        digits_cnn:dataflow:parallelism=auto:multipliers=auto:target=ecp5-85k
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.errors import BondflowError  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: The digits CNN's full-parallelism multiplier-free dataflow design did not route on the 85k within an hour with
#: either nextpnr router (docs/dataflow_cnn.md); at parallelism 1 with its dense tail shared it routes in ~10 min.
DEFAULT_DESIGNS = "digits_cnn:moldable:cores=4,digits_cnn:dataflow:parallelism=1:reuse_factor=64:multipliers=lut"


def _options(parts: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for p in parts:
        k, v = p.split("=", 1)
        opts[k] = int(v) if v.isdigit() else v
    return opts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default=DEFAULT_DESIGNS, help="comma list of EXAMPLE:ARCH[:KEY=VALUE...]")
    ap.add_argument("--timeout", type=float, default=4000, help="seconds per tool (yosys, nextpnr)")
    ap.add_argument("--workdir", default=str(ROOT / "build" / "ecp5"))
    args = ap.parse_args()
    rows = []
    for spec in args.designs.split(","):
        example, arch, *rest = spec.split(":")
        opts = _options(rest)
        g = bondflow.load_model(ROOT / "examples" / example / "model.h5")
        design = bondflow.generate(g, arch, **opts)
        tag = "_".join([example, arch] + [f"{k}{v}" for k, v in opts.items()])
        d = Path(args.workdir) / tag
        if not d.exists():
            design.write(d)
        row: dict[str, Any] = {"example": example, "arch": arch, "options": opts, "digest": design.graph_digest,
                               "latency_cycles": design.latency_cycles, "ii_cycles": design.ii_cycles}
        t0 = time.monotonic()
        try:
            s = synthesize(d, "ecp5-85k", bitstream=True, timeout=args.timeout)
            row.update(bitstream=bool(s.bitstream), bitstream_bytes=s.bitstream_bytes, fmax_mhz=s.fmax_mhz,
                       lut4=s.lut, ff=s.ff, dsp=s.dsp, bram=s.bram, cached=s.cached,
                       synth_seconds=round(s.wall_seconds, 1))
        except BondflowError as e:
            row.update(bitstream=False, error=str(e), seconds=round(time.monotonic() - t0, 1))
        rows.append(row)
        print(json.dumps(row), flush=True)
    # rows of designs not run this time stay (each takes an hour or more), marked with the run they came from
    prev_path = RESULTS / "cnn_ecp5.json"
    prev = json.loads(prev_path.read_text()).get("rows", []) if prev_path.exists() else []
    ran = {(r["example"], r["arch"], json.dumps(r["options"], sort_keys=True)) for r in rows}
    kept = [{**r, "from_earlier_run": True} for r in prev
            if (r["example"], r["arch"], json.dumps(r["options"], sort_keys=True)) not in ran]
    write("cnn_ecp5", {"target": "ecp5-85k", "timeout_per_tool_s": args.timeout, "rows": kept + rows})


if __name__ == "__main__":
    main()

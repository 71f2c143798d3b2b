"""dataflow's streaming CNNs: cycles per image, II (Verilator, 1000 images vs golden), xc7z020 resources (yosys), ECP5 fmax.

Settings per example: every output channel per cycle with DSP-style constant multipliers, the same multiplier-free
(lut), shared multipliers (parallelism), and auto (parallelism and multipliers auto: the fewest multipliers at the
full design's II, the xc7z020's DSPs to shared multipliers first). The hls4ml C simulation declares no latency (that needs vendor HLS), so
its column stays empty unless Vivado/Vitis ran. ``--ecp5`` also places and routes on an ECP5-85k (slow: minutes to an
hour per design). Arguments (example names) run only those examples, `--settings=full lut,...` only those settings;
their rows replace the same settings' rows.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.sim.runner import simulate  # noqa: E402
from bondflow.synth.flow import synthesize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: (example, setting name, generate options)
AUTO = {"parallelism": "auto", "multipliers": "auto"}  # fewest multipliers at full parallelism's II, DSPs first
SETTINGS = [("digits_cnn", "full dsp", {}), ("digits_cnn", "full lut", {"multipliers": "lut"}),
            ("digits_cnn", "parallelism 4", {"parallelism": 4}), ("digits_cnn", "auto", AUTO),
            ("conv1d", "full dsp", {}), ("conv1d", "full lut", {"multipliers": "lut"}), ("conv1d", "parallelism 2", {"parallelism": 2}),
            ("conv1d", "auto", AUTO),
            ("residual_cnn", "full lut", {"multipliers": "lut"}), ("residual_cnn", "parallelism 4", {"parallelism": 4}),
            ("residual_cnn", "auto", AUTO),
            ("hgq_digits_cnn", "full lut", {"multipliers": "lut"}), ("hgq_digits_cnn", "auto", AUTO)]


def model_file(example: str) -> Path:
    """The example's model: model.h5 (QKeras) or model.keras (HGQ2)."""
    d = ROOT / "examples" / example
    return next(p for p in (d / "model.h5", d / "model.keras") if p.exists())


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    ecp5 = "--ecp5" in sys.argv
    only = {s for a in sys.argv[1:] if a.startswith("--settings=") for s in a.split("=", 1)[1].split(",")}  # e.g. "full lut"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ex, name, opts in SETTINGS:
            if (args and ex not in args) or (only and name not in only):
                continue
            g = bondflow.load_model(model_file(ex))
            data = np.load(ROOT / "examples" / ex / "data.npz")["x_test"]
            t0 = time.monotonic()
            design = bondflow.generate(g, "dataflow", **opts)
            t_gen = time.monotonic() - t0
            d = design.write(Path(tmp) / f"{ex}-{name.replace(' ', '_')}")
            r = simulate(d, 1000, simulator="verilator", data=data, seed=1)
            s = synthesize(d, "xc7z020")
            row = {"example": ex, "setting": name, "options": opts, "bit_exact": r.passed, "images": r.vectors,
                   "backpressure": r.backpressure, "latency_cycles": r.latency_cycles, "ii_cycles": r.ii_cycles,
                   "declared": [design.latency_cycles, design.ii_cycles], "parallelism": design.info.get("parallelism"),
                   "shared_dsp": design.info.get("shared_dsp"), "input_pixels": int(np.prod(g.input.shape[:-1])),
                   "lut": s.lut, "ff": s.ff, "dsp": s.dsp, "bram": s.bram, "xc7z020_util_pct": s.utilization_pct,
                   "generate_seconds": round(t_gen, 1), "synth_seconds": round(s.wall_seconds, 1),
                   "hls4ml_declared_latency": None}
            if ecp5:
                p = synthesize(d, "ecp5-85k", bitstream=True)
                row.update(ecp5_lut=p.lut, ecp5_fmax_mhz=p.fmax_mhz, ecp5_bitstream=bool(p.bitstream))
            rows.append(row)
            print(row, flush=True)
    path = RESULTS / "cnn_dataflow.json"
    key = lambda r: (r["example"], r["setting"])  # noqa: E731
    done = {key(r) for r in rows}
    kept = [r for r in json.loads(path.read_text())["rows"] if key(r) not in done] if path.exists() and (args or only) else []
    order = [(e, n) for e, n, _ in SETTINGS]
    write("cnn_dataflow", {"rows": sorted(kept + rows, key=lambda r: order.index(key(r)) if key(r) in order else len(order))})


if __name__ == "__main__":
    main()

"""`bondflow compare MODEL --arch a,b --target T -o report/`: every architecture through every step, one report."""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

from .fidelity_args import add_fidelity_args, announce, load_data, load_graph

_OPTION_NAMES = {"rf": "reuse_factor", "cores": "cores", "lanes": "lanes", "stage_adders": "stage_adders",
                 "parallelism": "parallelism"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="generate, verify and synthesize several architectures; write a report")
    p.add_argument("model")
    p.add_argument("--arch", default="dataflow,hls4ml",
                   help="comma list; NAME, NAME:rf=R or moldable:cores=N|auto[:lanes=L] (e.g. dataflow,dataflow:rf=4,moldable:cores=16:lanes=4,hls4ml)")
    p.add_argument("--target", default="xc7z020")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--vectors", type=int, default=500)
    p.add_argument("--simulator", choices=["icarus", "verilator"], default="icarus")
    p.add_argument("--data", help="npz with x_test (and y_test) for accuracy; default: the example's data.npz next to the model")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="clock for latency in ns and throughput where no placed-and-routed fmax exists (Xilinx parts)")
    p.add_argument("--default-precision", help="precision for float layers, e.g. 'fixed<16,6>'")
    p.add_argument("--input-precision", help="precision of the inputs")
    p.add_argument("--weights", help="weights file of a Keras architecture JSON (default: model_weights.h5 next to it)")
    p.add_argument("--synth-timeout", type=float, default=None, metavar="SECONDS",
                   help="leave a design unsynthesized (verified, no resource figures) when yosys runs longer than this")
    add_fidelity_args(p)
    p.set_defaults(func=run)


def parse_arch_specs(text: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """``--arch`` items (``NAME[:key=value...]``) -> {item: (architecture, generator options)}; ConfigError when bad."""
    from ..codegen.base import architectures
    from ..errors import ConfigError
    archs: dict[str, tuple[str, dict[str, Any]]] = {}
    for item in filter(None, (a.strip() for a in text.split(","))):
        name, _, opt = item.partition(":")
        if name not in architectures():
            raise ConfigError(f"architecture must be one of {', '.join(architectures())}, not {name!r}")
        opts: dict[str, Any] = {}
        for o in filter(None, opt.split(":")):  # moldable:cores=16:lanes=4, moldable:cores=auto
            k, _, v = o.partition("=")
            if k == "cores" and name == "moldable" and v == "auto":
                opts["cores"] = "auto"
                continue
            if k == "parallelism" and name == "dataflow" and v == "auto":
                opts["parallelism"] = "auto"
                continue
            if k == "multipliers" and name == "dataflow" and v in ("lut", "dsp", "auto"):
                opts["multipliers"] = v  # dataflow:multipliers=lut; auto fits compare's --target (see run)
                continue
            if k not in _OPTION_NAMES or not v.isdigit():
                raise ConfigError("architecture option must be rf=N, cores=N, lanes=N, stage_adders=N or parallelism=N "
                                  f"(moldable also cores=auto, dataflow also multipliers=lut|dsp|auto and parallelism=auto), not {o!r}")
            opts[_OPTION_NAMES[k]] = int(v)
        archs[item] = (name, opts)
    return archs


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..compare.flow import compare
    from ..compare.report import write_report
    from ..fsutil import check_unlocked, lock_dir
    from ..progress import get_reporter
    from ..synth.targets import get_target
    get_target(args.target)
    check_unlocked(Path(args.output))  # refuse before the slow model load; the lock itself is taken below
    archs = parse_arch_specs(args.arch)
    for name, o in archs.values():
        if name == "dataflow" and o.get("multipliers") == "auto":
            o["target"] = args.target  # fit the DSPs of the device being compared on
    get_reporter().step(f"load {args.model}")  # Keras imports take seconds before the first step
    g = load_graph(args, args.model, default_precision=args.default_precision, input_precision=args.input_precision,
                   weights=args.weights)
    if any(o.get("reuse_factor") for _, o in archs.values()):
        from ..codegen.hls4ml.generator import closest_valid_reuse
        for key, (name, o) in archs.items():
            if "reuse_factor" in o:
                o["reuse_factor"] = closest_valid_reuse(g, o["reuse_factor"])
    data_path = Path(args.data) if args.data else Path(args.model).with_name("data.npz")
    x = y = None
    if data_path.exists():
        d = np.load(data_path)
        x, y = d["x_test"], d.get("y_test")
    float_model = None
    if x is not None and not args.no_fidelity:
        from ..frontend.float_model import float_predict
        float_model = float_predict(args.model, x)
    fid = None
    if not args.no_fidelity:  # one run of the source model on the example data serves accuracy and fidelity
        from ..fidelity import measure
        own = args.fidelity_data is not None
        fid = measure(g, args.model, data=load_data(args.fidelity_data) if own else x,
                      reference=None if own or x is None else float_model)
        # Under -q the fidelity line is progress, not the result (the report carries it); warnings still print.
        announce(args, fid, io.StringIO() if get_reporter().quiet else sys.stderr)
    out = Path(args.output)
    with lock_dir(out):  # compare() takes it too (nested); held here so the report belongs to this run as well
        results = compare(g, archs, args.target, out, args.vectors, args.simulator, x, y,
                          get_reporter().step, float_model=float_model, fidelity=fid, clock_mhz=args.clock_mhz,
                          synth_timeout=args.synth_timeout)
        saved = json.loads((out / "results.json").read_text())
        md, html = write_report(results, out, g.name, args.target, float_model=saved["float_model"],
                                fidelity=saved["fidelity"], metrics={r["label"]: r["metrics"] for r in saved["results"]})
    print(md.read_text())
    print(f"report: {html}")
    # Refusals (an architecture that cannot express the model) are reported, not failures.
    return 0 if all(r.status in ("ok", "refused") for r in results) and any(r.status == "ok" for r in results) else 1


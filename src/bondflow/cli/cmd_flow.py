"""`bondflow flow MODEL --target T --board B [constraints] -o OUT`: import, candidates, verify, synth, choose, deploy."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .cmd_choose import add_constraint_args, constraints_from, describe

#: Every architecture with a small grid: dataflow with DSP multipliers, multiplier-free and at reuse factor 4, da4ml,
#: moldable's default and a wide one, hls4ml, BondMachine (models an architecture cannot build are reported as refused).
DEFAULT_ARCHS = "dataflow,dataflow:multipliers=lut,dataflow:rf=4,da4ml,moldable,moldable:cores=16:lanes=4,hls4ml,bondmachine"
#: For CNNs: what builds them (da4ml and BondMachine have no convolution; a CNN shares multipliers by parallelism).
DEFAULT_CNN_ARCHS = "dataflow:multipliers=lut,dataflow:parallelism=auto:multipliers=auto,moldable,hls4ml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flow", help="the whole mission: compare candidates, choose under constraints, deploy the chosen one")
    p.add_argument("model")
    p.add_argument("--target", default="xc7z020", help="part to synthesize for (resources, fit)")
    p.add_argument("--board", required=True, help="deploy bundle for this board or card (e.g. pynq-z2, alveo-u55c)")
    p.add_argument("-o", "--output", required=True, help="flow directory: report/, bundle/, flow.json")
    p.add_argument("--arch", default=None, help=f"candidates, as for compare (default: {DEFAULT_ARCHS}; for a CNN "
                                                f"{DEFAULT_CNN_ARCHS})")
    p.add_argument("--vectors", type=int, default=500)
    p.add_argument("--simulator", choices=["icarus", "verilator"], default="icarus")
    p.add_argument("--clock-mhz", type=float, default=None, help="clock where no placed-and-routed fmax exists")
    p.add_argument("--default-precision")
    p.add_argument("--input-precision")
    p.add_argument("--weights")
    p.add_argument("--synth-timeout", type=float, default=None, metavar="SECONDS",
                   help="as for compare: a design whose synthesis runs longer stays unsynthesized (and is not chosen)")
    add_constraint_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compare.choose import choose, load_report
    from ..deploy.package import deploy
    from ..fsutil import atomic_write_text
    from ..progress import get_reporter
    from ..synth.targets import get_target
    from .main import build_parser
    get_target(args.target)
    if args.fit:
        get_target(args.fit)
    out = Path(args.output)
    report_dir = out / "report"
    if args.arch is None:
        from .. import load_model
        g = load_model(args.model, default_precision=args.default_precision, input_precision=args.input_precision,
                       weights=args.weights)
        args.arch = DEFAULT_CNN_ARCHS if g.is_shaped() else DEFAULT_ARCHS
    cargv = ["compare", args.model, "--arch", args.arch, "--target", args.target, "-o", str(report_dir),
             "--vectors", str(args.vectors), "--simulator", args.simulator]
    for flag, v in (("--clock-mhz", args.clock_mhz), ("--default-precision", args.default_precision),
                    ("--input-precision", args.input_precision), ("--weights", args.weights),
                    ("--synth-timeout", args.synth_timeout)):
        if v is not None:
            cargv += [flag, str(v)]
    say = get_reporter().step
    say(f"flow: 1/3 compare {args.arch} on {args.target} -> {report_dir}")
    cargs = build_parser().parse_args(cargv)
    cargs.func(cargs)  # a failed candidate is in the report; choose decides whether any design is left
    say("flow: 2/3 choose")
    report = load_report(report_dir)
    choice = choose(report, constraints_from(args, args.clock_mhz))
    atomic_write_text(report_dir / "chosen.json", json.dumps(choice.to_dict(), indent=1))
    print(describe(choice))
    label = choice.chosen.label
    design_dir = report_dir / label.replace(":", "_").replace("=", "") / choice.chosen.arch / "design"
    say(f"flow: 3/3 deploy {label} for {args.board}")
    bundle = deploy(design_dir, args.board, out / "bundle", force=True)
    summary = {"model": str(args.model), "target": args.target, "board": args.board, "report": str(report_dir),
               "bundle": str(bundle), "deployed": label, "design": str(design_dir), "choice": choice.to_dict()}
    atomic_write_text(out / "flow.json", json.dumps(summary, indent=1))
    md = report_dir / "report.md"
    atomic_write_text(md, md.read_text() + f"\n## Deployed\n\n**{label}** deployed for {args.board} in `{bundle}`: "
                                           f"{choice.why}.\n")
    print(f"deployed {label} -> {bundle} (driver: from bondflow_driver import Accelerator; Accelerator('{bundle}').predict(X))")
    return 0

"""`bondflow sim DESIGN_DIR`: verify a design's RTL in cocotb against its reference model."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulate a design against the golden model (cocotb)")
    p.add_argument("design", help="design directory (with design.json)")
    p.add_argument("--simulator", choices=["icarus", "verilator", "auto"], default="icarus",
                   help="icarus (the default), verilator, or auto: Verilator for a design above 4 MB of RTL, Icarus otherwise")
    p.add_argument("--vectors", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--waves", action="store_true", help="write a waveform (VCD for Icarus, FST for Verilator)")
    p.add_argument("--no-backpressure", action="store_true", help="turn off random idle and back-pressure")
    p.add_argument("--timeout-cycles", type=int, default=None, help="fail when no output comes for this many cycles")
    p.add_argument("--out", default=None, help="where to write sim_result.json: a directory or a .json path "
                                                "(default: the design directory)")
    p.add_argument("--no-fidelity", action="store_true", help="do not run the source model (no fidelity record)")
    p.add_argument("--min-agreement", type=float, default=None, metavar="X",
                   help="fail (exit 18) when class agreement with the source model is below X")
    p.add_argument("--max-error", type=float, default=None, metavar="X",
                   help="fail (exit 18) when the mean error is above X of the source's output range")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..errors import ConfigError

    from ..sim.runner import simulate
    if args.vectors < 1:
        raise ConfigError(f"--vectors must be >= 1, not {args.vectors}")
    if args.timeout_cycles is not None and args.timeout_cycles < 1:
        raise ConfigError(f"--timeout-cycles must be >= 1, not {args.timeout_cycles}")
    out = Path(args.design) / "sim_result.json"
    if args.out:
        out = Path(args.out) if args.out.endswith(".json") else Path(args.out) / "sim_result.json"
    from ..design import Design
    from ..fidelity import Fidelity, check, measure, recorded
    design = Design.load(args.design)
    graph = design.graph()
    rec = design.info.get("fidelity")
    fid = Fidelity.from_dict(rec) if isinstance(rec, dict) and rec.get("graph_digest") == graph.digest() else recorded(graph)
    if fid is None and not args.no_fidelity:  # measured before the simulation, so a broken source model costs nothing
        fid = measure(graph)
    r = simulate(args.design, args.vectors, simulator=args.simulator, seed=args.seed, waves=args.waves,
                 backpressure=not args.no_backpressure, timeout_cycles=args.timeout_cycles, result_path=out,
                 fidelity=fid)
    print(r.summary())
    if fid is not None:
        print("  " + fid.for_design(r.passed, r.vectors).summary())
        for w in fid.warnings:
            print(f"bondflow: WARNING: poor fidelity: {w}", file=sys.stderr)
    print(f"  result: {out}")
    if not r.passed:
        return 10
    if fid is not None:
        check(fid, args.min_agreement, args.max_error)
    elif args.min_agreement is not None or args.max_error is not None:
        raise ConfigError("--min-agreement/--max-error need a fidelity measurement, not --no-fidelity")
    return 0

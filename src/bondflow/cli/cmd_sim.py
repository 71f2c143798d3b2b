"""`bondflow sim DESIGN_DIR`: verify a design's RTL in cocotb against its reference model."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulate a design against the golden model (cocotb)")
    p.add_argument("design", help="design directory (with design.json)")
    p.add_argument("--simulator", choices=["icarus", "verilator"], default="icarus")
    p.add_argument("--vectors", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--waves", action="store_true", help="write a waveform (VCD for Icarus, FST for Verilator)")
    p.add_argument("--no-backpressure", action="store_true", help="turn off random idle and back-pressure")
    p.add_argument("--timeout-cycles", type=int, default=None, help="fail when no output comes for this many cycles")
    p.add_argument("--out", default=None, help="where to write sim_result.json: a directory or a .json path "
                                                "(default: the design directory)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from pathlib import Path

    from ..sim.runner import simulate
    if args.vectors < 1:
        raise ConfigError(f"--vectors must be >= 1, not {args.vectors}")
    if args.timeout_cycles is not None and args.timeout_cycles < 1:
        raise ConfigError(f"--timeout-cycles must be >= 1, not {args.timeout_cycles}")
    out = Path(args.design) / "sim_result.json"
    if args.out:
        out = Path(args.out) if args.out.endswith(".json") else Path(args.out) / "sim_result.json"
    r = simulate(args.design, args.vectors, simulator=args.simulator, seed=args.seed, waves=args.waves,
                 backpressure=not args.no_backpressure, timeout_cycles=args.timeout_cycles, result_path=out)
    print(r.summary())
    print(f"  result: {out}")
    return 0 if r.passed else 10

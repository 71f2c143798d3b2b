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
    p.add_argument("--timeout-cycles", type=int, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..sim.runner import simulate
    if args.vectors < 1:
        raise ConfigError(f"--vectors must be >= 1, not {args.vectors}")
    r = simulate(args.design, args.vectors, simulator=args.simulator, seed=args.seed, waves=args.waves,
                 backpressure=not args.no_backpressure, timeout_cycles=args.timeout_cycles)
    print(r.summary())
    print(f"  result: {args.design}/sim_result.json")
    return 0 if r.passed else 10

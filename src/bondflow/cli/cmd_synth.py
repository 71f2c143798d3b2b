"""`bondflow synth DESIGN_DIR --target T`: resources, fmax, bitstream; `--list-targets` shows the registry."""
from __future__ import annotations

import argparse

from ..synth.targets import TARGETS
from .table import format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthesize a design (yosys/nextpnr; Vivado when present)")
    p.add_argument("design", nargs="?", help="design directory")
    p.add_argument("--target", default="xc7z020", help="see --list-targets")
    p.add_argument("--clock-mhz", type=float, default=None)
    p.add_argument("--bitstream", action="store_true", help="place, route and write a bitstream (ECP5/iCE40; Xilinx needs --vivado)")
    p.add_argument("--vivado", action="store_true", help="run the generated Vivado scripts (requires vivado on PATH)")
    p.add_argument("--force", action="store_true", help="ignore the cache")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop yosys (and nextpnr) past this many seconds each (exit 9; default: an hour, two for nextpnr)")
    p.add_argument("--router", choices=("router1", "router2"), default=None,
                   help="nextpnr's router with --bitstream (default nextpnr's, router1 on ECP5; router2 for big designs)")
    p.add_argument("--list-targets", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    if args.list_targets:
        print(format_table(("target", "board", "flow", "part", "LUT", "FF", "DSP", "BRAM", "default MHz"),
                           [(t.name, t.board, t.flow, t.part, t.luts, t.ffs, t.dsps, t.brams, t.clock_mhz) for t in TARGETS.values()]))
        return 0
    if not args.design:
        raise ConfigError("a design directory must be given, not omitted (or use --list-targets)")
    if args.clock_mhz is not None and not 0 < args.clock_mhz <= 2000:
        raise ConfigError(f"--clock-mhz must be in (0, 2000], not {args.clock_mhz}")
    from ..synth.flow import synthesize
    r = synthesize(args.design, args.target, args.clock_mhz, args.bitstream, vivado=args.vivado, force=args.force,
                   timeout=args.timeout, router=args.router)
    print(r.summary())
    print(f"  report: {args.design}/synth_report.json")
    return 0

"""`bondflow choose REPORT_DIR [constraints]`: pick the design that meets fit, latency and throughput, best by an objective."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_constraint_args(p: argparse.ArgumentParser) -> None:
    from ..compare.choose import OBJECTIVES
    g = p.add_argument_group("constraints")
    g.add_argument("--fit", metavar="PART", help="the part the design must fit (default: the report's target)")
    g.add_argument("--max-latency-ns", type=float, default=None, metavar="NS", help="latency limit in nanoseconds")
    g.add_argument("--min-throughput", type=float, default=None, metavar="PER_S", help="inferences per second, at least")
    g.add_argument("--objective", default="lut", choices=list(OBJECTIVES),
                   help="what the best design minimizes (throughput: maximizes; util: its largest resource share)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("choose", help="choose a design from a compare report under constraints; write chosen.json")
    p.add_argument("report", help="a bondflow compare output directory (results.json)")
    add_constraint_args(p)
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="clock where no placed-and-routed fmax exists (default: the report's, else the target's)")
    p.set_defaults(func=run)


def constraints_from(args: argparse.Namespace, clock_mhz: float | None):
    from ..compare.choose import Constraints
    return Constraints(fit=args.fit, max_latency_ns=args.max_latency_ns, min_throughput=args.min_throughput,
                       objective=args.objective, clock_mhz=clock_mhz)


def describe(choice) -> str:
    """The chosen design, why, the runners-up and the excluded, as a person reads them."""
    c = choice.chosen.to_dict()
    lines = [f"chosen: {c['label']} ({c['arch']}) on {choice.target}: {c['latency_cycles']} cycles = "
             f"{c['latency_ns']:.1f} ns at {c['clock_mhz']:.4g} MHz ({c['clock_source']}), "
             f"{c['throughput_per_s']:.3g} inferences/s, LUT {c['lut']} ({c['util_lut']:.1f} %), DSP {c['dsp']}",
             f"  why: {choice.why}"]
    for i, r in enumerate(choice.runners_up, 1):
        d = r.to_dict()
        lines.append(f"  runner-up {i}: {d['label']}: {d['latency_ns']:.1f} ns, {d['throughput_per_s']:.3g}/s, "
                     f"LUT {d['lut']}, DSP {d['dsp']}")
    for label, why in choice.excluded.items():
        lines.append(f"  excluded {label}: {why}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..compare.choose import choose, load_report
    from ..fsutil import atomic_write_text
    report = load_report(Path(args.report))
    choice = choose(report, constraints_from(args, args.clock_mhz or report.get("clock_mhz")))
    out = atomic_write_text(Path(args.report) / "chosen.json", json.dumps(choice.to_dict(), indent=1))
    print(describe(choice))
    print(f"  wrote {out}")
    return 0

"""`bondflow sweep SWEEP.toml [-o OUT] [--scheduler tcp://HOST:8786] [--workers N]`: a design-space sweep on Dask."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of architectures/options/targets on Dask; report the Pareto front")
    p.add_argument("sweep", help="sweep file (TOML; see docs/sweep.md)")
    p.add_argument("-o", "--output", help="output directory (default: build/<sweep file stem>); reruns resume from it")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786 (default: a local cluster)")
    p.add_argument("--workers", type=int, help="worker processes of the local cluster (default 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compare.sweep import expand, load_sweep, open_client, run_sweep
    from ..errors import ConfigError
    from ..fsutil import check_unlocked, lock_dir
    from ..progress import get_reporter
    if args.scheduler and args.workers is not None:
        raise ConfigError("--workers must be left out with --scheduler (the cluster decides its workers), not given")
    sweep = load_sweep(args.sweep)
    out = Path(args.output) if args.output else Path("build") / Path(args.sweep).stem
    check_unlocked(out)  # another sweep or compare writing here: refuse before loading models
    # Load models and resolve the grid before starting workers: bad input fails fast and cheaply.
    get_reporter().step(f"sweep: load {sweep.model} and expand the grid")
    points, graphs, data = expand(sweep)
    with lock_dir(out), open_client(args.scheduler, 2 if args.workers is None else args.workers) as client:
        records = run_sweep(sweep, out, client, points, graphs, data, get_reporter().step)
    print((out / "sweep.md").read_text())
    print(f"sweep: {out / 'sweep.json'}")
    statuses = [r["result"]["status"] for r in records]  # refusals (the model is beyond an architecture) are reported
    return 0 if all(st in ("ok", "refused") for st in statuses) and "ok" in statuses else 1

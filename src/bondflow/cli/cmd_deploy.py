"""`bondflow deploy DESIGN_DIR --board B -o bundle/`: a PYNQ bundle (manifest, driver, RTL, bitstream when built)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..deploy.card import CARDS
    from ..deploy.package import BOARDS
    p = sub.add_parser("deploy", help="write a PYNQ deploy bundle for a design (Zynq board or data-centre card)")
    p.add_argument("design")
    p.add_argument("--board", required=True, help=f"one of {', '.join([*BOARDS, *CARDS])}")
    p.add_argument("--no-build", action="store_true", help="cards: write the Vitis scripts without running them")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--force", action="store_true")
    p.add_argument("--host", help="user@board: copy the bundle there over ssh and benchmark it")
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--identity", help="ssh private key")
    p.add_argument("--remote-python", default="python3")
    p.add_argument("--backend", choices=["pynq", "sim"], default="pynq", help="driver backend on the remote side")
    p.add_argument("--inputs", help="npz/npy of inputs for the remote benchmark (default: 1000 random samples)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..deploy.card import CARDS
    from ..deploy.package import deploy
    if args.host and args.board in CARDS:
        from ..errors import ConfigError
        raise ConfigError(f"--host must be used with a Zynq board for remote benchmarks, not with card {args.board}")
    out = deploy(args.design, args.board, args.output, force=args.force, build=not args.no_build)
    import json
    m = json.loads((out / "manifest.json").read_text())
    if m.get("kind") == "xrt-kernel":
        k = m["kernel"]
        print(f"wrote {out}: {m['arch']} as RTL kernel {k['name']} for {m['board']} ({m['platform']}), "
              f"{k['input']['slot_bytes']}-byte input / {k['output']['slot_bytes']}-byte output slots, "
              f"xclbin: {m['xclbin'] or 'missing (' + m['xclbin_howto'] + ')'}")
        print(f"  on the host: from bondflow_driver import Accelerator; y = Accelerator('{out}').predict(X)")
        return 0
    print(f"wrote {out}: {m['arch']} for {m['board']}, bitstream: {m['bitstream'] or 'missing (' + m['bitstream_howto'] + ')'}")
    print(f"  on the board: from bondflow_driver import Accelerator; y = Accelerator('{out}').predict(X)")
    if args.host:
        import numpy as np
        from ..deploy.remote import run_remote
        from ..fsutil import atomic_write_text
        from ..ir.types import FixedType
        t = FixedType.parse(m["interface"]["input_type"])
        if args.inputs:
            data = np.load(args.inputs)
            x = data["x_test"] if hasattr(data, "files") else data
        else:
            x = np.random.default_rng(0).uniform(t.min_value, t.max_value, (1000, m["interface"]["input"]["n"]))
        r = run_remote(out, args.host, x, backend=args.backend, port=args.port, identity=args.identity,
                       python=args.remote_python)
        np.save(out / "remote_predictions.npy", r["y"])
        atomic_write_text(out / "remote_benchmark.json", json.dumps({k: v for k, v in r.items() if k != "y"}, indent=1))
        print(f"  {args.host}: {r['n']} inferences in {r['seconds']:.4f} s ({r['inferences_per_s']:,.0f}/s); "
              f"predictions in {out}/remote_predictions.npy")
    return 0

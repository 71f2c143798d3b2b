"""`bondflow deploy DESIGN_DIR --board B -o bundle/`: a PYNQ bundle (manifest, driver, RTL, bitstream when built)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..deploy.package import BOARDS
    p = sub.add_parser("deploy", help="write a PYNQ deploy bundle for a design")
    p.add_argument("design")
    p.add_argument("--board", required=True, help=f"one of {', '.join(BOARDS)}")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..deploy.package import deploy
    out = deploy(args.design, args.board, args.output, force=args.force)
    import json
    m = json.loads((out / "manifest.json").read_text())
    print(f"wrote {out}: {m['arch']} for {m['board']}, bitstream: {m['bitstream'] or 'missing (' + m['bitstream_howto'] + ')'}")
    print(f"  on the board: from bondflow_driver import Accelerator; y = Accelerator('{out}').predict(X)")
    return 0

"""`bondflow import MODEL -o graph.json [--onnx graph.onnx]`: write the computational graph."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import OutputExistsError
from .fidelity_args import add_fidelity_args, load_graph, report_fidelity


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a model into bondflow's graph JSON (and optionally ONNX)")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True, help="graph JSON to write")
    p.add_argument("--onnx", help="also write the graph as QONNX")
    p.add_argument("--default-precision")
    p.add_argument("--input-precision")
    p.add_argument("--trust-model", action="store_true")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--weights", help="weights file of a Keras architecture JSON (default: model_weights.h5 next to it)")
    add_fidelity_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outs = [Path(args.output)] + ([Path(args.onnx)] if args.onnx else [])
    for o in outs:
        if o.exists() and not args.force:
            raise OutputExistsError(f"output must not exist (or pass --force), not exist: {o}")
    g = load_graph(args, args.model, default_precision=args.default_precision, input_precision=args.input_precision,
                   weights=args.weights,
                   trust_model=args.trust_model)
    fid = report_fidelity(args, g, args.model)  # a limit it misses stops here, before anything is written
    if fid is not None:  # the graph JSON carries its record (meta: not in the digest), so later steps reuse it
        from ..ir.graph import Graph
        g = Graph(name=g.name, input=g.input, ops=g.ops, meta=dict(g.meta, fidelity=fid.to_dict()))
    onnx_bytes = None
    if args.onnx:  # build everything first: nothing is written if any step fails
        from ..frontend.onnx_export import graph_to_onnx_bytes
        onnx_bytes = graph_to_onnx_bytes(g)
    g.save(outs[0])
    if onnx_bytes is not None:
        from ..fsutil import atomic_write_bytes
        atomic_write_bytes(outs[1], onnx_bytes)
    print(f"wrote {outs[0]} (graph '{g.name}', {len(g.ops)} ops, {g.macs()} MACs, digest {g.digest()[:16]})"
          + (f" and {outs[1]}" if args.onnx else ""))
    return 0

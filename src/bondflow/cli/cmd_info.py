"""`bondflow info MODEL|DESIGN_DIR`: per-layer table of a model, or the summary of a generated design."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..ir.graph import Graph
from ..ir.ops import Dense
from .fidelity_args import add_fidelity_args, load_graph, report_fidelity
from .table import format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show a model's layers (types, params, pruning, MACs) or a design's summary")
    p.add_argument("path", help="model file (.h5/.keras/.onnx/.json) or design directory")
    p.add_argument("--default-precision", help="precision for float layers, e.g. 'fixed<16,6>'")
    p.add_argument("--input-precision", help="precision of the inputs, e.g. 'fixed<8,3,RND_CONV,SAT>'")
    p.add_argument("--trust-model", action="store_true", help="allow Lambda layers (executes code from the file)")
    p.add_argument("--weights", help="weights file of a Keras architecture JSON (default: model_weights.h5 next to it)")
    add_fidelity_args(p)
    p.set_defaults(func=run)


def _shape(s: tuple[int, ...]) -> str:
    return "(" + ",".join(map(str, s)) + ("," if len(s) == 1 else "") + ")"


def graph_table(g: Graph) -> str:
    """One row per tensor: shape, types, parameters, pruning and MACs (convolutions: per image)."""
    from ..ir.element_quant import ElementQuant
    from ..ir.tensor_ops import Conv, Pool, Upsample
    shapes = g.shapes()
    rows: list[tuple[object, ...]] = [(g.input.name, "input", _shape(g.input.shape), "-", "-", str(g.input.type), 0, "-", 0)]
    sums = [0, 0, 0, 0]  # params, non-zero weights, weights, MACs
    for op in g.ops:
        if isinstance(op, (Dense, Conv)):
            nz = op.nonzero()
            kind = "dense" if isinstance(op, Dense) else f"conv{len(op.kernel)}d {'x'.join(map(str, op.kernel))}"
            macs = op.macs() if isinstance(op, Dense) else op.macs_for(shapes[op.name])
            params, weights = op.params(), op.weights
            if isinstance(op, Dense) and op.n_in == op.n_out > 1 and nz == np.count_nonzero(np.diag(op.weight)):
                # diagonal (e.g. a BatchNormalization no layer absorbs): a scale and a shift per feature, not a matrix
                kind, macs, params, weights = "scale+shift", op.n_out, 2 * op.n_out, op.n_out
            if isinstance(op, Conv) and op.groups > 1:
                kind += " depthwise" if op.groups == op.c_in else f" {op.groups} groups"
                if op.groups == op.c_in == op.c_out and set(op.kernel) == {1}:  # a per-channel BatchNormalization
                    kind, params, weights = "scale+shift", 2 * op.c_out, op.c_out
            rows.append((op.name, kind, _shape(shapes[op.name]), str(op.weight_type), str(op.bias_type),
                         str(op.result_type), params, f"{nz}/{weights} ({100 * nz / weights:.0f}%)", macs))
            sums = [sums[0] + params, sums[1] + nz, sums[2] + weights, sums[3] + macs]
        else:
            kind = getattr(op, "function", op.kind)
            if isinstance(op, Pool):
                kind = f"{op.function} pool " + ("global" if not any(op.pool) else "x".join(map(str, op.pool)))
            elif isinstance(op, Upsample):
                kind = "upsample " + "x".join(map(str, op.size))
            elif isinstance(op, ElementQuant):  # HGQ's per-element widths: their spread is the point of the model
                bits = op.k + op.i + op.f
                zero = int(np.count_nonzero(bits <= 0))
                kind = f"quant {int(bits.min())}-{int(bits.max())} bits, mean {bits.mean():.1f}" + \
                    (f", {zero} pruned" if zero else "")
            rows.append((op.name, kind, _shape(shapes[op.name]), "-", "-", str(op.result_type), op.params(), "-", 0))
            sums[0] += op.params()
    header = ("layer", "type", "shape", "weight", "bias", "result", "params", "non-zero weights", "MACs")
    if not g.is_chain():  # branches: say what each op reads
        header = header[:2] + ("reads",) + header[2:]
        reads = ["-"] + [", ".join(op.inputs) for op in g.ops]
        rows = [r[:2] + (src,) + r[2:] for r, src in zip(rows, reads)]
    total: tuple[object, ...] = ("total", "", "", "", "", "", sums[0], f"{sums[1]}/{sums[2]}", sums[3])
    rows.append(total if g.is_chain() else total[:2] + ("",) + total[2:])
    return format_table(header, rows)


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.is_dir() and (path / "design.json").is_file():
        from ..design import Design
        d = Design.load(path)
        try:
            from ..design_info import describe  # architectures may add richer summaries
            print(describe(d))
        except ImportError:
            m = d.manifest()
            print(f"design {path}: arch {d.arch}, top {d.top}, {len(d.rtl_files)} RTL files, graph {d.graph_digest[:12]}")
            print(json.dumps({k: m[k] for k in ("latency_cycles", "ii_cycles", "info")}, indent=1, default=str))
        return 0
    g = load_graph(args, str(path), default_precision=args.default_precision, input_precision=args.input_precision,
                   weights=args.weights,
                   trust_model=args.trust_model)
    print(f"model {path} -> graph '{g.name}' digest {g.digest()[:16]}")
    print(graph_table(g))
    report_fidelity(args, g, str(path))
    return 0

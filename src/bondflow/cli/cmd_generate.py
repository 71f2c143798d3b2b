"""`bondflow generate MODEL --arch NAME -o DIR`: generate one architecture's design directory, linted."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .fidelity_args import add_fidelity_args, load_graph, report_fidelity


def register(sub: argparse._SubParsersAction) -> None:
    from ..codegen.base import architectures
    p = sub.add_parser("generate", help="generate an architecture for a model")
    p.add_argument("model", help="model file or graph JSON")
    p.add_argument("--arch", required=True, metavar="ARCH", help=f"one of {', '.join(architectures())}")
    p.add_argument("-o", "--output", required=True, help="design directory to create")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.add_argument("--reuse-factor", type=int, default=None, help="multiplier reuse (dataflow, hls4ml)")
    p.add_argument("--cores", default=None,
                   help="moldable: processors per layer, one number, a comma list or 'auto' (sized from the model; the default)")
    p.add_argument("--lanes", type=int, default=None, help="moldable: multiply-accumulate lanes per processor (1..16)")
    p.add_argument("--strategy", choices=["latency", "resource"], default=None, help="hls4ml strategy")
    p.add_argument("--board", default=None, help="hls4ml: the VivadoAccelerator (PYNQ) project for this board, e.g. pynq-z2")
    p.add_argument("--synth", action="store_true", help="hls4ml: run vendor HLS synthesis (needs vitis_hls/vivado_hls)")
    p.add_argument("--stream-width", type=int, default=None, help="TDATA bits of the streams (default: one beat per sample)")
    p.add_argument("--tlast", choices=["sample", "batch"], default="sample",
                   help="TLAST on every output sample, or only where the input batch ended (DMA batches)")
    p.add_argument("--multipliers", choices=["lut", "dsp", "auto"], default=None,
                   help="dataflow: constant multipliers as DSP products (dsp, the default), multiplier-free shift-and-add (lut), "
                        "or per layer what fits the target's DSPs (auto; --opt target=NAME, default xc7z020)")
    p.add_argument("--stage-adders", type=int, default=None, metavar="N",
                   help="dataflow, da4ml: adder levels between pipeline registers (dataflow: 3 for dsp, 5 for lut; da4ml: 5)")
    p.add_argument("--parallelism", default=None, metavar="P",
                   help="dataflow CNN: output channels each convolution computes per cycle, one number, layer=N,layer=N, "
                        "or auto (the fewest that keep full parallelism's II); default: all of them, one window per cycle")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="architecture option")
    p.add_argument("--default-precision")
    p.add_argument("--input-precision")
    p.add_argument("--no-lint", action="store_true", help="skip the Verilator lint of generated RTL")
    p.add_argument("--weights", help="weights file of a Keras architecture JSON (default: model_weights.h5 next to it)")
    add_fidelity_args(p)
    p.set_defaults(func=run)


def parse_cores(text: str, what: str) -> int | list[int] | str:
    """moldable's cores from text: ``auto``, one number, or a comma list of numbers (one per dense layer)."""
    text = text.strip()
    if text == "auto":
        return "auto"
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{what} must be 'auto', a number or a comma list of numbers, not {text!r}") from None
    return vals[0] if len(vals) == 1 else vals


def parse_parallelism(text: str) -> "int | str | dict[str, int]":
    """``4`` (every convolution), ``conv1=8,conv2=4`` (per layer) or ``auto``."""
    if text.strip() == "auto":
        return "auto"
    try:
        if "=" not in text:
            return int(text)
        return {k.strip(): int(v) for k, v in (part.split("=", 1) for part in text.split(","))}
    except ValueError:
        raise ConfigError(f"--parallelism must be a number, layer=N pairs separated by commas, or auto, not {text!r}") from None


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for kv in args.opt:
        if "=" not in kv:
            raise ConfigError(f"--opt must be KEY=VALUE, not {kv!r}")
        k, v = kv.split("=", 1)
        opts[k.strip().replace("-", "_")] = int(v) if v.lstrip("-").isdigit() else v
    if args.reuse_factor is not None:
        if args.reuse_factor < 1:
            raise ConfigError(f"--reuse-factor must be >= 1, not {args.reuse_factor}")
        opts["reuse_factor"] = args.reuse_factor
    if args.cores:
        opts["cores"] = parse_cores(args.cores, "--cores")
    if args.lanes is not None:
        opts["lanes"] = args.lanes
    if args.strategy:
        opts["strategy"] = args.strategy
    if getattr(args, "board", None):
        opts["board"] = args.board
    if getattr(args, "synth", False):
        opts["synth"] = True
    if args.multipliers is not None:
        opts["multipliers"] = args.multipliers
    if args.stage_adders is not None:
        if args.stage_adders < 1:
            raise ConfigError(f"--stage-adders must be >= 1, not {args.stage_adders}")
        opts["stage_adders"] = args.stage_adders
    if args.parallelism is not None:
        opts["parallelism"] = parse_parallelism(args.parallelism)
    if args.stream_width is not None:
        opts["stream_width"] = args.stream_width
    if args.tlast == "batch":
        opts["tlast_mode"] = 1
    return opts


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..codegen.base import generate
    out = Path(args.output)
    if out.exists() and not args.force:
        from ..errors import OutputExistsError
        raise OutputExistsError(f"output directory must not exist (or pass --force), not exist: {out}")
    g = load_graph(args, args.model, default_precision=args.default_precision, input_precision=args.input_precision,
                   weights=args.weights)
    fid = report_fidelity(args, g, args.model)
    design = generate(g, args.arch, **_options(args))
    if fid is not None:
        design = replace(design, info={**design.info, "fidelity": fid.to_dict()})
    if design.language == "verilog" and not args.no_lint:
        from ..sim.lint import lint
        lint(design)
    design.write(out, force=args.force)
    lat = f", latency {design.latency_cycles} cycles, II {design.ii_cycles}" if design.latency_cycles else ""
    print(f"wrote {out}: {design.arch} design for '{g.name}', {len(design.files)} files{lat}; digest {design.digest()[:16]}")
    return 0

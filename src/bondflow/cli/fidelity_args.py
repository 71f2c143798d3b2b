"""The fidelity options every model-reading command shares: measure, warn loudly, enforce limits, auto-precision."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_fidelity_args", "load_graph", "report_fidelity", "announce", "load_data"]


def add_fidelity_args(p: argparse.ArgumentParser, auto_precision: bool = True) -> None:
    g = p.add_argument_group("fidelity to the source model")
    g.add_argument("--min-agreement", type=float, default=None, metavar="X",
                   help="fail (exit 18) when class agreement with the source model is below X (classifiers)")
    g.add_argument("--max-error", type=float, default=None, metavar="X",
                   help="fail (exit 18) when the mean error is above X of the source's output range")
    g.add_argument("--fidelity-data", default=None, metavar="NPZ",
                   help="inputs (x_test) to measure fidelity on; default: the example's data.npz, else N(0,1)")
    g.add_argument("--no-fidelity", action="store_true", help="do not run the source model (no fidelity record)")
    if auto_precision:
        g.add_argument("--auto-precision", action="store_true",
                       help="integer bits of every default-typed layer from its range on the fidelity inputs")


def load_data(path: str | Path | None) -> np.ndarray | None:
    if not path:
        return None
    from ..errors import ConfigError
    try:
        with np.load(path) as d:
            return np.asarray(d["x_test"])
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(f"--fidelity-data must be an .npz with x_test, not {path} ({type(e).__name__})") from None


def load_graph(args: argparse.Namespace, model: str, **load_kw: Any):
    """Import ``model``; with --auto-precision retype it from calibration data and print what was chosen."""
    from .. import load_model
    from ..errors import ConfigError
    g = load_model(model, **load_kw)
    if not getattr(args, "auto_precision", False):
        return g
    from ..fidelity import inputs_for
    from ..ir.calibrate import auto_precision
    from ..ir.types import FixedType
    default = g.meta.get("default_precision")
    if not default:
        raise ConfigError("--auto-precision needs a default precision for the float layers (--default-precision), not none")
    x, desc = inputs_for(g, model, load_data(getattr(args, "fidelity_data", None)))
    g, choices = auto_precision(g, x, FixedType.parse(default))
    print(f"auto-precision on {len(x)} inputs ({desc}): {len(choices)} layer results retyped", file=sys.stderr)
    for c in choices:
        print(f"  {c.op}: range {c.min_value:.4g}..{c.max_value:.4g} -> {c.after}", file=sys.stderr)
    return g


def report_fidelity(args: argparse.Namespace, g, model: str | None, data: np.ndarray | None = None):
    """Measure (or reuse the graph's record), print one line, warn loudly when poor, enforce the limits."""
    from ..fidelity import Fidelity, measure, recorded
    fid: Fidelity | None = recorded(g)
    if fid is None and not getattr(args, "no_fidelity", False):
        d = data if data is not None else load_data(getattr(args, "fidelity_data", None))
        fid = measure(g, model, data=d, trust_model=getattr(args, "trust_model", False))
    if fid is None:
        if getattr(args, "min_agreement", None) is not None or getattr(args, "max_error", None) is not None:
            from ..errors import ConfigError
            raise ConfigError("--min-agreement/--max-error need a fidelity measurement, not --no-fidelity")
        return None
    return announce(args, fid)


def announce(args: argparse.Namespace, fid, file: Any = None):
    """Print the record's one line, a loud warning per problem (stderr), then enforce --min-agreement/--max-error."""
    from ..fidelity import check
    print(fid.summary(), file=file or sys.stdout)
    for w in fid.warnings:
        print(f"bondflow: WARNING: poor fidelity: {w}", file=sys.stderr)
    if fid.warnings and getattr(args, "default_precision", None) and not getattr(args, "auto_precision", False):
        # the usual cause with a float model: activations beyond the default precision's range saturate
        print("bondflow: hint: --auto-precision sizes each layer's integer bits from the ranges its values reach "
              "(on --fidelity-data when given)", file=sys.stderr)
    check(fid, getattr(args, "min_agreement", None), getattr(args, "max_error", None))
    return fid

"""Entry point of the ``bondflow`` command: dispatches to subcommands, maps errors to one line + exit code."""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Sequence

from .. import __version__
from ..errors import BondflowError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bondflow", description="Quantized neural networks -> competing FPGA architectures, verified and compared.")
    p.add_argument("--version", action="version", version=f"bondflow {__version__}")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="log details to stderr (besides the progress)")
    loud.add_argument("-q", "--quiet", action="store_true",
                      help="no progress: print only the result (stdout) and errors (stderr)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from .. import cli as pkg
    # Each subcommand lives in cli/cmd_<name>.py and exposes register(subparsers).
    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_")):
        importlib.import_module(f"{pkg.__name__}.{mod}").register(sub)
    for sp in sub.choices.values():  # also after the command (`bondflow sim DIR -q`); SUPPRESS keeps a global -q
        g = sp.add_mutually_exclusive_group()
        g.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="as before the command")
        g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="as before the command")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # run as a program (not called from Python): children must not outlive a killed bondflow
        from ..reaper import start_reaper
        start_reaper()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed a one-line usage error
        return int(e.code or 0)
    if args.verbose and args.quiet:  # one before the command, the other after it
        print("bondflow: error: argument -q/--quiet: not allowed with argument -v/--verbose", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:  # third-party deprecation chatter must not bury bondflow's one-line messages
        import warnings
        warnings.simplefilter("ignore")
        for name in ("tensorflow", "absl", "h5py", "qonnx", "hls4ml"):
            logging.getLogger(name).setLevel(logging.ERROR)
    from ..progress import Reporter, detect_mode, use
    try:
        # Bars on a terminal, plain lines in logs, nothing under -q; the live display stops before an error prints.
        with use(Reporter(detect_mode(args.quiet))):
            rc = args.func(args)
        return int(rc or 0)
    except BondflowError as e:
        print(f"bondflow: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("bondflow: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, permissions: still one line
        print(f"bondflow: error: {e.strerror or e} ({getattr(e, 'filename', '') or ''})", file=sys.stderr)
        return 20


if __name__ == "__main__":
    sys.exit(main())

"""`bondflow doctor`: which external tools are installed, their versions, where they came from, how to install the rest."""
from __future__ import annotations

import argparse

from ..tools import TOOLS, find_tool, tool_version
from .table import format_table

_BM_TOOLS = ("neuralbond", "basm", "bondmachine", "bmnumbers")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="list external tools, versions, origins, and install hints")
    p.set_defaults(func=run)


def _origin(name: str, path: str | None) -> str:
    if path is None:
        return "-"
    if name in _BM_TOOLS:
        from ..bondmachine.provenance import tool_origin
        return tool_origin(name)
    return "venv" if "/.venv/" in path else "system"


def _library_row() -> tuple[str, str, str, str, str, str]:
    from ..bondmachine.toolchain import BM_PIN, locate_neuron_library
    from ..errors import ToolNotFoundError
    try:
        lib, how = locate_neuron_library()
    except ToolNotFoundError as e:
        return ("BM neuron library", "missing", "-", "-", "BondMachine neurons", str(e).split("install it with: ")[-1])
    return ("BM neuron library", BM_PIN, str(lib), how, "BondMachine neurons (.nb, .basm)", "")


def _python_side_rows() -> list[tuple[str, str, str, str, str, str]]:
    """da4ml and HGQ2 live beside the venv (numpy 2; a qkeras shim): where each was found, or how to install it."""
    from ..codegen.da4ml.env import INSTALL_HINT as DA4ML_HINT, da4ml_python, da4ml_version
    from ..errors import BondflowError
    from ..frontend.hgq_runtime import INSTALL_HINT as HGQ_HINT, hgq_path
    rows = []
    try:
        rows.append(("da4ml", da4ml_version(), da4ml_python(), "its own venv", "the da4ml architecture", ""))
    except BondflowError:
        rows.append(("da4ml", "missing", "-", "-", "the da4ml architecture", DA4ML_HINT))
    try:
        d = hgq_path()
        ver = next((p.name[len("hgq2-"):-len(".dist-info")] for p in d.glob("hgq2-*.dist-info")), "unknown")
        rows.append(("hgq2", ver, str(d), "pip --target beside the venv", "HGQ2's own inference (fidelity of HGQ models)", ""))
    except BondflowError:
        rows.append(("hgq2", "missing", "-", "-", "HGQ2's own inference (fidelity of HGQ models)", HGQ_HINT))
    return rows


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, spec in TOOLS.items():
        path = find_tool(name)
        ver = tool_version(name) if path else None
        if path and name in _BM_TOOLS:  # the Go tools print only their usage: report the pinned commit instead
            from ..bondmachine.provenance import read_provenance
            ver = f"BondMachine {(read_provenance(name) or {}).get('version', 'unknown commit')}"
        rows.append((name, ver or "missing", path or "-", _origin(name, path), spec.purpose, "" if path else spec.install))
    rows.append(_library_row())
    rows += _python_side_rows()
    print(format_table(("tool", "version", "path", "from", "used for", "install"), rows))
    return 0

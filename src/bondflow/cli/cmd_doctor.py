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
    print(format_table(("tool", "version", "path", "from", "used for", "install"), rows))
    return 0

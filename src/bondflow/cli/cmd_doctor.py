"""`bondflow doctor`: which external tools are installed, their versions, and how to install the rest."""
from __future__ import annotations

import argparse

from ..tools import TOOLS, find_tool, tool_version
from .table import format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="list external tools, versions, and install hints")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, spec in TOOLS.items():
        path = find_tool(name)
        ver = tool_version(name) if path else None
        rows.append((name, ver or "missing", path or "-", spec.purpose, "" if path else spec.install))
    print(format_table(("tool", "version", "path", "used for", "install"), rows))
    return 0

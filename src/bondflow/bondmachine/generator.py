"""Architecture "bondmachine": the real BondMachine Go toolchain. Blocked in this build (see the message)."""
from __future__ import annotations

from typing import Any

from ..codegen.base import register_arch
from ..design import Design
from ..errors import ToolNotFoundError, UnsupportedOpError
from ..ir.graph import Graph
from ..tools import find_tool

__all__ = ["generate_bondmachine"]


@register_arch("bondmachine")
def generate_bondmachine(graph: Graph, **options: Any) -> Design:
    missing = [t for t in ("neuralbond", "basm", "bondmachine") if find_tool(t) is None]
    if missing:
        raise ToolNotFoundError(missing[0], "go install github.com/BondMachineHQ/BondMachine/cmd/" + missing[0] +
                                "@<pin> (the Go proxy refuses this module here: 403), or BM_SRC=/path/to/checkout make setup")
    raise UnsupportedOpError("bondmachine flow", graph.name, ["dataflow", "hls4ml", "reference"],
                             "this build of bondflow (the BondMachine driver is not implemented yet)")

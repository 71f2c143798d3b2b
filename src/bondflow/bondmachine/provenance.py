"""Where the BondMachine tools and neuron library came from: the file `make setup` writes next to the binaries."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..tools import find_tool

__all__ = ["PROVENANCE_FILE", "read_provenance", "snapshot_candidates", "tool_origin"]

#: Written by scripts/setup.sh into the Go bin directory it installed the tools into.
PROVENANCE_FILE = ".bondflow-bondmachine.json"
_REPO = Path(__file__).resolve().parents[3]


def read_provenance(tool: str = "neuralbond") -> dict[str, Any] | None:
    """The provenance record next to ``tool``'s binary, or None (tool missing, installed by hand, or unreadable)."""
    path = find_tool(tool)
    if path is None:
        return None
    f = Path(path).resolve().parent / PROVENANCE_FILE
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and tool in data.get("tools", ()) else None


def snapshot_candidates() -> list[Path]:
    """Source snapshots of the pinned commit to look in: ``$BM_SRC``, next to the repository, the shared vendor folder."""
    out = [Path(os.environ["BM_SRC"])] if os.environ.get("BM_SRC") else []
    out += [_REPO.parent / "shared" / "vendor" / "bondmachine", Path("/work/shared/vendor/bondmachine")]
    return out


def tool_origin(tool: str) -> str:
    """One phrase for `bondflow doctor`: how and from what ``tool`` was installed."""
    if find_tool(tool) is None:
        return "-"
    p = read_provenance(tool)
    if p is None:
        return "unknown (not installed by make setup)"
    return f"{p.get('method', '?')} {p.get('source', '?')} @{p.get('version', '?')}"

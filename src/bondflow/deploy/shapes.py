"""The tensor shapes a deploy bundle records, so drivers take images (batch, H, W, C) as well as flat rows."""
from __future__ import annotations

from pathlib import Path

from ..ir.graph import Graph

__all__ = ["bundle_shapes"]


def bundle_shapes(design_dir: Path) -> dict[str, list[int]] | None:
    """``{"input": [...], "output": [...]}`` of the design's graph (channels last), or None without graph.json."""
    path = Path(design_dir) / "graph.json"
    if not path.is_file():
        return None
    g = Graph.load(path)
    return {"input": list(g.input.shape), "output": list(g.output.shape)}

"""Unique, sanitized node names: model-supplied names become safe identifiers and file names."""
from __future__ import annotations

import re

__all__ = ["unique_name"]


def unique_name(name: str, taken: set[str]) -> str:
    """``[a-z0-9_]`` form of ``name``, suffixed until it is not in ``taken``; adds it to ``taken``."""
    base = re.sub(r"[^a-z0-9_]", "_", str(name).lower()).strip("_") or "n"
    if base[0].isdigit():
        base = "n_" + base
    cand, k = base, 1
    while cand in taken:
        k += 1
        cand = f"{base}_{k}"
    taken.add(cand)
    return cand

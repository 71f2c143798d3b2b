"""Test vectors: random raw inputs over the full input type range, corners, example data; golden outputs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..ir import reference
from ..ir.graph import Graph

__all__ = ["TestVectors", "make_vectors", "reference_for"]

Reference = Callable[[Graph, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class TestVectors:
    """Raw integer inputs [n, n_in] and the expected raw outputs [n, n_out] for one graph."""

    __test__ = False  # not a pytest class

    inputs: np.ndarray
    expected: np.ndarray
    seed: int
    graph_digest: str
    reference: str = "golden"

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def save(self, path: Path) -> Path:
        np.savez(path, inputs=self.inputs, expected=self.expected)
        return path


def reference_for(name: str) -> Reference:
    """The model a design must match: ``golden`` (ap_fixed) or an architecture's own arithmetic."""
    if name == "golden":
        return reference.run_raw
    if name.startswith("bondmachine"):
        from ..bondmachine.numerics import reference_for as bm_ref  # its arithmetic differs from ap_fixed
        return bm_ref(name)
    raise ValueError(f"reference must be 'golden' or 'bondmachine-*', not {name!r}")


def make_vectors(graph: Graph, n: int, seed: int = 0, data: np.ndarray | None = None,
                 reference_name: str = "golden") -> TestVectors:
    """``n`` vectors: the type's corners, then ``data`` (real values, quantized) if given, then uniform random raw values."""
    t = graph.input.type
    rng = np.random.default_rng(seed)
    parts = [np.array([[t.min_raw] * graph.input.size, [t.max_raw] * graph.input.size, [0] * graph.input.size])]
    if data is not None:
        parts.append(reference.quantize_input(graph, np.asarray(data).reshape(len(data), -1)))
    have = sum(len(p) for p in parts)
    parts.append(rng.integers(t.min_raw, t.max_raw + 1, size=(max(n - have, 0), graph.input.size), dtype=np.int64))
    x = np.concatenate(parts)[:n]
    y = reference_for(reference_name)(graph, x)
    return TestVectors(inputs=x, expected=y, seed=seed, graph_digest=graph.digest(), reference=reference_name)

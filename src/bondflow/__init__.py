"""bondflow: import a quantized network, generate competing FPGA architectures, verify and compare them."""
from __future__ import annotations

from . import _compat  # noqa: F401  (environment workarounds, applied once, first)
from .design import Design, load_design
from .errors import BondflowError
from .ir import reference
from .ir.graph import Graph
from .ir.types import FixedType, Overflow, Rounding

__version__ = "0.1.0"
__all__ = ["load_model", "Graph", "FixedType", "Rounding", "Overflow", "Design", "load_design", "reference",
           "BondflowError", "simulate", "generate", "__version__"]


def load_model(path, default_precision: str | None = None, **kwargs) -> Graph:
    """Import a QKeras/Keras (.h5, .keras, SavedModel), ONNX/QONNX (.onnx) or bondflow JSON model."""
    from .frontend import load_model as _load
    return _load(path, default_precision=default_precision, **kwargs)


def generate(graph: Graph, arch: str, **options) -> Design:
    """Generate one architecture for ``graph`` (see ``bondflow.codegen.registry``)."""
    from .codegen.base import generate as _gen
    return _gen(graph, arch, **options)


def simulate(design, vectors=1000, simulator: str = "icarus", **kwargs):
    """Run a design's RTL in cocotb against the golden model; returns a SimResult."""
    from .sim.runner import simulate as _sim
    return _sim(design, vectors, simulator=simulator, **kwargs)

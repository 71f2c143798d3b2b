"""Architecture registry: every generator is ``generate(graph, **options) -> Design`` behind one name."""
from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

from ..design import Design
from ..errors import ConfigError
from ..ir.graph import Graph

__all__ = ["register_arch", "generate", "architectures", "ARCH_MODULES", "BRANCH_ARCHS", "refuse_branches"]

Generator = Callable[..., Design]
_REGISTRY: dict[str, Generator] = {}

#: Where each architecture's generator lives; imported on first use (keeps heavy deps lazy).
ARCH_MODULES: dict[str, str] = {
    "reference": "bondflow.codegen.reference_core",
    "dataflow": "bondflow.codegen.dataflow.generator",
    "hls4ml": "bondflow.codegen.hls4ml.generator",
    "da4ml": "bondflow.codegen.da4ml.generator",
    "bondmachine": "bondflow.bondmachine.generator",
    "moldable": "bondflow.bondmachine.moldable.generator",
}


#: Architectures that implement images and sequences (convolution, pooling); the others refuse them in one line.
SHAPED_ARCHS: tuple[str, ...] = ("hls4ml", "dataflow", "moldable")


#: Architectures that build graphs with branches (Add/Concatenate merges, tensors read twice); the RTL
#: generators walk ``graph.ops`` as a chain, so they refuse such a graph in one line (see ``refuse_branches``).
BRANCH_ARCHS: tuple[str, ...] = ("hls4ml", "dataflow", "da4ml", "moldable")


def refuse_branches(graph: Graph, arch: str, context: str | None = None) -> None:
    """Raise UnsupportedOpError naming the first merge (or branch) when ``arch`` builds chains only.

    ``context`` names a configuration of an architecture that takes branches but not in that form (e.g. a
    dataflow MLP at reuse factor > 1): the graph is then refused whatever ``arch`` is.
    """
    if (arch in BRANCH_ARCHS and context is None) or graph.is_chain():
        return
    from ..errors import UnsupportedOpError
    op = graph.branch_op()
    assert op is not None  # a graph that is not a chain has one
    kind = f"{op.kind} {getattr(op, 'function', '')}".strip() if len(op.inputs) > 1 else f"{op.kind} (reads '{op.input}', a branch)"
    where = f"the {arch} architecture {context}" if context else f"the {arch} architecture"
    raise UnsupportedOpError(kind, op.name, ["chains of ops"], f"{where} yet (branches: {', '.join(BRANCH_ARCHS)}"
                             f"{'; dataflow: MLPs at reuse factor 1 and CNNs' if 'dataflow' in BRANCH_ARCHS else ''})")


def register_arch(name: str) -> Callable[[Generator], Generator]:
    def deco(fn: Generator) -> Generator:
        @functools.wraps(fn)
        def checked(graph: Graph, *args: Any, **options: Any) -> Design:
            refuse_branches(graph, name)  # also when a generator is called directly, not through generate()
            return fn(graph, *args, **options)
        _REGISTRY[name] = checked
        return checked
    return deco


def architectures() -> list[str]:
    return sorted(ARCH_MODULES)


def generate(graph: Graph, arch: str, **options: Any) -> Design:
    """Generate architecture ``arch`` for ``graph``; unknown names list the known ones."""
    if arch not in ARCH_MODULES:
        raise ConfigError(f"architecture must be one of {', '.join(architectures())}, not {arch!r}")
    refuse_branches(graph, arch)
    if graph.is_shaped() and arch not in SHAPED_ARCHS:
        from ..errors import UnsupportedOpError
        from ..ir.tensor_ops import Conv, Pool
        op = next((o for o in graph.ops if isinstance(o, (Conv, Pool))), graph.ops[0])
        raise UnsupportedOpError(op.kind, op.name, [k for k in ("dense", "activation", "softmax", "sigmoid", "flatten")],
                                 f"the {arch} architecture yet (convolutional networks: {', '.join(SHAPED_ARCHS)})")
    if arch not in _REGISTRY:
        try:
            importlib.import_module(ARCH_MODULES[arch])
        except ModuleNotFoundError as e:
            raise ConfigError(f"architecture '{arch}' must be available in this build, not missing ({e.name})") from None
    return _REGISTRY[arch](graph, **options)

"""Architecture registry: every generator is ``generate(graph, **options) -> Design`` behind one name."""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ..design import Design
from ..errors import ConfigError
from ..ir.graph import Graph

__all__ = ["register_arch", "generate", "architectures", "ARCH_MODULES"]

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


def register_arch(name: str) -> Callable[[Generator], Generator]:
    def deco(fn: Generator) -> Generator:
        _REGISTRY[name] = fn
        return fn
    return deco


def architectures() -> list[str]:
    return sorted(ARCH_MODULES)


def generate(graph: Graph, arch: str, **options: Any) -> Design:
    """Generate architecture ``arch`` for ``graph``; unknown names list the known ones."""
    if arch not in ARCH_MODULES:
        raise ConfigError(f"architecture must be one of {', '.join(architectures())}, not {arch!r}")
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

"""The computational graph: a validated, content-addressed DAG of typed ops over networkx."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import networkx as nx
import numpy as np

from ..errors import GraphValidationError
from .ops import Dense, Op, op_from_dict
from . import element_quant, merge, tensor_ops  # noqa: F401  (registers the per-element, shaped and multi-input op kinds)
from .types import FixedType

__all__ = ["Graph", "TensorSpec", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def _int_array(v: Any) -> bool:
    """Whether ``v`` is a non-empty list of ints (not bools) or of such lists, i.e. weights or biases."""
    if not isinstance(v, list) or not v:
        return False
    if isinstance(v[0], list):
        return all(_int_array(x) for x in v)
    return set(map(type, v)) == {int}


def _indented_array(v: list[Any], level: int, indent: int) -> str:
    """``v`` exactly as ``json.dumps(v, indent=indent)`` writes it at nesting ``level``."""
    inner = "\n" + " " * (indent * (level + 1))
    if isinstance(v[0], list):
        body = ("," + inner).join(_indented_array(x, level + 1, indent) for x in v)
    else:  # json's C encoder (no indent) with the indented item separator: the same text, fast
        body = json.dumps(v, separators=("," + inner, ": "))[1:-1]
    return "[" + inner + body + "\n" + " " * (indent * level) + "]"


def dumps_indented(obj: Any, indent: int) -> str:
    """``json.dumps(obj, indent=indent)``, the same text, with integer arrays written without the slow encoder.

    Python's json has no C encoder for indented output, and a 1M-weight graph took seconds in it.
    """
    arrays: list[str] = []

    def swap(v: Any, level: int) -> Any:
        if isinstance(v, dict):
            return {k: swap(x, level + 1) for k, x in v.items()}
        if _int_array(v):
            arrays.append(_indented_array(v, level, indent))
            return f"\x00{len(arrays) - 1}\x00"
        if isinstance(v, list):
            return [swap(x, level + 1) for x in v]
        return v

    text = json.dumps(swap(obj, 0), indent=indent)
    parts = text.split('"\\u0000')  # json writes the placeholders' NUL as \u0000
    if len(parts) != len(arrays) + 1:  # a string of the graph's own starts with a NUL: no shortcut
        return json.dumps(obj, indent=indent)
    return parts[0] + "".join(arrays[int(p[:p.index("\\")])] + p[p.index('"') + 1:] for p in parts[1:])


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor (per sample) of ``size`` values of fixed-point ``type``; ``shape`` (channels last) when
    it is an image or a sequence, else ``(size,)``. Samples travel flattened in row-major (channels-last) order."""

    name: str
    size: int
    type: FixedType
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.shape) or (int(self.size),)
        if int(np.prod(shape)) != int(self.size) or min(shape) < 1:
            raise GraphValidationError(f"tensor '{self.name}' shape must hold its {self.size} values, not {shape}")
        object.__setattr__(self, "shape", shape)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "size": self.size, "type": str(self.type)}
        if len(self.shape) > 1:  # flat tensors keep the format (and digests) they always had
            d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TensorSpec":
        return cls(d["name"], int(d["size"]), FixedType.parse(d["type"]), tuple(d.get("shape", ())))


@dataclass(frozen=True, eq=False)
class Graph:
    """A model as one input tensor, ops in topological order and one output (the last op).

    Frozen: passes return new graphs. ``digest()`` covers every number and type, not the metadata.
    """

    name: str
    input: TensorSpec
    ops: tuple[Op, ...]
    meta: dict[str, Any] = field(default_factory=dict)  # source path/digest, labels: not in the digest

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        self.validate()

    # -- structure ------------------------------------------------------------------------------
    def to_networkx(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_node(self.input.name, op=None)
        for op in self.ops:
            if op.name in g:
                raise GraphValidationError(f"node names must be unique, not repeated '{op.name}'")
            g.add_node(op.name, op=op)
        for op in self.ops:
            for src in op.inputs:
                if src not in g:
                    raise GraphValidationError(f"op '{op.name}' reads '{src}', which must be a node, not dangling")
                g.add_edge(src, op.name)
        return g

    def validate(self) -> None:
        """Raise GraphValidationError unless the graph is a single chain-free DAG with consistent shapes."""
        if not self.ops:
            raise GraphValidationError("a graph must have at least one op, not none")
        if self.input.size < 1:
            raise GraphValidationError(f"input size must be >= 1, not {self.input.size}")
        g = self.to_networkx()
        if not nx.is_directed_acyclic_graph(g):
            cycle = nx.find_cycle(g)
            raise GraphValidationError(f"graph must be acyclic, not contain the cycle {cycle}")
        order = {n: i for i, n in enumerate([self.input.name] + [o.name for o in self.ops])}
        for op in self.ops:
            if any(order[src] >= order[op.name] for src in op.inputs):
                raise GraphValidationError(f"ops must be in topological order: '{op.name}' comes before its input")
        sinks = [n for n in g if g.out_degree(n) == 0]
        if sinks != [self.ops[-1].name]:
            raise GraphValidationError(f"graph must have one output (the last op), not {sinks}")
        self.sizes()  # shape inference raises on mismatch

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of every tensor, by node name (flat tensors: ``(n,)``); raises on a mismatch."""
        shapes = {self.input.name: self.input.shape}
        for op in self.ops:
            shapes[op.name] = op.infer_shape([shapes[src] for src in op.inputs])
        return shapes

    def sizes(self) -> dict[str, int]:
        """Features per sample of every tensor, by node name."""
        return {k: int(np.prod(v)) for k, v in self.shapes().items()}

    def is_chain(self) -> bool:
        """Whether every op reads only the node before it (no branches, no merges): what the RTL generators build."""
        return self.branch_op() is None

    def branch_op(self) -> Op | None:
        """The op to name when a chain is required: the first merge, else the first op reading an earlier tensor."""
        merges = [o for o in self.ops if len(o.inputs) > 1]
        if merges:
            return merges[0]
        prev = self.input.name
        for op in self.ops:
            if op.inputs != (prev,):
                return op
            prev = op.name
        return None

    def is_shaped(self) -> bool:
        """Whether any tensor is an image or a sequence (a CNN), not only flat vectors (an MLP)."""
        return any(len(s) > 1 for s in self.shapes().values())

    def types(self) -> dict[str, FixedType]:
        t = {self.input.name: self.input.type}
        t.update({op.name: op.result_type for op in self.ops})
        return t

    @property
    def output(self) -> TensorSpec:
        last = self.ops[-1]
        shape = self.shapes()[last.name]
        return TensorSpec(last.name, int(np.prod(shape)), last.result_type, shape)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def op(self, name: str) -> Op:
        for o in self.ops:
            if o.name == name:
                return o
        raise KeyError(name)

    def dense_layers(self) -> list[Dense]:
        return [o for o in self.ops if isinstance(o, Dense)]

    def macs(self) -> int:
        shapes = self.shapes()
        return sum(o.macs_for(shapes[o.name]) if hasattr(o, "macs_for") else o.macs() for o in self.ops)

    def params(self) -> int:
        return sum(o.params() for o in self.ops)

    # -- serialization -------------------------------------------------------------------------------
    def to_dict(self, with_meta: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"format": "bondflow-graph", "version": FORMAT_VERSION, "name": self.name,
                             "input": self.input.to_dict(), "ops": [o.to_dict() for o in self.ops]}
        if with_meta:
            d["meta"] = self.meta
        return d

    def to_json(self, indent: int | None = None) -> str:
        d = self.to_dict()
        d["digest"] = self.digest()
        return json.dumps(d, indent=indent, sort_keys=False) if indent is None else dumps_indented(d, indent)

    def digest(self) -> str:
        """SHA-256 over the canonical JSON of everything that determines behaviour (not ``meta``)."""
        canon = json.dumps(self.to_dict(with_meta=False), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Graph":
        if d.get("format") != "bondflow-graph":
            raise GraphValidationError(f"graph JSON must have format 'bondflow-graph', not {d.get('format')!r}")
        if d.get("version") != FORMAT_VERSION:
            raise GraphValidationError(f"graph JSON version must be {FORMAT_VERSION}, not {d.get('version')!r}")
        try:
            g = cls(name=d["name"], input=TensorSpec.from_dict(d["input"]),
                    ops=tuple(op_from_dict(o) for o in d["ops"]), meta=dict(d.get("meta", {})))
        except (KeyError, TypeError) as e:
            raise GraphValidationError(f"graph JSON must have all fields, not miss {e}") from None
        if "digest" in d and d["digest"] != g.digest():
            raise GraphValidationError(f"graph digest must be {d['digest'][:12]}, not {g.digest()[:12]} (file was edited)")
        return g

    @classmethod
    def from_json(cls, text: str) -> "Graph":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise GraphValidationError(f"graph file must be JSON, not invalid at line {e.lineno}: {e.msg}") from None

    def save(self, path: Path | str) -> Path:
        from ..fsutil import atomic_write_text
        return atomic_write_text(Path(path), self.to_json(indent=1))

    @classmethod
    def load(cls, path: Path | str) -> "Graph":
        return cls.from_json(Path(path).read_text())

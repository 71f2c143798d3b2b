"""Ops that read several tensors (branches): element-wise ``add``, ``subtract``, ``multiply``, ``maximum``, ``minimum``
and ``concatenate`` along one axis."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from ..errors import GraphValidationError, QuantizationError
from .ops import OP_KINDS, Op
from .types import MAX_WIDTH, FixedType

__all__ = ["Merge", "merge_result_type", "ELEMENTWISE", "combine"]

#: Merges of equal shapes, element by element (hls4ml's Add, Subtract, Multiply, Maximum, Minimum).
ELEMENTWISE = ("add", "subtract", "multiply", "maximum", "minimum")


def combine(function: str, xs: Sequence[Any]) -> Any:
    """The element-wise merge ``function`` of equal-shaped arrays (exact for integers on one grid, or floats)."""
    if function == "subtract":
        return xs[0] - xs[1]
    out = xs[0]
    for x in xs[1:]:
        out = {"add": lambda a, b: a + b, "multiply": lambda a, b: a * b, "maximum": np.maximum, "minimum": np.minimum}[function](out, x)
    return out


def _signed_int_bits(t: FixedType, signed: bool) -> int:
    """Integer bits (sign included) ``t``'s values need in a type of signedness ``signed``."""
    return t.int_bits + (1 if signed and not t.signed else 0)


def merge_result_type(function: str, types: Sequence[FixedType]) -> FixedType:
    """The narrowest type holding the merge's result exactly (hls4ml's rule for an unquantized Add/Concatenate).

    Most align the fraction bits to the finest input. ``concatenate``, ``maximum`` and ``minimum`` need the widest
    integer range of their inputs (a common type holding each exactly); ``add`` of N inputs needs ceil(log2 N) more
    integer bits, so no sum can overflow; ``subtract`` one more and a sign; ``multiply`` the sum of the widths and of
    the fraction bits (the exact product). Rounding/overflow stay TRN/WRAP: nothing is ever dropped.
    """
    if function not in Merge.FUNCTIONS:
        raise GraphValidationError(f"merge function must be one of {Merge.FUNCTIONS}, not {function!r}")
    signed = any(t.signed for t in types) or function == "subtract"
    if function == "multiply":
        frac, width = sum(t.frac_bits for t in types), sum(t.width for t in types)
        if width > MAX_WIDTH:
            raise QuantizationError(f"multiply of {', '.join(map(str, types))} must fit {MAX_WIDTH} bits exactly, not need {width}")
        return FixedType(width, width - frac, signed=signed)
    frac = max(t.frac_bits for t in types)
    ints = max(_signed_int_bits(t, signed) for t in types)
    if function in ("add", "subtract"):
        ints += (len(types) - 1).bit_length()
    width = ints + frac
    if width > MAX_WIDTH:
        raise QuantizationError(f"{function} of {', '.join(map(str, types))} must fit {MAX_WIDTH} bits exactly, not need {width}")
    if width < 1:  # inputs of only fraction bits below the point (e.g. fixed<2,-3>): keep their grid
        ints, width = 1 - frac, 1
    return FixedType(width, ints, signed=signed)


@dataclass(frozen=True, eq=False, kw_only=True)
class Merge(Op):
    """An element-wise merge of equal shapes (``add``, ``subtract`` of two, ``multiply``, ``maximum``, ``minimum``) or
    ``concatenate`` (along per-sample ``axis``) of ``inputs``.

    Element-wise merges compute exactly (sums and differences on the finest fraction bits, the full product, the
    larger or smaller value), then one cast to ``result_type``; ``concatenate`` casts each input to ``result_type`` (as
    hls4ml's ``res[i] = data[i]``).
    ``input`` is the first of ``inputs``, so code that only follows a chain still finds a node.
    """

    input: str = ""
    inputs: tuple[str, ...] = ()
    function: str = "add"
    axis: int = 0  # per sample (no batch dimension), non-negative; concatenate only
    kind: ClassVar[str] = "merge"
    FUNCTIONS: ClassVar[tuple[str, ...]] = ELEMENTWISE + ("concatenate",)

    def __post_init__(self) -> None:
        inputs = tuple(str(i) for i in self.inputs)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "axis", int(self.axis))
        if self.function not in self.FUNCTIONS:
            raise GraphValidationError(f"merge '{self.name}' function must be one of {self.FUNCTIONS}, not {self.function!r}")
        if len(inputs) < 2:
            raise GraphValidationError(f"merge '{self.name}' must read at least 2 tensors, not {len(inputs)}")
        if self.input and self.input != inputs[0]:
            raise GraphValidationError(f"merge '{self.name}' input must be its first input '{inputs[0]}', not '{self.input}'")
        object.__setattr__(self, "input", inputs[0])
        if self.axis < 0:
            raise GraphValidationError(f"merge '{self.name}' axis must be a non-negative per-sample axis, not {self.axis}")
        if self.function == "subtract" and len(inputs) != 2:
            raise GraphValidationError(f"subtract '{self.name}' must read 2 tensors, not {len(inputs)}")

    def infer_shape(self, in_shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
        first = tuple(in_shapes[0])
        if self.function in ELEMENTWISE:
            for name, s in zip(self.inputs[1:], in_shapes[1:]):
                if tuple(s) != first:
                    raise GraphValidationError(f"{self.function} '{self.name}' needs equal shapes, not {first} ('{self.inputs[0]}') "
                                               f"and {tuple(s)} ('{name}')")
            return first
        if self.axis >= len(first):
            raise GraphValidationError(f"concatenate '{self.name}' axis must be below the rank {len(first)} of {first}, not {self.axis}")
        for name, s in zip(self.inputs[1:], in_shapes[1:]):
            s = tuple(s)
            if len(s) != len(first) or s[:self.axis] + s[self.axis + 1:] != first[:self.axis] + first[self.axis + 1:]:
                raise GraphValidationError(f"concatenate '{self.name}' needs shapes equal except axis {self.axis}, not {first} "
                                           f"('{self.inputs[0]}') and {s} ('{name}')")
        total = sum(int(s[self.axis]) for s in in_shapes)
        return first[:self.axis] + (total,) + first[self.axis + 1:]

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise GraphValidationError(f"merge '{self.name}' reads {len(self.inputs)} tensors: its shape needs all of them, not one")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "name": self.name, "inputs": list(self.inputs),
                             "result_type": str(self.result_type), "function": self.function}
        if self.function == "concatenate":
            d["axis"] = self.axis
        return d


OP_KINDS[Merge.kind] = Merge

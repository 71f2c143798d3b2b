"""Per-element quantization (HGQ's heterogeneous precision): each feature cast to its own fixed-point type.

Element ``j`` has HGQ's ``(k, i, f)``: keep-negative (sign) bit, integer bits *without* the sign and fraction bits,
i.e. the type ``fixed<k+i+f, k+i>`` (``ufixed`` when ``k == 0``), all elements sharing one rounding and one overflow
mode. An element of ``k + i + f <= 0`` bits (HGQ's pruned input) is always 0. Results sit on the op's
``result_type``, the widest type over the elements, so the next layer's arithmetic sees one type (exactly).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import GraphValidationError, QuantizationError
from .ops import OP_KINDS, Op, frozen_array
from .types import MAX_WIDTH, FixedType, Overflow, Rounding

__all__ = ["ElementQuant", "element_types", "widest_type", "element_quant_kernel", "ROUNDINGS", "OVERFLOWS"]

#: What HGQ's fixed-point quantizers do at inference (its S_RND/S_RND_CONV are RND/RND_CONV there).
ROUNDINGS = (Rounding.TRN, Rounding.RND, Rounding.RND_CONV)
OVERFLOWS = (Overflow.WRAP, Overflow.SAT, Overflow.SAT_SYM)


def _zero(k: np.ndarray, i: np.ndarray, f: np.ndarray, overflow: Overflow) -> np.ndarray:
    """Elements that always give 0: no bits at all, or HGQ's signed 1-bit SAT_SYM (its range is [-0, 0])."""
    z = (k + i + f) <= 0
    if overflow is Overflow.SAT_SYM:
        z |= (k == 1) & (i + f == 0)
    return z


def element_types(k: np.ndarray, i: np.ndarray, f: np.ndarray, rounding: Rounding, overflow: Overflow) -> list[FixedType | None]:
    """Each element's FixedType (None for an element that is always 0)."""
    z = _zero(k, i, f, overflow)
    return [None if z[j] else FixedType(int(k[j] + i[j] + f[j]), int(k[j] + i[j]), signed=bool(k[j]),
                                        rounding=rounding, overflow=overflow) for j in range(len(k))]


def widest_type(types: list[FixedType | None]) -> FixedType:
    """The narrowest single type holding every element type exactly (TRN/WRAP: nothing is ever dropped)."""
    live = [t for t in types if t is not None]
    if not live:
        return FixedType(1, 1, signed=False)
    signed = any(t.signed for t in live)
    frac = max(t.frac_bits for t in live)
    ints = max(t.int_bits + (1 if signed and not t.signed else 0) for t in live)
    width = ints + frac
    if width > MAX_WIDTH:
        raise QuantizationError(f"per-element types must fit one {MAX_WIDTH}-bit type, not need {width} bits")
    return FixedType(max(width, 1), ints if width >= 1 else 1 - frac, signed=signed)


@dataclass(frozen=True, eq=False)
class ElementQuant(Op):
    """``y[j] = cast_j(x[j])`` to ``fixed<k+i+f, k+i, rounding, overflow>`` (HGQ's (k, i, f)), then exactly onto
    ``result_type``; elements of no bits give 0. ``k``, ``i``, ``f`` are int arrays, one value per feature."""

    k: np.ndarray = field(default_factory=lambda: frozen_array([1]))
    i: np.ndarray = field(default_factory=lambda: frozen_array([0]))
    f: np.ndarray = field(default_factory=lambda: frozen_array([0]))
    rounding: Rounding = Rounding.TRN
    overflow: Overflow = Overflow.WRAP
    kind: ClassVar[str] = "element_quant"
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "rounding", Rounding(self.rounding))
            object.__setattr__(self, "overflow", Overflow(self.overflow))
        except ValueError:
            raise GraphValidationError(f"element_quant '{self.name}' rounding/overflow must be one of "
                                       f"{[r.value for r in ROUNDINGS]}/{[o.value for o in OVERFLOWS]}, not "
                                       f"{self.rounding!r}/{self.overflow!r}") from None
        if self.rounding not in ROUNDINGS or self.overflow not in OVERFLOWS:
            raise GraphValidationError(f"element_quant '{self.name}' rounding/overflow must be one of "
                                       f"{[r.value for r in ROUNDINGS]}/{[o.value for o in OVERFLOWS]}, not "
                                       f"{self.rounding.value}/{self.overflow.value}")
        k, i, f = (frozen_array(np.ravel(v)) for v in (self.k, self.i, self.f))
        if not (k.shape == i.shape == f.shape) or k.size < 1:
            raise GraphValidationError(f"element_quant '{self.name}' k, i, f must be equal-length vectors, not shapes "
                                       f"{k.shape}, {i.shape}, {f.shape}")
        if not np.all((k == 0) | (k == 1)):
            raise GraphValidationError(f"element_quant '{self.name}' k must be 0 or 1 per element, not {sorted(set(k.tolist()))}")
        z = _zero(k, i, f, self.overflow)  # canonical form: an always-0 element is (0, 0, 0), so equal ops digest equally
        k, i, f = (frozen_array(np.where(z, 0, v)) for v in (k, i, f))
        for name, v in (("k", k), ("i", i), ("f", f)):
            object.__setattr__(self, name, v)
        for j, t in enumerate(self.types()):
            if t is not None and not self.result_type.holds(t):
                raise QuantizationError(f"element_quant '{self.name}' result type must hold element {j}'s {t} exactly, "
                                        f"not {self.result_type}")

    def types(self) -> list[FixedType | None]:
        return element_types(self.k, self.i, self.f, self.rounding, self.overflow)

    def out_features(self, in_features: int) -> int:
        if in_features != self.k.size:
            raise GraphValidationError(f"element_quant '{self.name}' expects {self.k.size} inputs, not {in_features}")
        return in_features

    def params(self) -> int:
        return 0

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(k=self.k.tolist(), i=self.i.tolist(), f=self.f.tolist(), rounding=self.rounding.value,
                 overflow=self.overflow.value)
        return d


def element_quant_kernel(op: ElementQuant, x: np.ndarray, xt: FixedType) -> np.ndarray:
    """Golden model: the columns of each distinct element type cast at once (FixedType.requantize, the RTL's cast)."""
    out = np.zeros((x.shape[0], op.k.size), dtype=np.int64)
    rt = op.result_type
    groups: dict[FixedType, list[int]] = {}
    for j, t in enumerate(op.types()):
        if t is not None:
            groups.setdefault(t, []).append(j)
    for t, cols in groups.items():
        v = t.requantize(x[:, cols], xt.frac_bits)
        out[:, cols] = rt.requantize(v, t.frac_bits)  # exact: result_type holds t
    return out


OP_KINDS[ElementQuant.kind] = ElementQuant

"""Exact fixed-point types with ap_fixed's rounding and overflow modes, on int64 raw values."""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import numpy as np

try:
    from ..errors import QuantizationError
except ImportError:  # copied verbatim into a deploy bundle, where only numpy exists

    class QuantizationError(ValueError):  # type: ignore[no-redef]
        """A value or type that cannot be represented as asked."""

__all__ = ["Rounding", "Overflow", "FixedType", "MAX_WIDTH"]

#: Raw values live in int64; keep one bit of headroom for the sign of intermediate sums.
MAX_WIDTH = 62


class Rounding(str, Enum):
    """How dropped fractional bits are handled (names as in ap_fixed, without the AP_ prefix)."""

    TRN = "TRN"  # floor: ap_fixed's default
    TRN_ZERO = "TRN_ZERO"  # toward zero
    RND = "RND"  # nearest, ties toward +inf
    RND_ZERO = "RND_ZERO"  # nearest, ties toward zero
    RND_MIN_INF = "RND_MIN_INF"  # nearest, ties toward -inf
    RND_INF = "RND_INF"  # nearest, ties away from zero
    RND_CONV = "RND_CONV"  # nearest, ties to even (numpy/TF round)


class Overflow(str, Enum):
    """What happens to values outside the type's range."""

    WRAP = "WRAP"  # two's-complement wrap: ap_fixed's default
    SAT = "SAT"  # clip to [min, max]
    SAT_ZERO = "SAT_ZERO"  # out-of-range values become 0
    SAT_SYM = "SAT_SYM"  # clip to [-max, max] (signed)


_TYPE_RE = re.compile(
    r"^\s*(?:ap_)?(u?)(fixed|int)\s*<\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?(?:,\s*(?:AP_)?(\w+)\s*)?(?:,\s*(?:AP_)?(\w+)\s*)?(?:,\s*\d+\s*)?>\s*$"
)


@dataclass(frozen=True)
class FixedType:
    """A fixed-point number format: ``width`` bits of which ``int_bits`` are integer bits (sign included).

    Values are held as raw integers ``r`` meaning ``r * 2**-frac_bits``; this mirrors
    ``ap_fixed<width, int_bits, rounding, overflow>`` (``ap_ufixed`` when ``signed`` is False).
    """

    width: int
    int_bits: int
    signed: bool = True
    rounding: Rounding = Rounding.TRN
    overflow: Overflow = Overflow.WRAP

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or not 1 <= self.width <= MAX_WIDTH:
            raise QuantizationError(f"fixed-point width must be an integer in 1..{MAX_WIDTH}, not {self.width!r}")
        if not isinstance(self.int_bits, int):
            raise QuantizationError(f"fixed-point integer bits must be an integer, not {self.int_bits!r}")
        if self.frac_bits > MAX_WIDTH or self.int_bits > MAX_WIDTH:
            raise QuantizationError(
                f"fixed-point integer bits must lie in {self.width - MAX_WIDTH}..{MAX_WIDTH}, not {self.int_bits}"
            )
        object.__setattr__(self, "rounding", Rounding(self.rounding))
        object.__setattr__(self, "overflow", Overflow(self.overflow))

    # -- properties ---------------------------------------------------------------------------
    @property
    def frac_bits(self) -> int:
        return self.width - self.int_bits

    @property
    def min_raw(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac_bits

    @property
    def min_value(self) -> float:
        return self.min_raw * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_raw * self.lsb

    # -- text form ----------------------------------------------------------------------------
    def __str__(self) -> str:
        base = f"{'' if self.signed else 'u'}fixed<{self.width},{self.int_bits}"
        if self.rounding is not Rounding.TRN or self.overflow is not Overflow.WRAP:
            base += f",{self.rounding.value},{self.overflow.value}"
        return base + ">"

    def to_ap(self) -> str:
        """The C++ spelling used by hls4ml/Vivado HLS, e.g. ``ap_fixed<16,6,AP_RND,AP_SAT>``."""
        base = f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.int_bits}"
        if self.rounding is not Rounding.TRN or self.overflow is not Overflow.WRAP:
            base += f",AP_{self.rounding.value},AP_{self.overflow.value}"
        return base + ">"

    @classmethod
    def parse(cls, text: str) -> "FixedType":
        """Parse ``fixed<16,6>``, ``ufixed<8,3,RND,SAT>``, ``ap_fixed<16,6,AP_RND_CONV,AP_SAT>``, ``int<8>``."""
        m = _TYPE_RE.match(str(text))
        if not m:
            raise QuantizationError(f"precision must look like 'fixed<16,6>' or 'ap_fixed<8,3,AP_RND,AP_SAT>', not {text!r}")
        u, kind, w, i, rnd, ovf = m.groups()
        width = int(w)
        int_bits = width if kind == "int" or i is None else int(i)
        try:
            rounding = Rounding(rnd.upper()) if rnd else Rounding.TRN
            overflow = Overflow(ovf.upper()) if ovf else Overflow.WRAP
        except ValueError:
            raise QuantizationError(
                f"rounding must be one of {[r.value for r in Rounding]} and overflow one of "
                f"{[o.value for o in Overflow]}, not {rnd!r}/{ovf!r}"
            ) from None
        return cls(width, int_bits, signed=not u, rounding=rounding, overflow=overflow)

    def with_modes(self, rounding: Rounding | str | None = None, overflow: Overflow | str | None = None) -> "FixedType":
        return FixedType(self.width, self.int_bits, self.signed,
                         Rounding(rounding) if rounding else self.rounding,
                         Overflow(overflow) if overflow else self.overflow)

    # -- arithmetic -------------------------------------------------------------------------------
    def quantize(self, x: np.ndarray | float) -> np.ndarray:
        """Real values -> raw integers, applying this type's rounding then overflow mode."""
        a = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise QuantizationError(f"values to quantize to {self} must be finite, not NaN/inf")
        scaled = np.ldexp(a, self.frac_bits)  # exact: power-of-two scaling
        if np.any(np.abs(scaled) >= 2.0 ** 62):
            raise QuantizationError(f"values to quantize to {self} must be below 2^{62 - self.frac_bits} in magnitude")
        q = np.floor(scaled)
        rem = scaled - q  # in [0, 1), exact
        # Scaling down into the subnormal range loses bits: such values lie strictly between -1 and 1 (exclusive
        # of 0), so their floor is -1 or 0 and their remainder is just below 1 or just above 0.
        tiny = (np.abs(scaled) < np.finfo(np.float64).tiny) & (a != 0)
        q = np.where(tiny, np.where(a < 0, -1.0, 0.0), q).astype(np.int64)
        nonzero = (rem > 0) | tiny
        above = np.where(tiny, a < 0, rem > 0.5)
        half = (rem == 0.5) & ~tiny
        q = q + _round_up(self.rounding, q, nonzero, half, above, a < 0)
        return self._overflow(q)

    def requantize(self, raw: np.ndarray, src_frac: int) -> np.ndarray:
        """Raw integers with ``src_frac`` fractional bits -> raw integers of this type (rounding, overflow)."""
        r = np.asarray(raw, dtype=np.int64)
        shift = src_frac - self.frac_bits
        if shift <= 0:
            if r.size and int(np.max(np.abs(r))).bit_length() - shift > 62:
                raise QuantizationError(f"intermediate value for {self} must fit in 62 bits, not more")
            return self._overflow(r << (-shift))
        if shift >= 63:
            q = np.where(r < 0, -1, 0).astype(np.int64)
            rem_nonzero = r != 0
            return self._overflow(q + _round_up(self.rounding, q, rem_nonzero, np.zeros_like(rem_nonzero),
                                                np.zeros_like(rem_nonzero), r < 0))
        q = r >> shift
        rem = r - (q << shift)
        half = np.int64(1) << (shift - 1)
        return self._overflow(q + _round_up(self.rounding, q, rem != 0, rem == half, rem > half, r < 0))

    def _overflow(self, q: np.ndarray) -> np.ndarray:
        lo, hi = self.min_raw, self.max_raw
        o = self.overflow
        if o is Overflow.WRAP:
            span = np.int64(1) << self.width
            return ((q - lo) & (span - 1)) + lo
        if o is Overflow.SAT:
            return np.clip(q, lo, hi)
        if o is Overflow.SAT_ZERO:
            return np.where((q < lo) | (q > hi), 0, q).astype(np.int64)
        # ap_fixed treats the most negative value itself as underflow under SAT_SYM (-> -max), except at 1 bit.
        sym_lo = -hi if self.signed and self.width > 1 else lo
        return np.clip(q, sym_lo, hi)

    def to_float(self, raw: np.ndarray) -> np.ndarray:
        return np.ldexp(np.asarray(raw, dtype=np.float64), -self.frac_bits)

    def holds(self, other: "FixedType") -> bool:
        """Whether every value of ``other`` is a value of this type (a cast to it is exact: wiring)."""
        return (self.frac_bits >= other.frac_bits and self.max_value >= other.max_value
                and self.min_value <= other.min_value)

    def representable(self, x: np.ndarray) -> bool:
        """True when every value is exactly one of this type's values."""
        a = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            return False
        s = np.ldexp(a, self.frac_bits)
        return bool(np.all(s == np.floor(s)) and np.all(s >= self.min_raw) and np.all(s <= self.max_raw))

    def to_dict(self) -> str:
        return str(self)


def _round_up(mode: Rounding, q: np.ndarray, nonzero, is_half, above_half, negative) -> np.ndarray:
    """Increment (0/1) to add to the floored value for each rounding mode."""
    if mode is Rounding.TRN:
        inc = np.zeros_like(q, dtype=bool)
    elif mode is Rounding.TRN_ZERO:
        inc = nonzero & negative
    elif mode is Rounding.RND:
        inc = above_half | is_half
    elif mode is Rounding.RND_ZERO:
        inc = above_half | (is_half & negative)
    elif mode is Rounding.RND_MIN_INF:
        inc = above_half
    elif mode is Rounding.RND_INF:
        inc = above_half | (is_half & ~negative)
    else:  # RND_CONV
        inc = above_half | (is_half & ((q & 1) == 1))
    return np.asarray(inc, dtype=np.int64)

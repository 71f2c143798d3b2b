"""BondMachine number types (fps<s>f<f>, float32, float16) and how a literal survives neuralbond's ``%f``."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..ir.types import FixedType

__all__ = ["NumberType", "parse_number_type", "go_f6", "literal_raw", "encode_literal"]

_FPS = re.compile(r"^fps(\d+)f(\d+)$")


@dataclass(frozen=True)
class NumberType:
    """One BondMachine data type; ``bits`` is also the register size we pass (Rsize = s)."""

    name: str  # bmnumbers name: fps16f10, float32, float16
    bits: int
    frac: int | None = None  # fractional bits of fps types, None for floats

    @property
    def is_fixed(self) -> bool:
        return self.frac is not None

    @property
    def prefix(self) -> str:
        """The literal prefix neuralbond puts before every ``%f`` weight and bias."""
        if self.is_fixed:
            return f"0fp<{self.bits}.{self.frac}>"
        return f"0f<{self.bits}>"

    @property
    def sign_mask(self) -> str:
        return f"0x{1 << (self.bits - 1):x}"

    @property
    def reference_name(self) -> str:
        return f"bondmachine-{self.name}"

    def as_fixed(self) -> FixedType:
        """The equivalent wrapping, flooring fixed-point type (fps only)."""
        if not self.is_fixed:
            raise ConfigError(f"number type must be fps<s>f<f> to have a fixed-point equivalent, not {self.name}")
        return FixedType(self.bits, self.bits - int(self.frac))


def parse_number_type(text: str) -> NumberType:
    """``fps16f10``, ``fixed<16,6>`` (same thing: 16 bits, 10 fractional), ``float32`` or ``float16``."""
    t = str(text).strip()
    if t in ("float32", "float16"):
        return NumberType(t, int(t[5:]))
    m = _FPS.match(t)
    if m:
        s, f = int(m.group(1)), int(m.group(2))
    else:
        try:
            ft = FixedType.parse(t)
        except Exception:
            raise ConfigError(f"number type must be float32, float16, fps<s>f<f> or fixed<s,i>, not {text!r}") from None
        if not ft.signed:
            raise ConfigError(f"number type must be signed (BondMachine fps is two's complement), not {text!r}")
        s, f = ft.width, ft.frac_bits
    if not 2 <= s <= 32 or not 0 <= f < s:
        raise ConfigError(f"fps number type must have 2 <= s <= 32 bits and 0 <= f < s fractional bits, not s={s}, f={f}")
    if s not in (8, 16, 32):  # bondmachine's simulator and register files only handle byte-multiple register sizes
        raise ConfigError(f"fps register size must be 8, 16 or 32 bits, not {s}")
    return NumberType(f"fps{s}f{f}", s, f)


def go_f6(v: float) -> str:
    """Go's ``fmt.Sprintf("%f", float32(v))``: the exact float32 value correctly rounded to 6 decimals, ties to even."""
    return format(float(np.float32(v)), ".6f")  # Python formats the exact binary value, like Go's strconv


def literal_raw(v: float, nt: NumberType) -> int:
    """Raw register value that neuralbond + bmnumbers make of a float32 weight/bias ``v`` (fps types).

    ``strconv.ParseFloat(%f text, 64) * 2^f``, converted with Go's ``int64()`` (toward zero), low ``s`` bits.
    """
    assert nt.frac is not None
    x = float(go_f6(v)) * float(1 << nt.frac)
    r = int(x)  # Python int() truncates toward zero like Go's conversion
    r &= (1 << nt.bits) - 1
    return r - (1 << nt.bits) if r >> (nt.bits - 1) else r


def encode_literal(raw: int, nt: NumberType) -> float:
    """A float32 whose ``%f`` text makes bmnumbers produce exactly ``raw`` (so no weight bit is lost).

    The plain value ``raw / 2^f`` often prints 6 decimals just below itself and then truncates to
    ``raw - 1``; nudging it up (away from zero) by float32 ulps until the round trip holds fixes that.
    """
    assert nt.frac is not None
    target = raw / float(1 << nt.frac)
    v = np.float32(target)
    away = np.float32(np.inf if raw >= 0 else -np.inf)
    for _ in range(4096):
        if literal_raw(float(v), nt) == raw:
            return float(v)
        v = np.nextafter(v, away, dtype=np.float32)
    raise ConfigError(f"value {target} must be representable as a BondMachine {nt.name} literal through %f, not lost")


def float_literal(v: float, bits: int) -> float:
    """What a float32/float16 literal becomes after neuralbond's ``%f`` (6 decimals) and bmnumbers' parse."""
    text = go_f6(v)
    return float(np.float32(float(text))) if bits == 32 else float(np.float16(float(text)))

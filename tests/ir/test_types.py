"""Property tests: FixedType quantize/requantize against a direct Fraction-based reference of ap_fixed."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bondflow.errors import QuantizationError
from bondflow.ir.types import FixedType, Overflow, Rounding


def ref_round(v: Fraction, mode: Rounding) -> int:
    """Round a rational to an integer the way ap_fixed's quantization modes are specified."""
    fl = math.floor(v)
    rem = v - fl
    if rem == 0:
        return fl
    half = Fraction(1, 2)
    if mode is Rounding.TRN:
        return fl
    if mode is Rounding.TRN_ZERO:
        return fl + 1 if v < 0 else fl
    if rem != half:
        return fl + 1 if rem > half else fl
    return {Rounding.RND: fl + 1, Rounding.RND_ZERO: fl + 1 if v < 0 else fl, Rounding.RND_MIN_INF: fl,
            Rounding.RND_INF: fl if v < 0 else fl + 1, Rounding.RND_CONV: fl + (fl & 1)}[mode]


def ref_overflow(q: int, t: FixedType) -> int:
    lo, hi = t.min_raw, t.max_raw
    if t.overflow is Overflow.SAT_SYM and t.signed and t.width > 1:
        lo = -hi  # ap_fixed: the most negative value is an underflow under SAT_SYM
    if lo <= q <= hi:
        return q
    if t.overflow is Overflow.WRAP:
        return (q - lo) % (1 << t.width) + lo
    if t.overflow is Overflow.SAT:
        return hi if q > hi else lo
    if t.overflow is Overflow.SAT_ZERO:
        return 0
    return max(min(q, hi), lo)


types = st.builds(lambda w, i, s, r, o: FixedType(w, i, s, r, o), st.integers(1, 24), st.integers(-4, 28),
                  st.booleans(), st.sampled_from(list(Rounding)), st.sampled_from(list(Overflow)))


@settings(max_examples=400, deadline=None)
@given(t=types, raws=st.lists(st.integers(-(1 << 28), 1 << 28), min_size=1, max_size=20), src_frac=st.integers(-4, 30))
def test_requantize_matches_reference(t: FixedType, raws: list[int], src_frac: int) -> None:
    got = t.requantize(np.array(raws, dtype=np.int64), src_frac)
    want = [ref_overflow(ref_round(Fraction(r) * Fraction(2) ** (t.frac_bits - src_frac), t.rounding), t) for r in raws]
    assert got.tolist() == want


@settings(max_examples=400, deadline=None)
@given(t=types, xs=st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=20))
def test_quantize_matches_reference(t: FixedType, xs: list[float]) -> None:
    got = t.quantize(np.array(xs))
    want = [ref_overflow(ref_round(Fraction(x) * Fraction(2) ** t.frac_bits, t.rounding), t) for x in xs]
    assert got.tolist() == want


@pytest.mark.parametrize("text", ["fixed<16,6>", "ufixed<8,3,RND_CONV,SAT>", "fixed<4,-2,TRN_ZERO,SAT_SYM>"])
def test_text_round_trip(text: str) -> None:
    assert str(FixedType.parse(text)) == text


def test_ap_spelling_parses() -> None:
    t = FixedType.parse("ap_fixed<14,4,AP_RND,AP_SAT>")
    assert (t.width, t.int_bits, t.rounding, t.overflow) == (14, 4, Rounding.RND, Overflow.SAT)
    assert t.to_ap() == "ap_fixed<14,4,AP_RND,AP_SAT>"


@pytest.mark.parametrize("bad", ["fixed<0,0>", "fixed<70,3>", "float", "fixed<8,3,RND_BOGUS,SAT>"])
def test_bad_types_are_typed_errors(bad: str) -> None:
    with pytest.raises(QuantizationError, match="must"):
        FixedType.parse(bad)


def test_nan_refused() -> None:
    with pytest.raises(QuantizationError, match="finite"):
        FixedType(8, 3).quantize([1.0, float("nan")])


def test_requantize_beyond_int64_is_refused() -> None:
    with pytest.raises(QuantizationError, match="62 bits"):
        FixedType(17, -4, signed=False).requantize(np.array([1 << 40]), -4)


@pytest.mark.parametrize("x", [-5e-324, 5e-324, -1e-310, 2.2e-308])
@pytest.mark.parametrize("rounding", list(Rounding))
def test_subnormal_inputs_round_exactly(x: float, rounding: Rounding) -> None:
    """Found by hypothesis: scaling a subnormal down by 2^k underflows to zero; the result must not."""
    t = FixedType(4, 6, signed=True, rounding=rounding, overflow="WRAP")
    want = ref_overflow(ref_round(Fraction(x) * Fraction(2) ** t.frac_bits, rounding), t)
    assert t.quantize([x]).tolist() == [want]

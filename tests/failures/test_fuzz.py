"""Fuzzing the frontends: mutated ONNX and Keras files must load or raise a BondflowError, nothing else.

`make fuzz` runs 10,000 cases per format (FUZZ_EXAMPLES); CI runs a few hundred.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bondflow
from bondflow.errors import BondflowError
from bondflow.frontend.onnx_export import graph_to_onnx_bytes

N = int(os.environ.get("FUZZ_EXAMPLES", "150"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IRIS_H5 = (EXAMPLES / "iris" / "model.h5").read_bytes()
IRIS_ONNX = graph_to_onnx_bytes(bondflow.load_model(EXAMPLES / "iris" / "model.h5"))

mutations = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("splice"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
)


def mutate(data: bytes, m) -> bytes:
    if m[0] == "truncate":
        return data[: int(len(data) * m[1])]
    if m[0] == "flip":
        b = bytearray(data)
        for pos, x in m[1]:
            i = min(int(pos * len(b)), len(b) - 1)
            b[i] ^= x
        return bytes(b)
    i = int(m[1] * len(data))
    return data[:i] + m[2] + data[i:]


def check(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"m{suffix}"
        p.write_bytes(data)
        try:
            g = bondflow.load_model(p)
            bondflow.reference.run(g, [[0.0] * g.input.size])
        except BondflowError:
            pass


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(m=mutations)
def test_fuzz_onnx(m) -> None:
    check(mutate(IRIS_ONNX, m), ".onnx")


@pytest.mark.slow
@settings(max_examples=max(N // 3, 10), deadline=None, suppress_health_check=list(HealthCheck))
@given(m=mutations)
def test_fuzz_h5(m) -> None:
    check(mutate(IRIS_H5, m), ".h5")

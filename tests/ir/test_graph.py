"""Graph validation, digest stability and JSON round trips."""
from __future__ import annotations

import numpy as np
import pytest

from bondflow.errors import GraphValidationError, QuantizationError
from bondflow.ir import reference
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation, Dense
from bondflow.ir.types import FixedType

X = FixedType(8, 3, rounding="RND_CONV", overflow="SAT")
W = FixedType(6, 1)


def dense(name: str, src: str, n_in: int, n_out: int, seed: int = 0) -> Dense:
    rng = np.random.default_rng(seed)
    return Dense(name=name, input=src, result_type=FixedType(24, 10), weight=rng.integers(-32, 32, (n_in, n_out)),
                 weight_type=W, bias=rng.integers(-32, 32, n_out), bias_type=W, accum_type=FixedType(24, 10))


def small() -> Graph:
    return Graph("t", TensorSpec("x", 4, X), (dense("d1", "x", 4, 5),
                 Activation(name="r1", input="d1", result_type=FixedType(8, 3, False, "RND_CONV", "SAT"), function="relu"),
                 dense("d2", "r1", 5, 2, 1)))


def test_json_round_trip_keeps_digest_and_outputs() -> None:
    g = small()
    g2 = Graph.from_json(g.to_json())
    assert g2.digest() == g.digest()
    x = np.random.default_rng(3).integers(X.min_raw, X.max_raw + 1, (500, 4))
    assert np.array_equal(reference.run_raw(g, x), reference.run_raw(g2, x))


def test_digest_changes_with_one_weight() -> None:
    g = small()
    d1 = g.ops[0]
    w = d1.weight.copy()
    w[0, 0] += 1
    g2 = Graph("t", g.input, (Dense(name="d1", input="x", result_type=d1.result_type, weight=w, weight_type=W,
                                    bias=d1.bias, bias_type=W, accum_type=d1.accum_type),) + g.ops[1:])
    assert g2.digest() != g.digest()


def test_edited_json_is_detected() -> None:
    text = small().to_json().replace('"d2"', '"d3"', 1)
    with pytest.raises(GraphValidationError):
        Graph.from_json(text)


def test_dangling_input() -> None:
    with pytest.raises(GraphValidationError, match="dangling"):
        Graph("t", TensorSpec("x", 4, X), (dense("d1", "nope", 4, 5),))


def test_cycle_or_order() -> None:
    a = dense("a", "b", 4, 4)
    b = dense("b", "a", 4, 4)
    with pytest.raises(GraphValidationError):
        Graph("t", TensorSpec("x", 4, X), (a, b))


def test_shape_mismatch() -> None:
    with pytest.raises(GraphValidationError, match="expects 5 inputs, not 4"):
        Graph("t", TensorSpec("x", 4, X), (dense("d1", "x", 5, 3),))


def test_two_outputs_refused() -> None:
    with pytest.raises(GraphValidationError, match="one output"):
        Graph("t", TensorSpec("x", 4, X), (dense("d1", "x", 4, 3), dense("d2", "x", 4, 3)))


def test_overflowing_weight_refused() -> None:
    with pytest.raises(QuantizationError, match="must fit"):
        Dense(name="d", input="x", result_type=FixedType(16, 8), weight=np.full((2, 2), 40), weight_type=W,
              bias=np.zeros(2), bias_type=W, accum_type=FixedType(16, 8))


def test_sequential_accumulation_with_narrow_accumulator() -> None:
    """A saturating accumulator must saturate after every add, in input order (hls4ml's loop)."""
    acc = FixedType(8, 8, overflow="SAT")
    d = Dense(name="d", input="x", result_type=acc, weight=np.array([[1], [1], [-1]]), weight_type=FixedType(4, 4),
              bias=np.zeros(1), bias_type=FixedType(4, 4), accum_type=acc)
    g = Graph("t", TensorSpec("x", 3, FixedType(8, 8)), (d,))
    # 100 + 100 saturates at 127, then -100 -> 27 (an exact sum would give 100).
    assert reference.run_raw(g, np.array([[100, 100, 100]])).tolist() == [[27]]


def test_dumps_indented_is_json_dumps_text() -> None:
    """The fast writer of graph.json gives json.dumps's text exactly (design digests depend on it)."""
    import json

    from bondflow.ir.graph import dumps_indented
    cases = [{"w": [[1, -2], [3, 4]], "b": [5], "e": [], "n": [[], [1]], "m": [1, [2]], "f": [1.5, 2], "t": [True, 1],
              "deep": [[[1, 2], [3]]], "big": [-1, 10**30], "s": "\x00x"}, {"s": "\x000\x00", "w": [1]}, [[1, 2]], 7]
    for obj in cases:
        for indent in (0, 1, 3):
            assert dumps_indented(obj, indent) == json.dumps(obj, indent=indent)

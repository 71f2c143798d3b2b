"""The merge op (add, concatenate): type rule, shape and graph validation, JSON, and the golden model's exact arithmetic."""
from __future__ import annotations

import numpy as np
import pytest

from bondflow.errors import GraphValidationError, QuantizationError
from bondflow.ir import reference
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.merge import Merge, merge_result_type
from bondflow.ir.ops import Activation
from bondflow.ir.types import FixedType

X = FixedType(8, 3, rounding="RND_CONV", overflow="SAT")


def test_merge_type_rule_and_shape_errors() -> None:
    assert str(merge_result_type("add", [FixedType(8, 3), FixedType(10, 2, signed=False)])) == "fixed<12,4>"
    assert str(merge_result_type("concatenate", [FixedType(8, 3), FixedType(10, 2, signed=False)])) == "fixed<11,3>"
    assert str(merge_result_type("add", [FixedType(8, 3)] * 3)) == "fixed<10,5>"
    t = FixedType(8, 3)
    with pytest.raises(GraphValidationError, match=r"add 'a' needs equal shapes, not \(4,\) \('x'\) and \(5,\) \('y'\)"):
        Merge(name="a", inputs=("x", "y"), result_type=t).infer_shape([(4,), (5,)])
    with pytest.raises(GraphValidationError, match="shapes equal except axis 2"):
        Merge(name="c", inputs=("x", "y"), result_type=t, function="concatenate", axis=2).infer_shape([(4, 4, 2), (4, 3, 2)])
    with pytest.raises(GraphValidationError, match="at least 2 tensors"):
        Merge(name="m", inputs=("x",), result_type=t)


def test_golden_merge_is_exact_on_random_raw_values() -> None:
    """Merges of differently typed tensors: the golden model's integers equal exact rational arithmetic."""
    xt, at = FixedType(10, 4), FixedType(7, 1, signed=False)  # 6 and 6 fraction bits... then the relu adds 3 more
    rt = FixedType(12, 3, signed=False)
    ops = (Activation(name="r", input="x", result_type=rt, function="relu"),
           Activation(name="l", input="x", result_type=at, function="linear"),
           Merge(name="s", inputs=("r", "x", "l"), result_type=merge_result_type("add", [rt, xt, at])),
           Merge(name="c", inputs=("s", "l"), result_type=merge_result_type("concatenate", [merge_result_type("add", [rt, xt, at]), at]),
                 function="concatenate"))
    g = Graph("m", TensorSpec("x", 5, xt), ops)
    x = np.random.default_rng(7).integers(xt.min_raw, xt.max_raw + 1, (3000, 5))
    v = reference.trace_raw(g, x)
    real = {k: g.types()[k].to_float(a) for k, a in v.items()}
    assert np.array_equal(real["s"], real["r"] + real["x"] + real["l"])  # exact: no rounding, no wrap
    assert np.array_equal(real["c"], np.concatenate([real["s"], real["l"]], axis=1))


def _residual() -> Graph:
    r = Activation(name="r", input="x", result_type=FixedType(8, 3, False), function="relu")
    return Graph("res", TensorSpec("x", 4, X), (r, Merge(name="s", inputs=("r", "x"), result_type=merge_result_type("add", [r.result_type, X]))))


def test_graph_with_merge_validates_and_round_trips() -> None:
    g = _residual()
    assert not g.is_chain() and g.branch_op().name == "s" and g.shapes()["s"] == (4,)
    assert set(g.to_networkx().predecessors("s")) == {"r", "x"}
    g2 = Graph.from_json(g.to_json())
    assert g2.digest() == g.digest() and g2.op("s").inputs == ("r", "x") and g2.op("s").input == "r"
    assert g.to_dict()["ops"][1] == {"kind": "merge", "name": "s", "inputs": ["r", "x"], "result_type": "fixed<10,5>", "function": "add"}
    chain = Graph("c", TensorSpec("x", 4, X), (g.ops[0],))
    assert chain.is_chain() and chain.branch_op() is None and "inputs" not in chain.to_dict()["ops"][0]  # single-input JSON as before


def test_merge_graph_errors() -> None:
    r = Activation(name="r", input="x", result_type=X, function="relu")
    with pytest.raises(GraphValidationError, match="reads 'nope'"):
        Graph("g", TensorSpec("x", 4, X), (r, Merge(name="s", inputs=("r", "nope"), result_type=X)))
    with pytest.raises(GraphValidationError, match="topological order"):
        Graph("g", TensorSpec("x", 4, X), (Merge(name="s", inputs=("x", "r"), result_type=X), Activation(name="r", input="x", result_type=X)))
    with pytest.raises(GraphValidationError, match="one output"):  # 'r' read by nothing: two sinks
        Graph("g", TensorSpec("x", 4, X), (r, Activation(name="q", input="x", result_type=X)))
    with pytest.raises(QuantizationError, match="must fit 62 bits"):
        merge_result_type("add", [FixedType(40, 39), FixedType(40, 1)])


def test_golden_refuses_overflowing_exact_sum() -> None:
    wide = FixedType(60, 59)
    g = Graph("w", TensorSpec("x", 2, wide), (Activation(name="f", input="x", result_type=FixedType(60, 1), function="linear"),
                                             Merge(name="s", inputs=("f", "x"), result_type=FixedType(8, 3))))
    with pytest.raises(QuantizationError, match="add .* must fit 62 bits"):
        reference.run_raw(g, np.zeros((1, 2), dtype=np.int64))

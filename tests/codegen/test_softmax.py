"""Golden softmax == hls4ml 1.3's table softmax (stable and latency), bit for bit, across types and table sizes."""
from __future__ import annotations

import numpy as np
import pytest

import bondflow
from bondflow.codegen.hls4ml.generator import build_project
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Dense, Softmax
from bondflow.ir.types import FixedType
from bondflow.sim.vectors import make_vectors


def softmax_graph(impl: str, res: str, logits: str, n_out: int, table_size: int) -> Graph:
    rng = np.random.default_rng(n_out)
    x, w, acc = FixedType(10, 4, rounding="RND_CONV", overflow="SAT"), FixedType(8, 2), FixedType(23, 11)
    return Graph("sm", TensorSpec("x", 6, x), (
        Dense(name="fc", input="x", result_type=FixedType.parse(logits), weight=rng.integers(-128, 128, (6, n_out)),
              weight_type=w, bias=rng.integers(-128, 128, n_out), bias_type=w, accum_type=acc),
        Softmax(name="sm", input="fc", result_type=FixedType.parse(res), implementation=impl, table_size=table_size)))


# (implementation, result type, logits type, outputs, table size): defaults, narrow/unsigned types, table-size caps
CASES = [("stable", "fixed<16,6>", "fixed<12,5>", 5, 1024), ("latency", "ufixed<8,0,RND,SAT>", "fixed<8,3>", 3, 1024),
         ("stable", "ufixed<10,1,RND_CONV,SAT>", "ufixed<9,4>", 5, 1024), ("latency", "fixed<16,6>", "fixed<16,6>", 7, 256)]


@pytest.mark.hls4ml
@pytest.mark.parametrize("impl,res,logits,n_out,table_size", CASES)
def test_softmax_golden_equals_hls4ml(impl, res, logits, n_out, table_size, tmp_path, need_tool) -> None:
    need_tool("g++")
    g = softmax_graph(impl, res, logits, n_out, table_size)
    tv = make_vectors(g, 2000, 1)
    y = build_project(g, tmp_path / "hls").predict_raw(tv.inputs)
    bad = np.nonzero(np.any(y != tv.expected, axis=1))[0]
    assert bad.size == 0, f"{bad.size} of {len(y)} differ, first input {tv.inputs[bad[0]].tolist()}"
    assert len(np.unique(y)) > 50  # the inputs really sweep the tables


@pytest.mark.hls4ml
@pytest.mark.parametrize("impl", ["stable", "latency"])
def test_softmax_table_types_reach_hls4ml(impl, tmp_path, need_tool) -> None:
    """Non-default exp/inverse table types (9 and 8 fraction bits) are hls4ml's exp_table_t/inv_table_t: with its
    defaults in their place (ap_fixed<18,8>) nearly every output would differ from the golden model."""
    need_tool("g++")
    from dataclasses import replace
    g = softmax_graph(impl, "fixed<16,6>", "fixed<12,5>", 5, 1024)
    sm = replace(g.ops[-1], exp_table_type=FixedType(10, 1, rounding="RND", overflow="SAT"),
                 inv_table_type=FixedType(12, 4, rounding="RND", overflow="SAT"))
    g2 = Graph(g.name, g.input, g.ops[:-1] + (sm,))
    tv = make_vectors(g2, 2000, 1)
    y = build_project(g2, tmp_path / "hls").predict_raw(tv.inputs)
    assert np.array_equal(y, tv.expected)
    assert np.mean(np.any(bondflow.reference.run_raw(g, tv.inputs) != tv.expected, axis=1)) > 0.5  # the types matter


def test_softmax_rows_sum_near_one() -> None:
    """Row sums exceed 1 by up to ~25 %: hls4ml addresses its inverse table with the sum's top 10 of 18 bits
    (steps of 0.25, truncated), so 1/sum is overestimated; the golden model keeps that on purpose."""
    g = softmax_graph("stable", "fixed<16,6>", "fixed<12,5>", 5, 1024)
    s = bondflow.reference.run(g, np.random.default_rng(0).uniform(-4, 4, (200, 6))).sum(axis=1)
    assert np.all((s >= 0.99) & (s <= 1.26)), (s.min(), s.max())


def test_softmax_implementation_is_checked() -> None:
    with pytest.raises(bondflow.errors.GraphValidationError, match="implementation must be one of"):
        Softmax(name="s", input="x", result_type=FixedType(16, 6), implementation="argmax")

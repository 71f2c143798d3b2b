"""Triangle on small in-test graphs: every rounding x overflow mode the issue names, sigmoid and softmax tables, RF 1 and > 1."""
from __future__ import annotations

import numpy as np
import pytest

import bondflow
from bondflow.codegen.hls4ml.generator import build_project
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation, Dense, Sigmoid, Softmax
from bondflow.ir.types import FixedType
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import TestVectors, make_vectors

T = FixedType.parse


def _dense(name: str, inp: str, n_in: int, n_out: int, res: str, seed: int, wt: str = "fixed<6,2>") -> Dense:
    rng = np.random.default_rng(seed)
    w, x_frac = T(wt), 8
    acc = FixedType(24, 24 - (x_frac + w.frac_bits))  # exact: every product bit, room for the sum
    weight = rng.integers(w.min_raw, w.max_raw + 1, (n_in, n_out))
    weight[rng.random((n_in, n_out)) < 0.3] = 0  # some pruning
    return Dense(name=name, input=inp, result_type=T(res), weight=weight, weight_type=w,
                 bias=rng.integers(w.min_raw, w.max_raw + 1, n_out), bias_type=w, accum_type=acc)


def modes_graph(which: str) -> Graph:
    """Two chains that between them put TRN, RND, RND_CONV, TRN_ZERO each with WRAP and with SAT on a cast."""
    x = TensorSpec("x", 5, T("fixed<10,2,RND_CONV,SAT>"))  # 8 fractional bits, as _dense's accumulator assumes
    if which == "a":
        ops = (_dense("d1", "x", 5, 6, "fixed<12,4,TRN,WRAP>", 1), Activation(name="a1", input="d1", result_type=T("fixed<10,2,RND,SAT>"), function="relu"),
               _dense("d2", "a1", 6, 4, "fixed<11,3,RND_CONV,WRAP>", 2), Activation(name="a2", input="d2", result_type=T("fixed<10,2,TRN_ZERO,SAT>"), function="linear"))
    else:
        ops = (_dense("d1", "x", 5, 6, "fixed<11,3,TRN_ZERO,WRAP>", 3), Activation(name="a1", input="d1", result_type=T("ufixed<9,1,RND_CONV,SAT>"), function="relu"),
               _dense("d2", "a1", 6, 4, "fixed<9,2,RND,WRAP>", 4, "fixed<6,3>"), Activation(name="a2", input="d2", result_type=T("fixed<8,2,TRN,SAT>"), function="relu"))
    return Graph(f"modes_{which}", x, ops)


def tables_graph(which: str) -> Graph:
    x = TensorSpec("x", 5, T("fixed<10,2,RND_CONV,SAT>"))
    d = _dense("d1", "x", 5, 4, "fixed<12,5>", 5)
    if which == "sigmoid":
        return Graph("sig", x, (d, Sigmoid(name="out", input="d1", result_type=T("ufixed<10,1,RND,SAT>"))))
    return Graph("sm", x, (d, Softmax(name="out", input="d1", result_type=T("ufixed<12,2,RND_CONV,SAT>"),
                                      implementation=which.split("_")[1])))


# Reuse factors per layer where one value is not valid for every layer (hls4ml's rule: 5x6 takes 1, 5, 10, 15, 30).
CASES = [("modes_a", 1), ("modes_a", {"d1": 5, "d2": 2}), ("modes_b", 1), ("modes_b", {"d1": 10, "d2": 3}),
         ("sigmoid", 1), ("sigmoid", 5), ("softmax_stable", 1), ("softmax_stable", 10), ("softmax_latency", 5)]


def _graph(name: str) -> Graph:
    return modes_graph(name[-1]) if name.startswith("modes") else tables_graph(name)


@pytest.mark.hls4ml
@pytest.mark.sim
@pytest.mark.parametrize("name,rf", CASES)
def test_triangle_small(name, rf, tmp_path, need_tool) -> None:
    need_tool("g++")
    need_tool("iverilog")
    g = _graph(name)
    ii = max(rf.values()) if isinstance(rf, dict) else rf
    tv = make_vectors(g, 1000, seed=ii)
    assert len(np.unique(tv.expected)) > 20  # the vectors really exercise the casts
    hls = build_project(g, tmp_path / "hls", reuse_factor=rf).predict_raw(tv.inputs)
    bad = np.nonzero(np.any(hls != tv.expected, axis=1))[0]
    assert bad.size == 0, f"hls4ml differs from golden on {bad.size} vectors, first input {tv.inputs[bad[0]].tolist()}"
    d = bondflow.generate(g, "dataflow", reuse_factor=rf)
    lint(d)
    r = simulate(d.write(tmp_path / "df"), tv, simulator="icarus", seed=ii)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles == ii


@pytest.mark.sim
@pytest.mark.parametrize("name,rf", [("softmax_stable", 5), ("modes_b", 1)])
def test_dataflow_verilator(name, rf, tmp_path, need_tool) -> None:
    need_tool("verilator")
    g = _graph(name)
    d = bondflow.generate(g, "dataflow", reuse_factor=rf)
    r = simulate(d.write(tmp_path / "df"), make_vectors(g, 1000, seed=7), simulator="verilator")
    assert r.passed and r.ii_cycles == rf, r.summary()


def test_rtl_mismatch_fails(tmp_path, need_tool) -> None:
    """A single wrong expected value is reported as a failure (the tests cannot pass vacuously)."""
    need_tool("iverilog")
    g = _graph("sigmoid")
    tv = make_vectors(g, 50, seed=1)
    exp = tv.expected.copy()
    exp[17, 2] ^= 1
    r = simulate(bondflow.generate(g, "dataflow").write(tmp_path / "df"),
                 TestVectors(inputs=tv.inputs, expected=exp, seed=tv.seed, graph_digest=tv.graph_digest), simulator="icarus")
    assert not r.passed


def test_reuse_factor_must_divide() -> None:
    with pytest.raises(bondflow.errors.ConfigError, match=r"reuse factor for layer 'd1' \(5x6\) must be one of \[1, 5, 10, 15, 30\], not 4"):
        bondflow.generate(_graph("modes_a"), "dataflow", reuse_factor=4)


@pytest.mark.hls4ml
@pytest.mark.parametrize("acc", ["fixed<12,4,RND_CONV,SAT>", "fixed<11,5,TRN_ZERO,SAT>", "fixed<10,3,RND,WRAP>"])
def test_narrow_accumulator_golden_equals_hls4ml(acc, tmp_path, need_tool) -> None:
    """hls4ml casts every product to accum_t before adding it (dense_latency); the golden model does the same.
    Before this was fixed, 323 (RND_CONV, SAT) and 1959 (TRN_ZERO, SAT) of 2000 vectors differed."""
    need_tool("g++")
    rng = np.random.default_rng(0)
    w = T("fixed<8,2>")
    g = Graph("acc", TensorSpec("x", 6, T("fixed<10,3>")), (
        Dense(name="fc", input="x", result_type=T("fixed<10,4,RND,SAT>"), weight=rng.integers(-128, 128, (6, 4)),
              weight_type=w, bias=rng.integers(-128, 128, 4), bias_type=w, accum_type=T(acc)),))
    tv = make_vectors(g, 2000, 1)
    assert np.array_equal(build_project(g, tmp_path / "hls").predict_raw(tv.inputs), tv.expected)
    with pytest.raises(bondflow.errors.UnsupportedOpError, match="fc"):
        bondflow.generate(g, "dataflow")  # the RTL keeps exact accumulators only (what every frontend produces)


@pytest.mark.hls4ml
def test_resource_strategy_golden_equals_hls4ml(tmp_path, need_tool) -> None:
    """hls4ml's Resource strategy sums in another order; with exact (wrapping) accumulators the bits agree."""
    need_tool("g++")
    g = _graph("modes_b")
    tv = make_vectors(g, 1000, seed=5)
    prj = build_project(g, tmp_path / "hls", reuse_factor={"d1": 10, "d2": 3}, strategy="resource")
    assert np.array_equal(prj.predict_raw(tv.inputs), tv.expected)

"""The bit-exactness triangle: golden model == hls4ml C simulation == dataflow RTL, per example, RF 1 and > 1."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.codegen.hls4ml.generator import build_project, closest_valid_reuse
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import make_vectors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# (example, target reuse factor, RTL vectors in CI; `make bench` runs more)
CASES = [("iris", 1, 1000), ("iris", 4, 1000), ("jet_tagger", 1, 300), ("jet_tagger", 8, 300),
         ("muon_pt", 1, 300), ("muon_pt", 4, 300)]


@pytest.fixture(scope="module")
def graphs():
    return {name: bondflow.load_model(EXAMPLES / name / "model.h5") for name in {c[0] for c in CASES}}


@pytest.mark.hls4ml
@pytest.mark.sim
@pytest.mark.parametrize("example,rf,n_rtl", CASES)
def test_triangle(graphs, example, rf, n_rtl, tmp_path, need_tool) -> None:
    need_tool("g++")
    need_tool("iverilog")
    g = graphs[example]
    data = np.load(EXAMPLES / example / "data.npz")["x_test"]
    tv = make_vectors(g, 1000, seed=rf, data=data)
    reuse = closest_valid_reuse(g, rf)
    # golden == hls4ml C simulation, on 1000 vectors
    prj = build_project(g, tmp_path / "hls", reuse_factor=reuse)
    assert prj.source == "source model"  # hls4ml read the user's QKeras file, with the Graph's precisions
    hls = prj.predict_raw(tv.inputs)
    bad = np.nonzero(np.any(hls != tv.expected, axis=1))[0]
    assert bad.size == 0, f"hls4ml differs from the golden model on {bad.size} vectors, first input {tv.inputs[bad[0]].tolist()}"
    # dataflow RTL == golden, on the same vectors (a prefix in CI)
    d = bondflow.generate(g, "dataflow", reuse_factor=reuse)
    lint(d)
    sub = type(tv)(inputs=tv.inputs[:n_rtl], expected=tv.expected[:n_rtl], seed=tv.seed, graph_digest=tv.graph_digest)
    r = simulate(d.write(tmp_path / "df"), sub, simulator="icarus", seed=rf)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles


@pytest.mark.sim
def test_dataflow_on_verilator(graphs, tmp_path, need_tool) -> None:
    need_tool("verilator")
    g = graphs["iris"]
    d = bondflow.generate(g, "dataflow")
    r = simulate(d.write(tmp_path / "df"), 1000, simulator="verilator", data=np.load(EXAMPLES / "iris" / "data.npz")["x_test"])
    assert r.passed and r.ii_cycles == 1.0, r.summary()


def test_pruned_weights_cost_no_multipliers(graphs) -> None:
    g = graphs["muon_pt"]
    d = bondflow.generate(g, "dataflow")
    assert d.info["multipliers"] == sum(o.nonzero() for o in g.dense_layers())


def test_invalid_reuse_factor_lists_valid_values(graphs) -> None:
    with pytest.raises(bondflow.errors.ConfigError, match=r"reuse factor for layer 'fc1' \(4x16\) must be one of \[1, 2, 4"):
        bondflow.generate(graphs["iris"], "dataflow", reuse_factor=3)


@pytest.mark.hls4ml
def test_hls4ml_design_records_csim(graphs, need_tool) -> None:
    need_tool("g++")
    d = bondflow.generate(graphs["iris"], "hls4ml", vectors=200)
    assert d.language == "hls-c++" and d.info["csim_mismatches_vs_golden"] == 0
    assert any(k.endswith("myproject.cpp") for k in d.files)
    with pytest.raises(bondflow.errors.ToolNotFoundError, match="vitis_hls"):
        bondflow.generate(graphs["iris"], "hls4ml", vectors=10, synth=True)


@pytest.mark.hls4ml
@pytest.mark.parametrize("res", ["fixed<16,6>", "ufixed<8,1,RND,SAT>"])
def test_sigmoid_golden_equals_hls4ml(res, tmp_path, need_tool) -> None:
    """hls4ml's table sigmoid (float32 table, truncating index) reproduced bit for bit on 3000 vectors, in RTL too."""
    need_tool("g++")
    from bondflow.ir.graph import Graph, TensorSpec
    from bondflow.ir.ops import Dense, Sigmoid
    from bondflow.ir.types import FixedType
    rng = np.random.default_rng(0)
    x, w, acc = FixedType(10, 4, rounding="RND_CONV", overflow="SAT"), FixedType(8, 2), FixedType(23, 11)
    g = Graph("sig", TensorSpec("x", 6, x), (
        Dense(name="fc", input="x", result_type=acc, weight=rng.integers(-128, 128, (6, 4)), weight_type=w,
              bias=rng.integers(-128, 128, 4), bias_type=w, accum_type=acc),
        Sigmoid(name="sig", input="fc", result_type=FixedType.parse(res))))
    tv = make_vectors(g, 3000, 1)
    y = build_project(g, tmp_path / "hls").predict_raw(tv.inputs)
    assert np.array_equal(y, tv.expected)
    assert len(np.unique(y)) > 100  # the inputs really sweep the table
    # ... and the dataflow RTL's sigmoid ROM gives the same bits
    need_tool("iverilog")
    r = simulate(bondflow.generate(g, "dataflow").write(tmp_path / "df"), tv, simulator="icarus")
    assert r.passed, r.summary()


@pytest.mark.hls4ml
def test_hls4ml_from_graph_weights_when_no_source(graphs, tmp_path, need_tool) -> None:
    """Without the source file (graph built in Python or from ONNX) hls4ml reads a model rebuilt from the graph."""
    need_tool("g++")
    g = graphs["jet_tagger"]
    tv = make_vectors(g, 1000, seed=3, data=np.load(EXAMPLES / "jet_tagger" / "data.npz")["x_test"])
    prj = build_project(g, tmp_path / "hls", reuse_factor=closest_valid_reuse(g, 2), use_source=False)
    assert prj.source == "graph"
    assert np.array_equal(prj.predict_raw(tv.inputs), tv.expected)


def test_hls4ml_errors_name_the_layer(graphs) -> None:
    from bondflow.codegen.hls4ml.generator import _hls4ml_error
    e = _hls4ml_error(graphs["iris"], Exception("Unsupported precision for layer fc2 (weight)"), Path("/tmp/x"))
    assert isinstance(e, bondflow.errors.ToolFailedError) and "layer 'fc2'" in str(e)


@pytest.mark.hls4ml
def test_hls4ml_board_project(graphs, need_tool) -> None:
    """--board gives hls4ml's VivadoAccelerator (PYNQ) project, still with a bit-exact C simulation."""
    need_tool("g++")
    d = bondflow.generate(graphs["iris"], "hls4ml", board="pynq-z2", vectors=100)
    assert d.info["csim_mismatches_vs_golden"] == 0
    assert "hls4ml_prj/firmware/myproject_axi.cpp" in d.files and "hls4ml_prj/axi_stream_driver.py" in d.files
    with pytest.raises(bondflow.errors.ConfigError, match="board must be one of"):
        bondflow.generate(graphs["iris"], "hls4ml", board="de10-nano", vectors=10)

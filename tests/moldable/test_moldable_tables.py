"""moldable softmax and sigmoid: table units bit-exact with the golden model in the ISA model and in RTL."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.bondmachine.moldable.program import TableLayer, map_network, simulate_isa
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation, Dense, Sigmoid, Softmax
from bondflow.ir.types import FixedType
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import make_vectors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _iris_with(kind: str, **kw) -> Graph:
    """The Iris example with a softmax or sigmoid appended to its logits."""
    g = bondflow.load_model(EXAMPLES / "iris" / "model.h5")
    last = g.ops[-1].name
    op = Softmax(name="probs", input=last, **kw) if kind == "softmax" else Sigmoid(name="probs", input=last, **kw)
    return Graph(g.name + "_" + kind, g.input, (*g.ops, op))


def _mid_sigmoid() -> Graph:
    """Dense -> sigmoid -> Dense -> softmax(latency): a table unit between two core layers, then a last one."""
    rng = np.random.default_rng(3)
    x, w = FixedType(10, 4, rounding="RND_CONV", overflow="SAT"), FixedType(8, 2)
    s = FixedType.parse("ufixed<8,0,RND,SAT>")
    return Graph("mid", TensorSpec("x", 6, x), (
        Dense(name="fc1", input="x", result_type=FixedType(12, 5), weight=rng.integers(-128, 128, (6, 5)), weight_type=w,
              bias=rng.integers(-128, 128, 5), bias_type=w, accum_type=FixedType(23, 11)),
        Sigmoid(name="sig", input="fc1", result_type=s, table_size=512),
        Dense(name="fc2", input="sig", result_type=FixedType(12, 5), weight=rng.integers(-128, 128, (5, 3)), weight_type=w,
              bias=rng.integers(-128, 128, 3), bias_type=w, accum_type=FixedType(24, 10)),
        Activation(name="a2", input="fc2", result_type=FixedType(10, 4), function="linear"),
        Softmax(name="sm", input="a2", result_type=FixedType.parse("ufixed<10,1,RND_CONV,SAT>"), implementation="latency")))


GRAPHS = {
    "iris_softmax": lambda: _iris_with("softmax", result_type=FixedType(16, 6)),
    "iris_softmax_small": lambda: _iris_with("softmax", result_type=FixedType.parse("ufixed<8,0,RND,SAT>"), table_size=256),
    "iris_sigmoid": lambda: _iris_with("sigmoid", result_type=FixedType.parse("ufixed<8,0,RND,SAT>")),
    "mid_sigmoid": _mid_sigmoid,
}
# (graph, cores, lanes, RTL vectors, simulator)
CASES = [("iris_softmax", 4, 1, 1000, "icarus"), ("iris_softmax_small", 16, 4, 1000, "icarus"),
         ("iris_sigmoid", 1, 1, 1000, "icarus"), ("mid_sigmoid", 2, 2, 1000, "icarus"), ("iris_softmax", 2, 1, 500, "verilator")]


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_isa_model_is_bit_exact(name: str) -> None:
    g = GRAPHS[name]()
    net = map_network(g, 3)
    assert any(isinstance(l, TableLayer) for l in net.layers)
    tv = make_vectors(g, 3000, seed=7)
    y, _ = simulate_isa(net, tv.inputs)
    assert np.array_equal(y, tv.expected)
    assert len(np.unique(y)) > 10  # the vectors really sweep the tables


@pytest.mark.sim
@pytest.mark.parametrize("name,cores,lanes,n,sim", CASES)
def test_rtl_bit_exact_with_tables(name, cores, lanes, n, sim, tmp_path, need_tool) -> None:
    need_tool("iverilog" if sim == "icarus" else "verilator")
    g = GRAPHS[name]()
    d = bondflow.generate(g, "moldable", cores=cores, lanes=lanes)
    lint(d)
    r = simulate(d.write(tmp_path / "m"), n, simulator=sim, seed=cores + lanes)
    assert r.passed, r.summary()
    _, cyc = simulate_isa(map_network(g, cores, lanes), np.zeros((1, g.input.size), dtype=np.int64))
    assert r.latency_cycles == cyc["latency"] + 2 == d.latency_cycles
    assert r.ii_cycles == cyc["ii"] == d.ii_cycles


def test_table_unit_reuses_dataflow_roms() -> None:
    d = bondflow.generate(GRAPHS["iris_softmax"](), "moldable", cores=2)
    roms = [f for f in d.files if f.endswith("_rom.v")]
    assert {r.rsplit("_", 2)[-2] for r in roms} == {"exp", "inv"}
    assert all(f in d.rtl_files for f in roms)
    assert d.info["table_units"] == ["probs (softmax)"]

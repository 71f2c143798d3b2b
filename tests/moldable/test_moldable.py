"""moldable: bit-exact in RTL at two or more core counts; instruction-simulator values and cycles equal the RTL's."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.bondmachine.moldable.program import map_network, simulate_isa
from bondflow.errors import ConfigError
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import make_vectors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# (example, cores per layer, MAC lanes per core, RTL vectors in CI, simulator)
CASES = [("iris", 1, 1, 1000, "icarus"), ("iris", 4, 1, 1000, "icarus"), ("iris", 16, 4, 1000, "icarus"),
         ("jet_tagger", 8, 1, 150, "verilator"), ("jet_tagger", 32, 1, 300, "verilator"),
         ("muon_pt", 4, 1, 200, "verilator"), ("muon_pt", 15, 1, 300, "icarus"), ("muon_pt", 4, 3, 300, "icarus")]


@pytest.fixture(scope="module")
def graphs():
    return {n: bondflow.load_model(EXAMPLES / n / "model.h5") for n in ("iris", "jet_tagger", "muon_pt")}


@pytest.mark.parametrize("example,cores,lanes", sorted({c[:3] for c in CASES}))
def test_isa_simulator_is_bit_exact(graphs, example, cores, lanes) -> None:
    g = graphs[example]
    tv = make_vectors(g, 2000, seed=cores, data=np.load(EXAMPLES / example / "data.npz")["x_test"])
    y, _ = simulate_isa(map_network(g, cores, lanes), tv.inputs)
    assert np.array_equal(y, tv.expected)


@pytest.mark.sim
@pytest.mark.parametrize("example,cores,lanes,n,sim", CASES)
def test_rtl_matches_golden_and_isa_cycles(graphs, example, cores, lanes, n, sim, tmp_path, need_tool) -> None:
    need_tool("iverilog" if sim == "icarus" else "verilator")
    g = graphs[example]
    d = bondflow.generate(g, "moldable", cores=cores, lanes=lanes)
    lint(d)
    r = simulate(d.write(tmp_path / "m"), n, simulator=sim, seed=cores)
    assert r.passed, r.summary()
    net = map_network(g, cores, lanes)
    _, cyc = simulate_isa(net, np.zeros((1, g.input.size), dtype=np.int64))
    # ISA cycles + the shell's two registers == RTL latency; the slowest layer sets the II.
    assert r.latency_cycles == cyc["latency"] + 2 == d.latency_cycles
    assert r.ii_cycles == cyc["ii"] == d.ii_cycles


def test_more_cores_fewer_cycles(graphs) -> None:
    g = graphs["jet_tagger"]
    a, b = map_network(g, 2), map_network(g, 16)
    assert b.latency < a.latency and b.ii < a.ii
    c = map_network(g, 16, 4)  # lanes split each neuron's multiply-accumulates
    assert c.latency < b.latency and c.ii < b.ii


def test_lanes_out_of_range(graphs) -> None:
    for bad in (0, 17, 2.5):
        with pytest.raises(ConfigError, match=rf"MAC lanes per core must be an integer in 1\.\.16, not {bad}"):
            bondflow.generate(graphs["iris"], "moldable", cores=4, lanes=bad)


def test_each_core_has_only_its_opcodes(graphs) -> None:
    d = bondflow.generate(graphs["muon_pt"], "moldable", cores=4)
    desc = json.loads(d.files["moldable.json"])
    for layer in desc["layers"]:
        for core in layer["cores"]:
            assert set(core["opcodes"]) == {i["op"] for i in core["program"]}
    pruned = sum(int(np.count_nonzero(o.weight)) for o in graphs["muon_pt"].dense_layers())
    assert sum(c["program_length"] for l in desc["layers"] for c in l["cores"]) <= pruned + 200  # zero weights cost no cycle


def test_core_count_out_of_range(graphs) -> None:
    with pytest.raises(ConfigError, match=r"cores for layer 'logits' must be in 1\.\.3"):
        bondflow.generate(graphs["iris"], "moldable", cores=[4, 4, 8])
    with pytest.raises(ConfigError, match="must be in 1"):
        bondflow.generate(graphs["iris"], "moldable", cores=0)


# BondMachine's own Iris design (fps16f10, 251 CPs), Icarus: benchmarks/results/bondmachine.json
BONDMACHINE_IRIS_LATENCY, BONDMACHINE_IRIS_II = 174, 173


def test_default_cores_are_sized_from_the_model(graphs) -> None:
    """No options: cores per layer from the model; the II of one core per neuron (capped at 16) with fewer cores."""
    for name, g in graphs.items():
        d = bondflow.generate(g, "moldable")
        auto, full = map_network(g, "auto"), map_network(g, 16)
        assert d.info["cores_per_layer"] == [len(l.cores) for l in auto.layers]
        assert auto.ii == full.ii and sum(d.info["cores_per_layer"]) <= sum(len(l.cores) for l in full.layers)
    d = bondflow.generate(graphs["iris"], "moldable")
    assert d.latency_cycles < BONDMACHINE_IRIS_LATENCY / 3 and d.ii_cycles < BONDMACHINE_IRIS_II / 10
    with pytest.raises(ConfigError, match="cores must be a number, a list of numbers or 'auto', not 'many'"):
        bondflow.generate(graphs["iris"], "moldable", cores="many")


@pytest.mark.sim
def test_default_rtl_is_bit_exact(graphs, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(graphs["iris"], "moldable")
    r = simulate(d.write(tmp_path / "m"), 1000, simulator="icarus", seed=5)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles

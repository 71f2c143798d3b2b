"""The muon regressor through ``--arch bondmachine``: RTL == bondflow's model == ``bondmachine -sim`` on its test inputs.

CI-sized: one generation (~2 min, 1,889 CPs) shared by the tests, a few vectors (Icarus runs this design at
~70 clock cycles/s; one vector is ~480 cycles in each of the testbench's two streaming phases). The 500-vector runs,
the jet tagger (4,225 CPs: ~9 min to generate) and the LUT counts are ``benchmarks/bench_bondmachine.py``'s
(results in benchmarks/results/bondmachine.json, docs/bondmachine.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.design import Design

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: RTL vectors in CI (the benchmark runs 500); each costs ~15 s of Icarus on this 1,889-CP design.
RTL_VECTORS = 6
#: Vectors compared with bondmachine -sim in CI (~8 s each at 2,000 ticks).
BMSIM_VECTORS = 5

pytestmark = [pytest.mark.bmtools, pytest.mark.slow]


@pytest.fixture(scope="module")
def muon(request: pytest.FixtureRequest) -> tuple[Design, np.ndarray]:
    """The muon regressor's BondMachine design (fps16f10) and the example's test inputs; without the BondMachine
    tools: skipped, or failed under --require-tools (as conftest's need_bm, once per module)."""
    from bondflow.bondmachine.toolchain import find_neuron_library, missing_tools
    from bondflow.errors import ToolNotFoundError
    try:
        if missing_tools():
            raise ToolNotFoundError(", ".join(missing_tools()), "make setup")
        find_neuron_library()
    except ToolNotFoundError as e:
        if request.config.getoption("--require-tools"):
            pytest.fail(f"BondMachine tools must be installed by make setup, not missing: {e}")
        pytest.skip(str(e))
    g = bondflow.load_model(EXAMPLES / "muon_pt" / "model.h5")
    d = bondflow.generate(g, "bondmachine", number_type="fps16f10")
    return d, np.load(EXAMPLES / "muon_pt" / "data.npz")["x_test"]


@pytest.mark.sim
def test_muon_rtl_matches_model(muon, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    from bondflow.sim.runner import simulate
    d, x = muon
    assert d.info["reference"] == "bondmachine-fps16f10" and d.info["connecting_processors"] > 1000
    r = simulate(d.write(tmp_path / "muon"), vectors=RTL_VECTORS, simulator="icarus", data=x)
    assert r.passed and r.vectors == RTL_VECTORS, r.summary()
    assert r.latency_cycles is not None and r.latency_cycles > 100  # one sample in flight through 1,889 CPs


def test_muon_bm_simulator_matches_model(muon) -> None:
    from bondflow.bondmachine.bmsim import cross_check
    d, x = muon
    c = cross_check(d, vectors=BMSIM_VECTORS, data=x, ticks=2000)
    assert c.agree == c.vectors == BMSIM_VECTORS, c.first_disagreements


def test_muon_model_close_to_golden(muon) -> None:
    """fps16f10 arithmetic (truncating products) stays within a few LSBs of the golden model on the test inputs."""
    from bondflow.ir.reference import quantize_input, run_raw
    from bondflow.sim.vectors import reference_for
    d, x = muon
    g = d.graph()
    xq = quantize_input(g, x)
    t = g.output.type
    diff = np.abs(t.to_float(reference_for(d.info["reference"])(g, xq)) - t.to_float(run_raw(g, xq)))
    assert diff.max() < 0.05, diff.max()  # bench_bondmachine: 0.0112 on all test inputs

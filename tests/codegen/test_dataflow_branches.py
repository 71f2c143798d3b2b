"""Dataflow RTL for graphs with branches: skips balanced by delay chains, add/concatenate merges, bit-exact in RTL."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import UnsupportedOpError
from bondflow.ir.merge import Merge
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import make_vectors

from simgraphs import branchy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.sim
@pytest.mark.parametrize("case", [{}, {"multipliers": "lut", "stage_adders": 2}, {"end_in_merge": True}])
def test_branches_bit_exact_icarus(case, need_tool, tmp_path) -> None:
    need_tool("iverilog")
    opts = dict(case)
    g = branchy(end_in_merge=opts.pop("end_in_merge", False))
    tv = make_vectors(g, 1000, seed=4)
    assert len(np.unique(tv.expected, axis=0)) > 500  # the vectors exercise the merges, not one constant
    d = bondflow.generate(g, "dataflow", **opts)
    assert d.info["branch_delay_bits"] > 0
    lint(d)
    r = simulate(d.write(tmp_path / "d"), tv, simulator="icarus", seed=4, backpressure=True)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 1


@pytest.mark.sim
def test_branches_bit_exact_verilator(need_tool, tmp_path) -> None:
    need_tool("verilator")
    g = branchy(seed=8, end_in_merge=True)
    d = bondflow.generate(g, "dataflow")
    r = simulate(d.write(tmp_path / "d"), make_vectors(g, 1000, seed=9), simulator="verilator", seed=9)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles


@pytest.mark.sim
def test_a_wrong_delay_is_caught(need_tool, tmp_path) -> None:
    """Reading a skip tensor one cycle early mixes two samples: the harness must see it."""
    need_tool("iverilog")
    g = branchy()
    d = bondflow.generate(g, "dataflow")
    core = "rtl/bondflow_dataflow_core.v"
    text = d.files[core]
    m = re.search(r"\.x\(\{.*?\b(\w+)_d(\d+)\b", text)  # a merge's delayed input
    assert m, text
    stem, depth = m.group(1), int(m.group(2))
    early = f"{stem}_d{depth - 1}" if depth > 1 else stem
    bad_text = text[:m.start(1)] + re.sub(rf"\b{stem}_d{depth}\b", early, text[m.start(1):], count=1)
    assert bad_text != text
    bad = type(d)(**{**d.__dict__, "files": {**d.files, core: bad_text}})
    r = simulate(bad.write(tmp_path / "bad"), make_vectors(g, 300, seed=1), simulator="icarus")
    assert not r.passed and r.mismatches > 0


def test_delay_chains_are_shared_and_balanced() -> None:
    """One register chain per tensor, as long as its longest wait; every merge reads its inputs at one time."""
    from bondflow.codegen.dag import plan_dag
    g = branchy()
    plan = plan_dag(g, "dataflow", "//\n")
    names = [d["name"] for d in plan.delays]
    assert len(names) == len(set(names))
    for d in plan.delays:  # a chain's registers feed each other in order
        stem, k = d["name"].rsplit("_d", 1)
        assert d["src"] == (stem if k == "1" else f"{stem}_d{int(k) - 1}")
    depth = {}  # longest path (cycles) to each tensor, recomputed from the layers' own latencies
    lat = {layer.module.removeprefix("bondflow_dataflow_"): layer.latency for layer in plan.layers}
    depth["x"] = 0
    for op in g.ops:
        start = max(depth[s] for s in op.inputs)
        depth[op.name] = start + lat.get(op.name, 0)  # a fused activation adds nothing to its dense
    assert plan.latency == depth[g.ops[-1].name]
    longest = max(int(d["name"].rsplit("_d", 1)[1]) for d in plan.delays)
    waits = [depth[m.name] - lat[m.name] - depth[s] for m in g.ops if isinstance(m, Merge) for s in m.inputs]
    assert longest == max(waits) > 0  # x waits for the long path into sum3


def test_branch_refusals(tmp_path) -> None:
    """Branches in dataflow are MLPs at reuse factor 1; other forms are refused in one line naming the merge."""
    g = branchy()
    with pytest.raises(UnsupportedOpError, match=r"'sum3' of type 'merge add' is not supported by the dataflow architecture "
                                                 r"with reuse_factor 2"):
        bondflow.generate(g, "dataflow", reuse_factor=2)
    for arch in ("bondmachine", "reference"):
        with pytest.raises(UnsupportedOpError, match=f"'sum3' of type 'merge add' is not supported by the {arch} architecture"):
            bondflow.generate(g, arch)


@pytest.mark.sim
def test_bundled_residual_example_in_rtl(need_tool, tmp_path) -> None:
    """The residual digits MLP (Add skip + Concatenate): dataflow RTL == golden on its test images and random ones."""
    need_tool("iverilog")
    g = bondflow.load_model(EXAMPLES / "residual_mlp" / "model.h5")
    d = bondflow.generate(g, "dataflow")
    data = np.load(EXAMPLES / "residual_mlp" / "data.npz")["x_test"]
    r = simulate(d.write(tmp_path / "d"), make_vectors(g, 600, seed=5, data=data), simulator="icarus", seed=5)
    assert r.passed, r.summary()

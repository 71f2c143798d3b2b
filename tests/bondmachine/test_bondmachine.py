"""bondmachine architecture: exact literals, lowering, errors, and (with the Go tools) RTL and BM-simulator agreement."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bondflow.bondmachine.netjson import config_json, net_json, plan
from bondflow.bondmachine.numbers import encode_literal, literal_raw, parse_number_type
from bondflow.bondmachine.numerics import run
from bondflow.errors import ConfigError, ToolNotFoundError, UnsupportedOpError
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Sigmoid
from bondflow.ir.types import FixedType
from simgraphs import one_layer



def test_number_types() -> None:
    assert parse_number_type("fixed<16,6>").name == "fps16f10"
    assert parse_number_type("fps32f16").frac == 16
    assert parse_number_type("float32").is_fixed is False
    with pytest.raises(ConfigError, match="must be"):
        parse_number_type("fixed<12,4>")
    with pytest.raises(ConfigError, match="must be"):
        parse_number_type("posit16")


@pytest.mark.parametrize("name", ["fps16f10", "fps8f4", "fps32f16"])
def test_every_literal_survives_percent_f(name: str) -> None:
    """%f keeps 6 decimals and bmnumbers truncates: the plain value loses a bit, the encoded one never does."""
    nt = parse_number_type(name)
    rng = np.random.default_rng(0)
    bits = min(nt.bits, 24)  # neuralbond holds weights as float32: 24 significant bits at most
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    raws = list(range(lo, hi + 1)) if nt.bits <= 8 else rng.integers(lo, hi + 1, 3000).tolist()
    naive_lost = sum(literal_raw(r / (1 << nt.frac), nt) != r for r in raws)
    assert all(literal_raw(encode_literal(r, nt), nt) == r for r in raws)
    if nt.frac >= 10:
        assert naive_lost > 0  # the upstream exporter's path really loses bits


def test_plan_and_net_json() -> None:
    g = one_layer(n_in=3, n_out=2)
    net = plan(g, parse_number_type("fps16f10"))
    nj = net_json(net)
    assert [n["Type"] for n in nj["Nodes"]].count("relu") == 2
    assert {n["Layer"] for n in nj["Nodes"]} == {0, 1, 2}
    cfg = config_json(net, "/lib")
    assert cfg["Params"]["signshift"] == "15" and "expprec" in cfg["Params"]


def test_unsupported_layer_named() -> None:
    t = FixedType(16, 6)
    g = Graph("s", TensorSpec("x", 2, t), (Sigmoid(name="sig", input="x", result_type=t),))
    with pytest.raises(UnsupportedOpError, match="'sig'.*bondmachine"):
        plan(g, parse_number_type("fps16f10"))


def test_model_matches_exact_arithmetic_when_nothing_overflows() -> None:
    """With wide registers the BM model equals exact rational arithmetic floored per product."""
    g = one_layer(n_in=4, n_out=3, relu=False)
    x = np.random.default_rng(1).integers(-128, 128, (50, 4))
    y = run(g, x, "fps32f16")
    d = g.ops[0]
    prods = np.floor((x[:, :, None] * d.weight[None]) * 2.0 ** (16 - 5 - 5) / 2 ** 0).astype(np.int64)  # x frac 5, w frac 5
    acc = prods.sum(axis=1) + (d.bias << (16 - 5))
    assert np.array_equal(y, acc >> (16 - g.output.type.frac_bits) if g.output.type.frac_bits < 16 else acc)


def test_missing_tools_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from bondflow.codegen.base import generate
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("GOPATH", "/nonexistent")
    for t in ("NEURALBOND", "BASM", "BONDMACHINE"):
        monkeypatch.delenv(f"BONDFLOW_{t}", raising=False)
    with pytest.raises(ToolNotFoundError, match="go install github.com/BondMachineHQ/BondMachine/cmd/.*BM_SRC"):
        generate(one_layer(), "bondmachine")


@pytest.mark.bmtools
def test_tool_panic_is_reported(tmp_path, need_bm) -> None:
    from bondflow.bondmachine.toolchain import run_flow
    from bondflow.errors import ToolFailedError
    net = plan(one_layer(n_in=2, n_out=1), parse_number_type("fps16f10"))
    cfg = config_json(net, "")
    cfg["Params"].pop("signshift")  # our relu needs it: the template fails inside neuralbond/basm
    with pytest.raises(ToolFailedError) as e:
        run_flow(net_json(net), cfg, "fps16f10", 16, tmp_path / "flow")
    assert e.value.log is not None and os.path.exists(e.value.log)


@pytest.mark.bmtools
@pytest.mark.sim
@pytest.mark.parametrize("n_in,n_out,nt", [(3, 2, "fps16f10"), (5, 3, "fps16f8")])
def test_small_rtl_matches_model(tmp_path, need_bm, n_in: int, n_out: int, nt: str) -> None:
    from bondflow.codegen.base import generate
    from bondflow.sim.runner import simulate
    g = one_layer(n_in=n_in, n_out=n_out)
    d = generate(g, "bondmachine", number_type=nt)
    assert d.info["reference"] == f"bondmachine-{nt}"
    r = simulate(d.write(tmp_path / "d"), vectors=60, simulator="icarus")
    assert r.passed, r.summary()


@pytest.mark.bmtools
@pytest.mark.parametrize("nt", ["fps16f10", "fps32f16"])
def test_bm_simulator_agrees_with_model(need_bm, nt: str) -> None:
    """bondmachine -sim and bondflow's model give the same raw outputs (ReLU included), and outputs become valid."""
    from bondflow.bondmachine.bmsim import bm_ticks, cross_check
    from bondflow.codegen.base import generate
    d = generate(one_layer(n_in=4, n_out=3), "bondmachine", number_type=nt)
    r = cross_check(d, vectors=12, ticks=400)
    assert r.agree == r.vectors == 12, r.first_disagreements
    with tempfile.TemporaryDirectory() as tmp:
        bm = Path(tmp) / "bm.json"
        bm.write_text(d.files["bondmachine/bondmachine.json"])
        ntype = parse_number_type(nt)
        ticks = bm_ticks(bm, np.array([1 << 10, -(1 << 10), 0, 5]), ntype.prefix, int(ntype.frac), Path(tmp))
    assert len(ticks) == 3 and all(10 < t < 400 for t in ticks)


def _softmax_graph(n_in: int = 4, n_out: int = 3, res: str = "fixed<16,6>") -> Graph:
    from bondflow.ir.ops import Softmax
    g = one_layer(n_in=n_in, n_out=n_out, relu=False)
    return Graph("sm", g.input, (*g.ops, Softmax(name="sm", input="fc", result_type=FixedType.parse(res))))


def test_fps_div_matches_the_verilog_divider() -> None:
    """sign(a) sign(b) * trunc(|a| 2^f / |b|), wrapped; the same as Go's fpDiv and the generated divider."""
    from bondflow.bondmachine.numerics import fps_div
    from bondflow.errors import QuantizationError
    nt = parse_number_type("fps16f10")
    a, b = np.array([3 << 10, -(3 << 10), 7, -7, 1 << 10]), np.array([2 << 10, 2 << 10, -(3 << 10), -(3 << 10), 1])
    assert fps_div(a, b, nt).tolist() == [1536, -1536, -2, 2, 0]  # 2^20 wraps to 0 in 16 bits
    with pytest.raises(QuantizationError, match="divisor must be non-zero"):
        fps_div(a, np.zeros(5, dtype=np.int64), nt)


def test_softmax_plan_and_expprec_bound() -> None:
    from bondflow.bondmachine.netjson import max_expprec
    assert [max_expprec(parse_number_type(n)) for n in ("fps8f4", "fps16f10", "fps16f8", "fps32f16")] == [3, 4, 5, 7]
    g = _softmax_graph()
    net = plan(g, parse_number_type("fps16f10"))
    assert net.softmax == "softmax" and net.expprec == 4
    nj = net_json(net)
    assert [n["Type"] for n in nj["Nodes"]].count("softmax") == 3
    assert sum(1 for w in nj["Weights"] if w["Layer"] == 2) == 9  # every softmax neuron reads every logit
    assert config_json(net, "")["Params"]["expprec"] == "4"
    with pytest.raises(ConfigError, match=r"expprec must be an integer in 1\.\.4 for fps16f10"):
        plan(g, parse_number_type("fps16f10"), expprec=10)
    with pytest.raises(ConfigError, match="softmax neuron must be one of"):
        plan(g, parse_number_type("fps16f10"), softmax_neuron="argmax")


def test_softmax_model_follows_the_fragment() -> None:
    """softmax: e(x) = 1 + sum x^k/k! in fps steps, then e_j / sum; exact for small inputs, far off for large ones."""
    from bondflow.bondmachine.numerics import softmax_neuron
    nt = parse_number_type("fps32f16")
    x = np.array([[0, 0, 0], [1 << 16, 0, -(1 << 16)]], dtype=np.int64)
    y = softmax_neuron(x, "softmax", 7, nt) / 2.0 ** 16
    assert np.allclose(y[0], 1 / 3, atol=2e-5)
    assert np.allclose(y[1], np.exp([1, 0, -1]) / np.exp([1, 0, -1]).sum(), atol=1e-3)
    q = softmax_neuron(x, "softmaxq", 0, nt) / 2.0 ** 16
    assert q[1].tolist() == [16.0, 6.0, 2.0]  # 6 + 6x + 3x^2 + x^3, not normalised


@pytest.mark.bmtools
@pytest.mark.sim
@pytest.mark.parametrize("neuron,ref,vectors", [("softmax", "bondmachine-fps16f10-softmax4", 150),
                                                ("softmaxq", "bondmachine-fps16f10-softmaxq", 60)])
def test_softmax_rtl_and_bm_simulator_match_model(tmp_path, need_bm, neuron: str, ref: str, vectors: int) -> None:
    """BondMachine's softmax neurons: RTL == bondflow's model == bondmachine -sim (fps16f10, expprec 4)."""
    from bondflow.bondmachine.bmsim import cross_check
    from bondflow.codegen.base import generate
    from bondflow.sim.runner import simulate
    d = generate(_softmax_graph(), "bondmachine", number_type="fps16f10", softmax_neuron=neuron)
    assert d.info["reference"] == ref
    r = simulate(d.write(tmp_path / "d"), vectors=vectors, simulator="icarus")
    assert r.passed, r.summary()
    c = cross_check(d, vectors=15, ticks=3000)
    assert c.agree == c.vectors == 15, c.first_disagreements


def test_step_timeout_grows_with_the_net() -> None:
    from bondflow.bondmachine.toolchain import step_timeout
    nodes = lambda n: {"Nodes": [{"Type": "x"}] * n}  # noqa: E731
    assert step_timeout(nodes(10)) == 900.0
    assert step_timeout(nodes(4225)) > 3 * 900  # the jet tagger's net: basm/bondmachine need more than 15 min loaded
    assert step_timeout(nodes(2000)) < step_timeout(nodes(3000))


@pytest.mark.bmtools
def test_relative_workdir(tmp_path, need_bm, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative workdir (as `bench_bondmachine.py --workdir build/bm` passes) works: the tools run in subfolders."""
    from bondflow.bondmachine.toolchain import run_flow
    monkeypatch.chdir(tmp_path)
    net = plan(one_layer(n_in=2, n_out=1), parse_number_type("fps16f10"))
    flow = run_flow(net_json(net), config_json(net, ""), "fps16f10", 16, Path("rel") / "flow")
    assert flow.workdir.is_absolute() and (flow.hdl_dir / "bondmachine.v").exists()

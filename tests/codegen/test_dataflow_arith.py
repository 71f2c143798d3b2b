"""dataflow's multiplier modes (lut, dsp, auto) and stage_adders: CSD/CSE against integer products, bit-exact RTL, bad options."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.codegen.cmvm import AdderGraph, Node, build_cmvm, csd, evaluate
from bondflow.codegen.cse import share_pairs
from bondflow.codegen.dataflow.reuse import live_multipliers
from bondflow.codegen.dense_lut import _bits, _Widths, cmvm_graph
from bondflow.codegen.layers import product_shape
from bondflow.errors import ConfigError
from bondflow.ir import reference
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation, Dense
from bondflow.ir.types import FixedType
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import TestVectors, make_vectors

T = FixedType.parse
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_csd_digits() -> None:
    for v in range(-1000, 1001):
        digits = csd(v)
        assert sum(s << k for k, s in digits) == v
        ks = [k for k, _ in digits]
        assert all(b - a >= 2 for a, b in zip(ks, ks[1:])), f"{v}: adjacent non-zero digits {digits}"
        assert len(digits) <= (abs(v).bit_length() + 2) // 2 + 1


@pytest.mark.parametrize("seed", range(6))
def test_cmvm_equals_integer_products(seed: int) -> None:
    """Random constant matrices (pruned, repeated columns, all-negative columns) against x @ W, with and without sharing."""
    rng = np.random.default_rng(seed)
    n_in, n_out, wb = int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(2, 11))
    w = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), (n_in, n_out))
    w[rng.random(w.shape) < 0.2] = 0
    if n_out > 2:
        w[:, 1] = w[:, 0]  # identical columns share everything
        w[:, 2] = -np.abs(w[:, 2])  # every term negative: the root must still come out positive
    lo, hi = (0, 255) if seed % 2 else (-128, 127)
    shift = seed % 3
    bias = [int(b) for b in rng.integers(-500, 500, n_out)]
    shared, plain = build_cmvm(w, lo, hi, shift, bias), build_cmvm(w, lo, hi, shift, bias, cse=False)
    for x in [np.full(n_in, lo), np.full(n_in, hi), *rng.integers(lo, hi + 1, (200, n_in))]:
        exp = [int(v) for v in (x.astype(object) @ w.astype(object)) * (1 << shift) + np.array(bias, dtype=object)]
        assert evaluate(shared, x) == exp
        assert evaluate(plain, x) == exp
    assert all(t is None or t.sign > 0 for t in shared.outputs)
    if n_out > 2 and np.count_nonzero(w[:, 0]) > 1:
        assert shared.adders < plain.adders, "the repeated column must be shared"


def test_sharing_is_greedy_to_the_end_and_deterministic() -> None:
    """No shareable pattern repeats when the search stops (a count that fell must stay a candidate), and the
    graph is the same node for node on a second build."""
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, (20, 12))
    g = AdderGraph(nodes=[Node("in", -128, 127, index=i) for i in range(20)])
    terms = [{(i, k): sg for i in range(20) for k, sg in csd(int(w[i, j]))} for j in range(12)]
    rest = share_pairs(g, terms, max_depth=3)
    seen: dict[tuple, int] = {}
    for ts in rest:
        items = sorted(((s, n), sg) for (n, s), sg in ts.items())
        for x, ((s1, n1), g1) in enumerate(items):
            for (s2, n2), g2 in items[x + 1:]:
                if max(g.nodes[n1].depth, g.nodes[n2].depth) < 3:
                    key = (n1, n2, s2 - s1, g1 * g2)
                    seen[key] = seen.get(key, 0) + 1
    assert max(seen.values(), default=0) < 2, "a repeated pattern was left unshared"
    nodes = lambda gr: [(n.kind, n.a, n.b, n.shift, n.sign, n.neg_a) for n in gr.nodes]  # noqa: E731
    assert nodes(build_cmvm(w, -128, 127)) == nodes(build_cmvm(w, -128, 127))


def _emulate(op: Dense, g, w: _Widths, x: np.ndarray) -> np.ndarray:
    """The accumulators (vectors x outputs) as dense_lut's rendered widths compute them: each node kept modulo
    2**width and read sign- or zero-extended, exactly as the Verilog slices and extends it (numpy, all vectors at once)."""
    acc = op.accum_type

    def read(k: int, vals: list, lo: int, width: int) -> np.ndarray:
        n = g.nodes[k]
        v = np.full(len(x), n.index, dtype=np.int64) if n.kind == "const" else vals[k] & ((1 << w.width[k]) - 1)
        if n.kind != "const" and w.signed[k]:
            v = np.where(v >> (w.width[k] - 1), v - (1 << w.width[k]), v)
        return (v >> lo) & ((1 << width) - 1)

    vals: list = []
    for k, n in enumerate(g.nodes):
        W, d = w.width[k], n.shift
        if n.kind == "in":
            vals.append(x[:, n.index].astype(np.int64))
        elif n.kind == "const":
            vals.append(None)
        elif n.neg_a:
            b = (read(n.b, vals, 0, W - d) << d) if d < W else 0
            vals.append((b - read(n.a, vals, 0, W)) & ((1 << W) - 1))
        elif d >= W:
            vals.append(read(n.a, vals, 0, W))
        else:
            hi = (read(n.a, vals, d, W - d) + n.sign * read(n.b, vals, 0, W - d)) & ((1 << (W - d)) - 1)
            vals.append((hi << d) | read(n.a, vals, 0, d))
    out = np.zeros((len(x), len(g.outputs)), dtype=np.int64)
    for j, t in enumerate(g.outputs):
        if t is not None:
            out[:, j] = (read(t.node, vals, 0, acc.width) << t.shift) & ((1 << acc.width) - 1)
    return np.where(acc.signed & (out >> (acc.width - 1) == 1), out - (1 << acc.width), out)


def _golden_acc(op: Dense, xt: FixedType, x: np.ndarray) -> np.ndarray:
    bias = op.accum_type.requantize(np.asarray(op.bias), op.bias_type.frac_bits)
    exact = (x.astype(np.int64) @ op.weight.astype(np.int64)) * (1 << product_shape(op, xt).shift) + bias
    return op.accum_type.requantize(exact, op.accum_type.frac_bits)


@pytest.mark.parametrize("acc_w", [9, 12, 30])
def test_narrow_signals_wrap_like_the_accumulator(acc_w: int) -> None:
    """Signals trimmed to their range, or to the bits a wrapping accumulator keeps, give the golden accumulator."""
    rng = np.random.default_rng(acc_w)
    for xt in (T("fixed<7,3>"), T("ufixed<6,2>")):
        wt = T("fixed<8,2>")
        op = Dense(name="d", input="x", result_type=T("fixed<16,8>"), weight=rng.integers(-128, 128, (6, 5)), weight_type=wt,
                   bias=rng.integers(-128, 128, 5), bias_type=wt, accum_type=FixedType(acc_w, acc_w - xt.frac_bits - 6 - 1))
        g = cmvm_graph(op, xt, product_shape(op, xt).shift)
        w = _Widths(g, op.accum_type.width)
        assert any(w.wrapped) == (acc_w < 20)
        x = np.concatenate([[[xt.min_raw] * 6, [xt.max_raw] * 6], rng.integers(xt.min_raw, xt.max_raw + 1, (2000, 6))])
        assert np.array_equal(_emulate(op, g, w, x), _golden_acc(op, xt, x))
    assert _bits(-1, 0) == (1, True) and _bits(0, 0) == (1, False) and _bits(-129, 127) == (9, True)


def _small_graph() -> Graph:
    """Unsigned input, a wrapping narrow accumulator, an all-zero column and row, every kind of cast after it."""
    rng = np.random.default_rng(11)
    w = T("fixed<6,2>")
    w1 = rng.integers(w.min_raw, w.max_raw + 1, (5, 6))
    w1[:, 3] = 0
    w1[2, :] = 0
    w2 = rng.integers(w.min_raw, w.max_raw + 1, (6, 4))
    x = TensorSpec("x", 5, T("ufixed<8,2>"))
    return Graph("arith", x, (
        Dense(name="d1", input="x", result_type=T("fixed<12,4,RND_CONV,WRAP>"), weight=w1, weight_type=w,
              bias=rng.integers(w.min_raw, w.max_raw + 1, 6), bias_type=w, accum_type=T("fixed<14,4>")),  # wraps
        Activation(name="a1", input="d1", result_type=T("ufixed<9,3,RND,SAT>"), function="relu"),
        Dense(name="d2", input="a1", result_type=T("fixed<10,4,TRN,SAT>"), weight=w2, weight_type=w,
              bias=rng.integers(w.min_raw, w.max_raw + 1, 4), bias_type=w, accum_type=T("fixed<24,12>"))))


@pytest.mark.sim
@pytest.mark.parametrize("opts", [{"multipliers": "lut", "stage_adders": 1}, {"multipliers": "dsp", "stage_adders": 1}])
def test_small_graph_bit_exact(opts, need_tool, tmp_path) -> None:
    """Register chains at every level (1 adder per stage), wrapping accumulators, unsigned inputs: Icarus, 1000 vectors."""
    need_tool("iverilog")
    g = _small_graph()
    tv = make_vectors(g, 1000, seed=2)
    assert len(np.unique(tv.expected)) > 50
    wraps = reference.run_raw(Graph("acc", g.input, (g.ops[0],)), tv.inputs)
    assert wraps.min() < -1000 and wraps.max() > 1000  # the vectors reach the accumulator's wrap
    d = bondflow.generate(g, "dataflow", **opts)
    lint(d)
    r = simulate(d.write(tmp_path / "d"), tv, simulator="icarus", seed=2, backpressure=True)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 1


@pytest.mark.sim
def test_corrupted_adder_fails(need_tool, tmp_path) -> None:
    """One wrong operand in one adder is caught (the bit-exact checks cannot pass vacuously)."""
    need_tool("iverilog")
    g = _small_graph()
    d = bondflow.generate(g, "dataflow", multipliers="lut")
    path = "rtl/bondflow_dataflow_d2.v"
    text = d.files[path]
    k = text.index(" + ", text.index("assign n"))
    bad = type(d)(**{**d.__dict__, "files": {**d.files, path: text[:k] + " - " + text[k + 3:]}})
    r = simulate(bad.write(tmp_path / "bad"), make_vectors(g, 200, seed=1), simulator="icarus")
    assert not r.passed and r.mismatches > 0


def _example(name: str) -> Graph:
    return bondflow.load_model(EXAMPLES / name / "model.h5")


@pytest.mark.parametrize("name", ["muon_pt", "jet_tagger"])
def test_large_examples_adder_graphs_exact(name: str) -> None:
    """Every layer of the two large examples, on the activations 1000 vectors really reach, through the rendered widths.

    Their RTL is too large for CI's simulators (muon: Icarus 174 s, Verilator build 395 s for 1000 vectors); the
    Verilog these widths are rendered into is simulated on Iris and the in-test graphs above.
    """
    g = _example(name)
    tv = make_vectors(g, 1000, seed=6)
    for i, op in enumerate(g.ops):
        if not isinstance(op, Dense):
            continue
        x = tv.inputs if i == 0 else reference.run_raw(Graph("prefix", g.input, g.ops[:i]), tv.inputs)
        xt = g.input.type if i == 0 else g.ops[i - 1].result_type
        ag = cmvm_graph(op, xt, product_shape(op, xt).shift)
        assert np.array_equal(_emulate(op, ag, _Widths(ag, op.accum_type.width), x), _golden_acc(op, xt, x)), op.name


@pytest.mark.sim
def test_iris_every_mode_bit_exact(need_tool, tmp_path) -> None:
    """lut, dsp and auto on Iris, 1000 vectors each with back-pressure (auto: the layers that save most LUTs on DSPs)."""
    need_tool("iverilog")
    g = _example("iris")
    tv = make_vectors(g, 1000, seed=4)
    seen: dict[str, str] = {}
    for mode in ("lut", "dsp", "auto"):
        d = bondflow.generate(g, "dataflow", multipliers=mode)
        rtl = "".join(d.files[p] for p in d.rtl_files)
        if rtl in seen:  # auto chose exactly one of the other designs: already simulated
            continue
        seen[rtl] = mode
        lint(d)
        r = simulate(d.write(tmp_path / mode), tv, simulator="icarus", seed=4, backpressure=True)
        assert r.passed, f"{mode}: {r.summary()}"
        assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 1
    auto = bondflow.generate(g, "dataflow", multipliers="auto").info
    assert auto["dsp_budget"] == 220 and 0 < auto["dsp_estimate"] <= 220 and "dsp" in auto["layer_multipliers"].values()
    assert bondflow.generate(g, "dataflow", multipliers="auto", dsp_budget=0).info["layer_multipliers"] == {"fc1": "lut", "fc2": "lut", "logits": "lut"}


@pytest.mark.sim
@pytest.mark.parametrize("mode,budget", [("lut", None), ("auto", 7)])
def test_reuse_factor_shares_lut_and_dsp_multipliers(mode, budget, need_tool, tmp_path) -> None:
    """RF 5 and 2: shared multipliers as shift-and-add (lut) or as many products as the budget allows (auto), bit-exact
    with back-pressure on 1000 vectors; a flipped sign-bit term in one shift-and-add is caught."""
    need_tool("iverilog")
    g = _small_graph()
    d = bondflow.generate(g, "dataflow", reuse_factor={"d1": 5, "d2": 2}, multipliers=mode,
                          **({"dsp_budget": budget} if budget is not None else {}))
    # d1 shares 6 multipliers, one of which only ever sees the pruned column 3 (a constant 0); d2 shares 12
    assert [len(live_multipliers(op, rf)) for op, rf in ((g.ops[0], 5), (g.ops[2], 2))] == [5, 12]
    want = {"lut": {"d1": 0, "d2": 0}, "auto": {"d1": 5, "d2": 2}}[mode]
    assert d.info["shared_dsp"] == want and d.info["dsp_estimate"] == sum(want.values())
    products = [l for p in d.rtl_files for l in d.files[p].splitlines() if "assign p_" in l and " * " in l]
    assert len(products) == sum(want.values())
    lint(d)
    tv = make_vectors(g, 1000, seed=3)
    r = simulate(d.write(tmp_path / "d"), tv, simulator="icarus", seed=3, backpressure=True)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 5
    path = "rtl/bondflow_dataflow_d2.v"
    text = d.files[path]
    k = text.index(" - (", text.index("assign p_0 ="))
    bad = type(d)(**{**d.__dict__, "files": {**d.files, path: text[:k] + " + (" + text[k + 4:]}})
    assert not simulate(bad.write(tmp_path / "bad"), tv, simulator="icarus").passed


@pytest.mark.synth
def test_reuse_split_maps_to_the_dsps_it_names(need_tool, tmp_path) -> None:
    """yosys (synth_xilinx) maps exactly the shared multipliers written as products to DSP48E1 blocks."""
    need_tool("yosys")
    from bondflow.synth.flow import synthesize
    g = _small_graph()
    dsps = {}
    for budget in (0, 9):
        d = bondflow.generate(g, "dataflow", reuse_factor={"d1": 5, "d2": 2}, multipliers="auto", dsp_budget=budget)
        dsps[budget] = synthesize(d.write(tmp_path / f"b{budget}"), "xc7z020").dsp
    assert dsps == {0: 0, 9: 9}


def test_defaults_unchanged() -> None:
    """No arithmetic option: the same design as before the options existed (dsp, three adder levels per stage)."""
    g = _small_graph()
    a, b = bondflow.generate(g, "dataflow"), bondflow.generate(g, "dataflow", multipliers="dsp", stage_adders=3)
    assert a.files == b.files


def test_auto_fits_the_budget() -> None:
    """Each budget gets the layers that save the most LUTs within it; the estimate counts non-power-of-two weights."""
    from bondflow.codegen.dataflow.arith import dsp_estimate
    g = _small_graph()
    d1, d2 = dsp_estimate(g.ops[0]), dsp_estimate(g.ops[2])
    used = []
    for budget in (0, min(d1, d2), max(d1, d2), d1 + d2 - 1, d1 + d2, 10_000):
        d = bondflow.generate(g, "dataflow", multipliers="auto", dsp_budget=budget)
        modes = d.info["layer_multipliers"]
        assert d.info["dsp_estimate"] <= budget and d.info["dsp_budget"] == budget
        assert d.info["dsp_estimate"] == sum(e for e, m in ((d1, modes["d1"]), (d2, modes["d2"])) if m == "dsp")
        used.append(d.info["dsp_estimate"])
    assert used[0] == 0 and used == sorted(used) and used[-1] > 0
    assert bondflow.generate(g, "dataflow", multipliers="auto", target="ice40-hx8k").info["dsp_budget"] == 0


@pytest.mark.parametrize("opts,msg", [
    ({"multipliers": "fpga"}, r"multipliers must be one of lut, dsp, auto, not 'fpga'"),
    ({"multipliers": "lut", "stage_adders": 0}, r"stage_adders must be an integer >= 1, not 0"),
    ({"stage_adders": "3"}, r"stage_adders must be an integer >= 1, not '3'"),
    ({"multipliers": "lut", "target": "xc7z020"}, r"target and dsp_budget must come with multipliers=auto"),
    ({"multipliers": "auto", "target": "nope"}, r"target must be one of"),
    ({"multipliers": "lut", "reuse_factor": {"d1": 5, "d2": 2}, "stage_adders": 2}, r"reuse factor > 1 shares multipliers, so stage_adders must be unset"),
])
def test_bad_options_one_line(opts, msg) -> None:
    with pytest.raises(ConfigError, match=msg) as e:
        bondflow.generate(_small_graph(), "dataflow", **opts)
    assert "\n" not in str(e.value)


def test_cli_flags_and_specs(tmp_path) -> None:
    from bondflow.cli.cmd_compare import parse_arch_specs
    from bondflow.cli.main import main
    assert parse_arch_specs("dataflow:multipliers=lut:stage_adders=4")["dataflow:multipliers=lut:stage_adders=4"] == \
        ("dataflow", {"multipliers": "lut", "stage_adders": 4})
    assert parse_arch_specs("dataflow:parallelism=auto:multipliers=auto")["dataflow:parallelism=auto:multipliers=auto"] == \
        ("dataflow", {"parallelism": "auto", "multipliers": "auto"})
    with pytest.raises(ConfigError, match="multipliers=lut"):
        parse_arch_specs("dataflow:multipliers=fast")
    gj = tmp_path / "g.json"
    gj.write_text(_small_graph().to_json())
    assert main(["generate", str(gj), "--arch", "dataflow", "--multipliers", "lut", "--stage-adders", "2",
                 "-o", str(tmp_path / "o"), "--no-lint"]) == 0
    assert bondflow.Design.load(tmp_path / "o").options["stage_adders"] == 2

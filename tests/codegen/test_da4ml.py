"""da4ml architecture: the real da4ml library behind the common shell, bit-exact in RTL with back-pressure; refusals."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import BondflowError, ConfigError, MissingDependencyError, QuantizationError, UnsupportedOpError
from bondflow.ir import reference
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation, Dense, Softmax
from bondflow.ir.types import FixedType
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import make_vectors
from simgraphs import branchy

T = FixedType.parse
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _dense(name: str, inp: str, n_in: int, n_out: int, res: str, seed: int, x_frac: int = 6) -> Dense:
    rng = np.random.default_rng(seed)
    w = T("fixed<6,2>")
    weight = rng.integers(w.min_raw, w.max_raw + 1, (n_in, n_out))
    weight[rng.random((n_in, n_out)) < 0.3] = 0
    return Dense(name=name, input=inp, result_type=T(res), weight=weight, weight_type=w,
                 bias=rng.integers(w.min_raw, w.max_raw + 1, n_out), bias_type=w,
                 accum_type=FixedType(24, 24 - (x_frac + w.frac_bits)))


def modes_graph() -> Graph:
    """Every cast da4ml can express exactly: TRN, RND, RND_CONV with WRAP, SAT, SAT_SYM; relu and linear; unsigned."""
    x = TensorSpec("x", 5, T("fixed<8,2>"))
    return Graph("modes", x, (
        _dense("d1", "x", 5, 6, "fixed<11,4,RND_CONV,SAT>", 1),
        Activation(name="a1", input="d1", result_type=T("ufixed<7,2,RND_CONV,SAT>"), function="relu"),
        _dense("d2", "a1", 6, 5, "fixed<9,3,RND,SAT_SYM>", 2, x_frac=5),
        Activation(name="a2", input="d2", result_type=T("fixed<8,2,RND_CONV,WRAP>"), function="linear"),
        _dense("d3", "a2", 5, 4, "fixed<10,4,TRN,SAT>", 3)))


def _iris() -> Graph:
    return bondflow.load_model(EXAMPLES / "iris" / "model.h5")  # once: only the Iris test loads TensorFlow


@pytest.mark.sim
def test_iris_bit_exact_icarus(da4ml, need_tool, tmp_path) -> None:
    need_tool("iverilog")
    need_tool("verilator")
    d = bondflow.generate(_iris(), "da4ml")
    assert d.info["da4ml_version"] == da4ml and d.info["multipliers"] == 0
    headed = [p for p in d.rtl_files if p != "rtl/bondflow_pipe_adapter.v"]  # the shell's static FIFO adapter has none
    assert all(f"da4ml {da4ml}" in d.files[p] and d.graph_digest in d.files[p] for p in headed), "header in every file"
    lint(d)
    r = simulate(d.write(tmp_path / "iris"), 1000, simulator="icarus", seed=3, backpressure=True)
    assert r.passed, r.summary()
    assert r.vectors == 1000 and r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles == 1


@pytest.mark.sim
@pytest.mark.slow
def test_jet_tagger_bit_exact_icarus(da4ml, need_tool, tmp_path) -> None:
    """~50k adders: Icarus builds in seconds and runs ~10 vectors/s (300 here, to keep CI short;
    1000 passed when the test was written); Verilator's C++ build took 20 min here."""
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(EXAMPLES / "jet_tagger" / "model.h5"), "da4ml")
    r = simulate(d.write(tmp_path / "jet"), 300, simulator="icarus", seed=4, backpressure=True)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 1


@pytest.mark.sim
@pytest.mark.parametrize("opts", [{"stage_adders": 3}, {"stage_adders": 2, "stream_width": 16, "tlast_mode": 1}])
def test_every_expressible_mode_bit_exact(opts, da4ml, need_tool, tmp_path) -> None:
    """Also through a narrow stream (3 beats per sample, TLAST per batch): the shell is the common one."""
    need_tool("iverilog")
    g = modes_graph()
    tv = make_vectors(g, 1000, seed=5)
    assert len(np.unique(tv.expected)) > 20  # the vectors exercise the casts
    d = bondflow.generate(g, "da4ml", **opts)
    lint(d)
    r = simulate(d.write(tmp_path / "modes"), tv, simulator="icarus", seed=5)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles


@pytest.mark.sim
def test_corrupted_constant_is_caught(da4ml, need_tool, tmp_path) -> None:
    """Flip one bit of one of da4ml's constants (a bias): the simulation must report mismatches."""
    need_tool("iverilog")
    d = bondflow.generate(modes_graph(), "da4ml")
    out = d.write(tmp_path / "bad")
    last = sorted((out / "rtl" / "da4ml").glob("*_stage*.v"))[-1]
    text = last.read_text()
    m = re.search(r"\b(\d+)'b([01]+)\b", text)
    assert m, "da4ml's last stage has a constant operand"
    bits = m.group(2)
    bits = bits[0] + ("0" if bits[1] == "1" else "1") + bits[2:] if len(bits) > 1 else ("0" if bits == "1" else "1")
    last.write_text(text[:m.start(2)] + bits + text[m.end(2):])
    r = simulate(out, 300, simulator="icarus", seed=6)
    assert not r.passed and r.mismatches > 0, r.summary()


def test_rnd_conv_needs_the_parity_term(da4ml) -> None:
    """Tracing RND_CONV casts as da4ml's RND (ties up) must differ from the golden model: the parity term matters."""
    from bondflow.codegen.da4ml.env import run_worker
    from bondflow.codegen.da4ml.lower import lower
    import tempfile
    g = modes_graph()
    inputs, steps = lower(g)
    as_rnd = [{**{k: v for k, v in s.items() if k != "src_f"}, "op": "quantize", "round": "RND"}
              if s["op"] == "round_half_even" else s for s in steps]
    tv = make_vectors(g, 2000, seed=7)
    x = g.input.type.to_float(tv.inputs).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        exact = run_worker({"name": "m", "stage_adders": 5, "inputs": inputs, "steps": steps, "out_dir": tmp, "check": x})
        rnd = run_worker({"name": "m", "stage_adders": 5, "inputs": inputs, "steps": as_rnd, "out_dir": tmp, "check": x})
    expected = g.output.type.to_float(tv.expected)
    assert np.array_equal(np.array(exact["check"]), expected)
    assert np.any(np.array(rnd["check"]) != expected)


def _with_result(g: Graph, name: str, result: str) -> Graph:
    ops = tuple(Activation(name=o.name, input=o.input, result_type=T(result), function=o.function)
                if o.name == name else o for o in g.ops)
    return Graph(g.name, g.input, ops)


@pytest.mark.parametrize("graph,err,words", [
    (lambda: _with_result(modes_graph(), "a1", "ufixed<7,2,TRN_ZERO,SAT>"), QuantizationError, "TRN_ZERO"),
    (lambda: _with_result(modes_graph(), "a1", "ufixed<7,2,RND_INF,SAT>"), QuantizationError, "RND_INF"),
    (lambda: _with_result(modes_graph(), "a1", "ufixed<7,2,RND,SAT_ZERO>"), QuantizationError, "SAT_ZERO"),
    (lambda: Graph("sm", TensorSpec("x", 5, T("fixed<8,2>")), (_dense("d1", "x", 5, 4, "fixed<12,5>", 1),
                   Softmax(name="out", input="d1", result_type=T("ufixed<12,2,RND_CONV,SAT>")))), UnsupportedOpError, "softmax"),
    (lambda: Graph("acc", TensorSpec("x", 5, T("fixed<8,2>")), (Dense(
        name="d", input="x", result_type=T("fixed<8,4>"), weight=np.ones((5, 2), int), weight_type=T("fixed<6,2>"),
        bias=np.zeros(2, int), bias_type=T("fixed<6,2>"), accum_type=T("fixed<16,8>")),)), QuantizationError, "accumulator"),
])
def test_refusals_are_one_line(graph, err, words) -> None:
    """Refused while lowering, before da4ml runs: no da4ml needed."""
    with pytest.raises(err) as e:
        bondflow.generate(graph(), "da4ml")
    msg = str(e.value)
    assert "\n" not in msg and words in msg and ("must be" in msg or "not supported" in msg), msg


def test_missing_da4ml_is_one_line(monkeypatch) -> None:
    """The project venv itself has no da4ml (numpy < 2): pointing bondflow at it must say how to install da4ml."""
    import sys
    monkeypatch.setenv("BONDFLOW_DA4ML_PYTHON", sys.executable)
    with pytest.raises(MissingDependencyError) as e:
        bondflow.generate(modes_graph(), "da4ml")
    assert "\n" not in str(e.value) and "da4ml==0.6.0" in str(e.value)


def test_bad_options_are_one_line() -> None:
    for opts in ({"stage_adders": 0}, {"stage_adders": "five"}, {"reuse_factor": 2}):
        with pytest.raises(ConfigError) as e:
            bondflow.generate(modes_graph(), "da4ml", **opts)
        assert "\n" not in str(e.value) and "must be" in str(e.value)


def test_rounding_that_drops_no_bits_is_accepted(da4ml) -> None:
    """A cast that keeps every fractional bit never rounds: its mode (here TRN_ZERO) needs no refusal."""
    def two_ops(result: str) -> Graph:
        g = modes_graph()
        a1 = Activation(name="a1", input="d1", result_type=T(result), function="relu")
        return Graph("two", g.input, (g.ops[0], a1))
    with pytest.raises(QuantizationError):
        bondflow.generate(two_ops("ufixed<12,6,TRN_ZERO,SAT>"), "da4ml")  # d1 has 7 fractional bits: drops one
    d = bondflow.generate(two_ops("ufixed<13,6,TRN_ZERO,SAT>"), "da4ml")  # keeps all 7
    assert d.info["stages"] >= 1


@pytest.mark.sim
def test_branches_bit_exact_icarus(da4ml, need_tool, tmp_path) -> None:
    """A skip from the input, a 3-input add of mixed types and a casting concatenate, traced by name through da4ml."""
    need_tool("iverilog")
    g = branchy(seed=6)
    d = bondflow.generate(g, "da4ml", stage_adders=3)
    lint(d)
    r = simulate(d.write(tmp_path / "d"), 1000, simulator="icarus", seed=6, backpressure=True)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 1

"""tanh as hls4ml's table activation: Keras/QKeras/ONNX import, golden model == hls4ml's table, RTL, hls4ml C-sim."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import UnsupportedOpError
from bondflow.fidelity import measure, table_warnings
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Dense, Tanh
from bondflow.ir.types import FixedType

DEFAULT = "fixed<16,6>"


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


@pytest.fixture(scope="module")
def models(tfk, tmp_path_factory) -> dict[str, Path]:
    """Float Keras MLPs trained for seconds on a seeded teacher: tanh hidden layers (classifier), tanh output (regressor)."""
    L = tfk.layers
    d = tmp_path_factory.mktemp("tanh_models")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 16))
    t = np.tanh(x @ rng.standard_normal((16, 5)) / 2)
    specs = {
        "hidden": ([L.Dense(32, activation="tanh"), L.Dense(16), L.Activation("tanh"), L.Dense(5, activation="softmax")],
                   "sparse_categorical_crossentropy", t.argmax(1)),
        "output": ([L.Dense(32, activation="relu"), L.Dense(1, activation="tanh")], "mse", t[:, :1]),
    }
    out = {}
    for i, (name, (layers, loss, y)) in enumerate(specs.items()):
        tfk.utils.set_random_seed(i)
        m = tfk.Sequential([L.InputLayer(input_shape=(16,))] + layers)
        m.compile("adam", loss)
        m.fit(x, y, epochs=5, verbose=0, batch_size=64)
        m.save(d / f"{name}.h5")
        out[name] = d / f"{name}.h5"
    return out


def _hls4ml_tanh(x: np.ndarray, n: int, out_frac: int, out_int: int) -> np.ndarray:
    """hls4ml's nnet::tanh stated in floats: table[i] = trunc_{2^-10}(tanh(8 (i - n/2) / n)) (ap_fixed<18,8>),
    i = clip(trunc(x n / 8) + n/2), then the entry rounded half up to 2^-out_frac and saturated."""
    pts = 8.0 * (np.arange(n) - n / 2) / n
    table = np.floor(np.tanh(pts) * 2.0 ** 10) / 2.0 ** 10
    idx = np.clip(np.trunc(x * n / 8).astype(np.int64) + n // 2, 0, n - 1)
    y = np.floor(table[idx] * 2.0 ** out_frac + 0.5) / 2.0 ** out_frac
    lim = 2.0 ** (out_int - 1)
    return np.clip(y, -lim, lim - 2.0 ** -out_frac)


def _dense_tanh(n_in: int = 6, n_out: int = 4, result: str = "fixed<8,1,RND,SAT>", table_size: int = 1024) -> Graph:
    """Dense (result fixed<12,4>, spans [-8, 8): beyond the table's [-4, 4)) -> Tanh."""
    rng = np.random.default_rng(1)
    x, w = FixedType(10, 4, rounding="RND_CONV", overflow="SAT"), FixedType(8, 2)
    return Graph("tanh_mlp", TensorSpec("x", n_in, x), (
        Dense(name="fc", input="x", result_type=FixedType(12, 4, rounding="RND", overflow="SAT"),
              weight=rng.integers(-128, 128, (n_in, n_out)), weight_type=w, bias=rng.integers(-128, 128, n_out),
              bias_type=w, accum_type=FixedType(23, 11)),
        Tanh(name="th", input="fc", result_type=FixedType.parse(result), table_size=table_size)))


@pytest.mark.parametrize("name", ["hidden", "output"])
def test_float_keras_tanh_follows_keras(models, name: str) -> None:
    g = bondflow.load_model(models[name], default_precision=DEFAULT)
    tanhs = [o for o in g.ops if isinstance(o, Tanh)]
    assert len(tanhs) == (2 if name == "hidden" else 1)
    # as sigmoid: the Dense feeding the table and the table's result take the default precision
    fed = {o.input for o in tanhs}
    assert all(str(o.result_type) == DEFAULT for o in g.ops if o in tanhs or o.name in fed)
    assert all(o.table_size == 1024 and str(o.table_type) == "fixed<18,8>" for o in tanhs)
    f = measure(g)
    assert f.reference.startswith("Keras predict") and f.samples == 1000
    assert f.distinct_outputs > 100 and not f.poor, f.summary()
    assert not table_warnings(g)
    if name == "hidden":
        assert f.task == "classifier" and f.agreement >= 0.97, f.summary()
    else:  # a tanh regressor: the table steps by 2^-7 in x, the slope of tanh is <= 1
        assert f.task == "regressor" and f.mean_error < 0.01 and f.max_error < 0.03, f.summary()
        x = np.random.default_rng(2).standard_normal((1000, 16))
        from bondflow._compat import import_tensorflow
        ref = import_tensorflow().models.load_model(models[name]).predict(x, verbose=0)
        err = np.abs(reference.run(g, x) - ref)
        assert err.mean() < 0.005 and err.max() < 0.03, (err.mean(), err.max())


def test_golden_equals_hls4ml_table_stated_in_numpy() -> None:
    """Every raw value of the Dense result type (4096, half of them outside [-4, 4)), and 3000 random inputs."""
    g = _dense_tanh()
    op = g.ops[1]
    xt = g.ops[0].result_type
    raw = np.arange(xt.min_raw, xt.max_raw + 1, dtype=np.int64)[:, None]
    y = reference._table_activation(op, raw, xt)  # the kernel on its own input type
    want = _hls4ml_tanh(xt.to_float(raw), 1024, 7, 1)
    assert np.array_equal(op.result_type.to_float(y), want)
    assert len(np.unique(y)) > 200
    # whole model: golden == the statement applied to the golden Dense output
    x = np.random.default_rng(0).integers(g.input.type.min_raw, g.input.type.max_raw + 1, (3000, 6))
    tr = reference.trace_raw(g, x)
    assert np.array_equal(op.result_type.to_float(tr["th"]), _hls4ml_tanh(xt.to_float(tr["fc"]), 1024, 7, 1))
    # another table size moves the index: hls4ml's range stays [-4, 4)
    g512 = _dense_tanh(table_size=512)
    assert np.array_equal(g512.ops[1].result_type.to_float(reference._table_activation(g512.ops[1], raw, xt)),
                          _hls4ml_tanh(xt.to_float(raw), 512, 7, 1))


def test_tanh_table_is_hls4ml_table() -> None:
    """The default table (ap_fixed<18,8>, 1024 entries) is the truncated tanh; odd around entry 512 up to one LSB."""
    op = Tanh(name="t", input="x", result_type=FixedType(16, 6))
    t = reference.tanh_table(op)
    pts = 8.0 * (np.arange(1024) - 512) / 1024
    assert np.array_equal(t, np.floor(np.tanh(pts) * 1024).astype(np.int64))
    assert t[0] == -1024 and t[512] == 0 and t[-1] == 1023


def _onnx_tanh_model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(4)
    w1, b1 = rng.standard_normal((8, 12)).astype(np.float32) / 2, rng.standard_normal(12).astype(np.float32) / 4
    w2, b2 = rng.standard_normal((12, 3)).astype(np.float32) / 2, rng.standard_normal(3).astype(np.float32) / 4
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "W1"), (b1, "B1"), (w2, "W2"), (b2, "B2"))]
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["m1"], name="mm1"), helper.make_node("Add", ["m1", "B1"], ["a1"], name="add1"),
             helper.make_node("Tanh", ["a1"], ["h1"], name="tanh1"),
             helper.make_node("MatMul", ["h1", "W2"], ["m2"], name="mm2"), helper.make_node("Add", ["m2", "B2"], ["a2"], name="add2"),
             helper.make_node("Tanh", ["a2"], ["y"], name="tanh2")]
    graph = helper.make_graph(nodes, "tanh_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_onnx_tanh_imports_follows_onnxruntime_and_round_trips(tmp_path) -> None:
    _onnx_tanh_model(tmp_path / "t.onnx")
    g = bondflow.load_model(tmp_path / "t.onnx", default_precision=DEFAULT)
    assert [o.kind for o in g.ops] == ["dense", "tanh", "dense", "tanh"]
    f = measure(g)
    assert f.reference == "ONNX Runtime" and not f.poor, f.summary()
    assert f.agreement >= 0.97 and f.max_error < 0.02, f.summary()
    export_onnx(g, tmp_path / "again.onnx")
    assert bondflow.load_model(tmp_path / "again.onnx").digest() == g.digest()
    # without a default precision the float model has no types: one line
    with pytest.raises(bondflow.errors.QuantizationError, match="default precision"):
        bondflow.load_model(tmp_path / "t.onnx")


def test_graph_json_round_trip_and_digest() -> None:
    g = _dense_tanh(table_size=256)
    again = Graph.from_dict(g.to_dict())
    assert again.digest() == g.digest() and isinstance(again.ops[1], Tanh) and again.ops[1].table_size == 256
    assert g.ops[1].to_dict()["kind"] == "tanh" and g.digest() != _dense_tanh(table_size=512).digest()


def test_quantized_tanh_is_refused_in_one_line(tfk, tmp_path) -> None:
    import qkeras
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(4,)),
                        qkeras.QDense(3, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(6,0,alpha=1)"),
                        qkeras.QActivation("quantized_tanh(6)")])
    m.save(tmp_path / "q.h5")
    with pytest.raises(UnsupportedOpError, match="quantized_tanh") as e:
        bondflow.load_model(tmp_path / "q.h5", default_precision=DEFAULT)
    assert "\n" not in str(e.value)


def test_bondmachine_and_da4ml_refuse_tanh() -> None:
    g = _dense_tanh()
    for arch in ("bondmachine", "da4ml"):
        try:
            with pytest.raises(UnsupportedOpError, match="tanh"):
                bondflow.generate(g, arch)
        except bondflow.errors.ConfigError as e:  # architecture not in this build (da4ml missing)
            assert "not missing" in str(e)


@pytest.mark.sim
def test_dataflow_rtl_bit_exact(tmp_path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("verilator")
    from bondflow.sim.lint import lint
    from bondflow.sim.runner import simulate
    g = _dense_tanh()
    d = bondflow.generate(g, "dataflow")
    assert any(f.endswith("_rom.v") for f in d.files)
    lint(d)
    r = simulate(d.write(tmp_path / "df"), 500, simulator="icarus", check=True)
    assert r.passed, r.summary()


@pytest.mark.sim
def test_keras_tanh_model_dataflow_and_moldable_rtl(models, tmp_path, need_tool) -> None:
    """The float Keras MLP with two tanh layers, in dataflow RTL and in moldable (tanh as table units)."""
    need_tool("iverilog")
    from bondflow.sim.lint import lint
    from bondflow.sim.runner import simulate
    g = bondflow.load_model(models["hidden"], default_precision=DEFAULT)
    d = bondflow.generate(g, "moldable", cores=4)
    assert sorted(d.info["table_units"]) == sorted(f"{o.name} ({o.kind})" for o in g.ops if o.kind in ("tanh", "softmax"))
    lint(d)
    r = simulate(d.write(tmp_path / "m"), 300, simulator="icarus", check=True)
    assert r.passed, r.summary()


@pytest.mark.hls4ml
def test_hls4ml_csim_equals_golden(tmp_path, need_tool) -> None:
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    g = _dense_tanh(result="fixed<16,6>")
    tv = make_vectors(g, 3000, 1)
    y = build_project(g, tmp_path / "hls").predict_raw(tv.inputs)
    assert np.array_equal(y, tv.expected)
    assert len(np.unique(y)) > 100  # the inputs really sweep the table


@pytest.mark.hls4ml
def test_hls4ml_uses_the_table_type(tmp_path, need_tool) -> None:
    """A coarse rounding table (fixed<9,2,RND>, 7 fraction bits) reaches hls4ml's table_t: with its default
    ap_fixed<18,8> in its place, outputs with 10 fraction bits would differ from the golden model."""
    need_tool("g++")
    from dataclasses import replace
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    g = _dense_tanh(result="fixed<12,2>")
    coarse = FixedType(9, 2, rounding="RND")
    g = Graph(g.name, g.input, g.ops[:-1] + (replace(g.ops[-1], table_type=coarse),))
    tv = make_vectors(g, 2000, 1)
    prj = build_project(g, tmp_path / "hls")
    assert "ap_fixed<9,2,AP_RND" in (tmp_path / "hls" / "firmware" / "defines.h").read_text()
    assert np.array_equal(prj.predict_raw(tv.inputs), tv.expected)
    fine = Graph(g.name, g.input, g.ops[:-1] + (replace(g.ops[-1], table_type=FixedType(18, 8)),))
    assert not np.array_equal(reference.run_raw(fine, tv.inputs), tv.expected)  # the check can tell the two apart


_MAKE_K3 = """
import sys, numpy as np, keras
keras.utils.set_random_seed(0)
L = keras.layers
m = keras.Sequential([keras.Input((16,)), L.Dense(24, activation="tanh"), L.Dense(8), L.Activation("tanh"), L.Dense(1)])
m.save(sys.argv[1])
"""


def test_keras3_file_with_tanh(tmp_path) -> None:
    """A Keras 3 .keras file (written by Keras 3 in a child process): Dense(activation='tanh') and Activation('tanh')."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    r = subprocess.run([sys.executable, "-c", _MAKE_K3, str(tmp_path / "m.keras")], capture_output=True, text=True, env=env)
    if r.returncode != 0 and "No module named 'keras'" in r.stderr:
        pytest.skip("Keras 3 is not installed")
    assert r.returncode == 0, r.stderr[-500:]
    g = bondflow.load_model(tmp_path / "m.keras", default_precision=DEFAULT)
    assert [o.kind for o in g.ops] == ["dense", "tanh", "dense", "tanh", "dense"]
    f = measure(g)
    assert f.reference.startswith("Keras 3.") and f.task == "regressor" and not f.poor, f.summary()
    assert f.mean_error < 0.01, f.summary()

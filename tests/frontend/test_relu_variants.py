"""Bounded and leaky ReLU (ParamRelu): Keras/QKeras/ONNX import, exact golden model, QONNX round trip, RTL, hls4ml C-sim."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError, UnsupportedOpError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.frontend.quant import slope_type
from bondflow.ir import reference
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Dense, ParamRelu
from bondflow.ir.types import FixedType

DEFAULT = "fixed<16,6>"
INPUT = "fixed<12,4,RND_CONV,SAT>"
N = 2000


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


def _grid_weights(model, rng: np.random.Generator) -> None:
    """Weights on a 2^-4 grid, so Keras's float32 sums are exact and only the activation's cast rounds."""
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([np.round(rng.normal(0, 0.5, w.shape) * 16) / 16 for w in layer.get_weights()])


def _inputs(g: Graph, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 2.5, (N, g.input.size))
    return g.input.type.to_float(g.input.type.quantize(x))  # on the input grid: what the hardware sees


def _keras_vs_golden(tfk, tmp_path: Path, act, name: str) -> tuple[Graph, np.ndarray, np.ndarray]:
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(6,)), tfk.layers.Dense(5, name="fc"), act], name=name)
    _grid_weights(m, np.random.default_rng(1))
    m.save(tmp_path / f"{name}.h5")
    g = bondflow.load_model(tmp_path / f"{name}.h5", default_precision=DEFAULT, input_precision=INPUT)
    x = _inputs(g)
    want = m.predict(x, verbose=0, batch_size=4096).astype(np.float64)
    got = reference.run(g, x)
    return g, got, want


@pytest.mark.parametrize("kind", ["relu_max6", "relu6_activation", "leaky_0.125", "bounded_leaky"])
def test_keras_exact_variants_bit_exact(tfk, tmp_path, kind) -> None:
    """Every step is exact math but the one cast: golden == cast(Keras predict) on every value."""
    act = {"relu_max6": lambda: tfk.layers.ReLU(max_value=6.0, name="act"),
           "relu6_activation": lambda: tfk.layers.Activation("relu6", name="act"),
           "leaky_0.125": lambda: tfk.layers.LeakyReLU(alpha=0.125, name="act"),
           "bounded_leaky": lambda: tfk.layers.ReLU(max_value=1.5, negative_slope=0.25, name="act")}[kind]()
    g, got, want = _keras_vs_golden(tfk, tmp_path, act, kind.replace(".", "_"))
    op = g.ops[-1]
    assert isinstance(op, ParamRelu) and g.ops[0].result_type == g.ops[0].accum_type  # the activation does the only rounding
    t = op.result_type
    assert np.array_equal(got, t.to_float(t.quantize(want)))
    bound = {"relu_max6": 6.0, "relu6_activation": 6.0, "bounded_leaky": 1.5}.get(kind)
    if bound is not None:  # the inputs really reach the clamp and the zero side
        assert np.isclose(got.max(), bound) and np.mean(got == bound) > 0.01
    if kind != "relu_max6" and kind != "relu6_activation":
        assert got.min() < 0  # the leaky side is exercised


def test_keras_leaky_non_power_of_two(tfk, tmp_path) -> None:
    """alpha = 0.3 is typed fixed<18,0> (rounded to nearest): within one result LSB plus |alpha - alpha_q| * |x|."""
    g, got, want = _keras_vs_golden(tfk, tmp_path, tfk.layers.LeakyReLU(alpha=0.3, name="act"), "leaky03")
    op = g.ops[-1]
    assert op.alpha_type == FixedType(18, 0) and abs(op.alpha - 0.3) <= 2.0 ** -19
    t = op.result_type
    fc = g.ops[0].accum_type.to_float(reference.trace_raw(g, g.input.type.quantize(_inputs(g)))["fc"])
    tol = t.lsb + abs(op.alpha - 0.3) * np.abs(fc) + 1e-9
    assert np.all(np.abs(got - want) <= tol)
    assert np.mean(got < 0) > 0.2
    # and exact against the stated math: cast(x * alpha_q)
    assert np.array_equal(got, t.to_float(t.quantize(np.where(fc >= 0, fc, fc * op.alpha))))


def test_relu_threshold_refused(tfk, tmp_path) -> None:
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(3,)), tfk.layers.Dense(2, name="fc"),
                        tfk.layers.ReLU(threshold=0.5, name="act")])
    m.save(tmp_path / "thr.h5")
    with pytest.raises(UnsupportedOpError, match="threshold"):
        bondflow.load_model(tmp_path / "thr.h5", default_precision=DEFAULT)


def test_qkeras_relu_upper_bound(tfk, tmp_path) -> None:
    """quantized_relu(8, 3, relu_upper_bound=4): QKeras's get_config drops is_quantized_clip, so a saved model reloads
    with its default (True), where the bound does nothing to the forward pass: a plain relu, bit-exact."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    rng = np.random.default_rng(5)
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(6,)),
                        QDense(5, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1), name="fc"),
                        QActivation(quantized_relu(8, 3, relu_upper_bound=4.0), name="act")])
    for layer in m.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.6, w.shape) for w in layer.get_weights()])
    m.save(tmp_path / "q.h5")
    g = bondflow.load_model(tmp_path / "q.h5", input_precision=INPUT)
    assert g.ops[-1].kind == "activation"
    x = _inputs(g, 3)
    got = reference.run(g, x)
    assert np.array_equal(got, m.predict(x, verbose=0, batch_size=4096))
    assert got.max() > 4.0  # the bound really is inert in QKeras
    # the clamp QKeras applies with is_quantized_clip=False (not in its saved config): a bound on the type's grid
    from bondflow.frontend.quant import qkeras_relu_bound
    t = FixedType(8, 3, signed=False, rounding="RND_CONV", overflow="SAT")
    assert qkeras_relu_bound({"relu_upper_bound": 4.0, "is_quantized_clip": False}, t, "act") == 4.0
    assert qkeras_relu_bound({"relu_upper_bound": 4.0}, t, "act") is None
    with pytest.raises(QuantizationError):
        qkeras_relu_bound({"relu_upper_bound": 4.01, "is_quantized_clip": False}, t, "act")


def test_slope_types() -> None:
    assert slope_type(0.125, "l") == (0.125, FixedType(2, -1))
    assert slope_type(0.375, "l") == (0.375, FixedType(3, 0))
    a, t = slope_type(0.3, "l")
    assert t == FixedType(18, 0) and a == round(0.3 * 2 ** 18) / 2 ** 18


def _onnx_model(path: Path, rng: np.random.Generator) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w1 = (np.round(rng.normal(0, 0.5, (6, 8)) * 16) / 16).astype(np.float32)
    w2 = (np.round(rng.normal(0, 0.5, (8, 4)) * 16) / 16).astype(np.float32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"), numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Clip", ["h", "lo", "hi"], ["a1"], name="clip"),
             helper.make_node("MatMul", ["a1", "w2"], ["h2"], name="fc2"),
             helper.make_node("LeakyRelu", ["h2"], ["y"], name="leaky", alpha=0.125)]
    g = helper.make_graph(nodes, "cliplr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def test_onnx_clip_leakyrelu_bit_exact_and_round_trip(tmp_path) -> None:
    import onnxruntime as ort
    p = _onnx_model(tmp_path / "m.onnx", np.random.default_rng(2))
    g = bondflow.load_model(p, default_precision="fixed<24,10>", input_precision=INPUT)
    kinds = [(o.kind, getattr(o, "function", "")) for o in g.ops]
    assert ("param_relu", "relu6") in kinds and ("param_relu", "leaky_relu(0.125)") in kinds
    x = _inputs(g, 4)
    want = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x.astype(np.float32)})[0]
    t = g.output.type
    got = reference.run(g, x)
    # the hidden relu6 casts to fixed<24,10> (14 fraction bits: exact here), the output cast is the only rounding
    assert np.array_equal(got, t.to_float(t.quantize(want.astype(np.float64))))
    assert np.mean(got < 0) > 0.1
    # QONNX export and back: the same graph, digest included
    q = tmp_path / "q.onnx"
    export_onnx(g, q)
    g2 = bondflow.load_model(q)
    assert g2.digest() == g.digest()
    xr = g.input.type.quantize(x)
    assert np.array_equal(reference.run_raw(g2, xr), reference.run_raw(g, xr))


def _ir_graph(unsigned_in: bool = False) -> Graph:
    """Dense -> bounded leaky ReLU (alpha 0.3, bound 2.75: off the result grid's SAT edge) -> Dense -> relu1."""
    rng = np.random.default_rng(7)
    xt = FixedType(10, 5 if unsigned_in else 4, signed=not unsigned_in)
    w1, b1 = rng.integers(-31, 32, (6, 7)), rng.integers(-63, 64, 7)
    d1 = Dense(name="fc1", input="input", result_type=FixedType(22, 10), weight=w1, weight_type=FixedType(6, 1),
               bias=b1, bias_type=FixedType(8, 3), accum_type=FixedType(22, 10))
    a, at = slope_type(0.3, "r1")
    r1 = ParamRelu(name="r1", input="fc1", result_type=FixedType(9, 3, rounding="RND", overflow="SAT"),
                   max_value=2.75, alpha=a, alpha_type=at)
    d2 = Dense(name="fc2", input="r1", result_type=FixedType(20, 8), weight=rng.integers(-31, 32, (7, 3)),
               weight_type=FixedType(6, 1), bias=np.zeros(3, dtype=np.int64), bias_type=FixedType(6, 1),
               accum_type=FixedType(20, 8))
    r2 = ParamRelu(name="r2", input="fc2", result_type=FixedType(6, 1, signed=False, rounding="RND_CONV", overflow="SAT"),
                   max_value=1.0)
    return Graph(name="relus", input=TensorSpec("input", 6, xt), ops=(d1, r1, d2, r2))


def test_golden_matches_stated_math_and_json() -> None:
    g = _ir_graph()
    g2 = Graph.from_json(g.to_json())
    assert g2.digest() == g.digest() and g2.to_json() == g.to_json()
    xt = g.input.type
    x = np.random.default_rng(0).integers(xt.min_raw, xt.max_raw + 1, (N, 6))
    tr = reference.trace_raw(g, x)
    v = FixedType(22, 10).to_float(tr["fc1"])
    r1 = g.ops[1]
    exact = np.minimum(np.where(v >= 0, v, r1.alpha * v), 2.75)  # exact in float64 at these widths
    assert np.array_equal(tr["r1"], r1.result_type.quantize(exact))
    assert np.mean(v > 2.75) > 0.05 and np.mean(v < 0) > 0.2
    assert set(np.unique(tr["r2"])) <= set(range(0, 33)) and tr["r2"].max() == 32  # relu1 on ufixed<6,1>: 1.0 is raw 32
    with pytest.raises(QuantizationError):
        ParamRelu(name="bad", input="x", result_type=FixedType(8, 3), alpha=0.3, alpha_type=FixedType(8, 0))


@pytest.mark.sim
@pytest.mark.parametrize("unsigned_in", [False, True])
def test_dataflow_rtl_bit_exact(tmp_path, need_tool, unsigned_in) -> None:
    need_tool("iverilog")
    from bondflow.sim.runner import simulate
    g = _ir_graph(unsigned_in)
    d = bondflow.generate(g, "dataflow")
    if not unsigned_in:
        need_tool("verilator")
        from bondflow.sim.lint import lint
        lint(d)
    r = simulate(d.write(tmp_path / "df"), 500, simulator="icarus", check=True)
    assert r.passed and r.vectors == 500, r.summary()


@pytest.mark.sim
def test_moldable_rtl_bit_exact(tmp_path, need_tool) -> None:
    """moldable runs a bounded/leaky ReLU as an element-wise unit (the dataflow layer behind its latching wrapper)."""
    need_tool("iverilog")
    need_tool("verilator")
    from bondflow.sim.lint import lint
    from bondflow.sim.runner import simulate
    d = bondflow.generate(_ir_graph(), "moldable")
    assert sorted(d.info["element_units"]) == ["r1 (param_relu)", "r2 (param_relu)"]
    lint(d)
    r = simulate(d.write(tmp_path / "mo"), 300, simulator="icarus", check=True)
    assert r.passed and r.vectors == 300, r.summary()


def test_backends_without_param_relu_refuse() -> None:
    g = _ir_graph()
    for arch in ("bondmachine",):
        with pytest.raises(bondflow.errors.BondflowError) as e:
            bondflow.generate(g, arch)
        assert "param_relu" in str(e.value) and "\n" not in str(e.value).strip(), str(e.value)


@pytest.mark.hls4ml
def test_hls4ml_csim_equals_golden(tmp_path, need_tool) -> None:
    """hls4ml's own nnet::leaky_relu (param_t = alpha_type) and nnet::relu1 (relu_max<1>) equal the golden model."""
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    g = _ir_graph()
    r1 = g.ops[1]  # hls4ml has no bounded leaky ReLU: the leaky half alone here
    g = Graph(name=g.name, input=g.input, ops=(g.ops[0], ParamRelu(name="r1", input="fc1", result_type=r1.result_type,
                                                                  alpha=r1.alpha, alpha_type=r1.alpha_type)) + g.ops[2:])
    tv = make_vectors(g, 2000, 1)
    y = build_project(g, tmp_path / "hls").predict_raw(tv.inputs)
    assert np.array_equal(y, tv.expected)
    assert np.mean(tv.expected == 32) > 0.05  # the relu1 clamp is exercised

"""Subtract, Multiply, Maximum and Minimum merges (Keras layers, ONNX Sub/Mul/Max/Min of two computed tensors): exact
golden model vs the source, QONNX round trip, hls4ml C-sim, dataflow and moldable RTL."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import BondflowError, GraphValidationError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference
from bondflow.ir.graph import Graph
from bondflow.ir.merge import Merge, merge_result_type
from bondflow.ir.types import FixedType

INPUT = "fixed<10,4,RND_CONV,SAT>"


def _grid(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return np.round(rng.normal(0, scale, shape) * 16) / 16


@pytest.fixture(scope="module")
def keras_mlp(tmp_path_factory) -> tuple[Path, object]:
    """Three Dense branches: a - b, a * c, max(a - b, a * c, b), min(that, c), ReLU, Dense."""
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    L = tfk.layers
    x = tfk.Input((6,))
    a, b, c = (L.Dense(5, name=n)(x) for n in "abc")
    s = L.Subtract(name="sub")([a, b])
    m = L.Multiply(name="mul")([a, c])
    mx = L.Maximum(name="mx")([s, m, b])
    mn = L.Minimum(name="mn")([mx, c])
    model = tfk.Model(x, L.Dense(3, name="out")(L.ReLU(name="r")(mn)))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([_grid(rng, w.shape, 0.5) for w in layer.get_weights()])
    path = tmp_path_factory.mktemp("merges") / "m.h5"
    model.save(path)
    return path, model


def _graph(path: Path, default: str = "fixed<16,6>") -> Graph:
    return bondflow.load_model(path, default_precision=default, input_precision=INPUT)


def _inputs(g: Graph, n: int, seed: int = 0) -> np.ndarray:
    t = g.input.type
    return t.to_float(t.quantize(np.random.default_rng(seed).normal(0, 1.5, (n, g.input.size))))


def test_keras_follows_keras(keras_mlp) -> None:
    g = _graph(keras_mlp[0])
    merges = {o.name: o for o in g.ops if isinstance(o, Merge)}
    assert {n: o.function for n, o in merges.items()} == {"sub": "subtract", "mul": "multiply", "mx": "maximum", "mn": "minimum"}
    assert merges["mul"].result_type == FixedType(32, 12)  # the exact product of two fixed<16,6>
    x = _inputs(g, 1000)
    err = np.abs(reference.run(g, x) - keras_mlp[1].predict(x, verbose=0))
    assert err.max() < 0.004, err.max()  # exact merges; the branch outputs and the ReLU are the casts
    tr = reference.trace_raw(g, g.input.type.quantize(x))
    types = g.types()
    s, m, b = (types[k].to_float(tr[k]) for k in ("sub", "mul", "b"))  # each exact in the max's type (no cast)
    mx = types["mx"].to_float(tr["mx"])
    assert np.array_equal(mx, np.maximum(np.maximum(s, m), b))
    assert min(np.mean(mx == v) for v in (s, m, b)) > 0.05  # every input wins somewhere


def test_result_types_and_refusals() -> None:
    a, u = FixedType(8, 3), FixedType(6, 2, signed=False)
    assert merge_result_type("subtract", [u, u]) == FixedType(8, 4)  # a sign and a carry
    assert merge_result_type("multiply", [a, u]) == FixedType(14, 5)  # widths and fraction bits add
    assert merge_result_type("maximum", [a, u]) == FixedType(8, 3)
    with pytest.raises(GraphValidationError, match="2 tensors"):
        Merge(name="s", inputs=("a", "b", "c"), result_type=a, function="subtract")


def test_qonnx_round_trip(keras_mlp, tmp_path) -> None:
    g = _graph(keras_mlp[0])
    with pytest.raises(BondflowError) as e:  # ONNX's Mul is binary: a three-way product is refused in one line
        three = Graph(g.name, g.input, g.ops[:3] + (Merge(name="p", inputs=("a", "b", "c"), function="multiply",
                                                               result_type=FixedType(48, 18)),))
        export_onnx(three, tmp_path / "three.onnx")
    assert "\n" not in str(e.value)
    export_onnx(g, tmp_path / "q.onnx")
    again = bondflow.load_model(tmp_path / "q.onnx")
    assert again.digest() == g.digest()


def _onnx_cnn(path: Path) -> Path:
    """Float ONNX: two Conv branches a, b on an 6x6x2 image; Sub, Mul, Max (3 inputs), Min; Flatten; Gemm."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)

    def init(n: str, a: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(a, dtype=np.float32), n)

    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2], name="t"),
             helper.make_node("Conv", ["xt", "wa", "ba"], ["a"], kernel_shape=[3, 3], name="ca"),
             helper.make_node("Conv", ["xt", "wb", "bb"], ["b"], kernel_shape=[3, 3], name="cb"),
             helper.make_node("Sub", ["a", "b"], ["s"], name="sub"),
             helper.make_node("Mul", ["a", "s"], ["m"], name="mul"),
             helper.make_node("Max", ["s", "m", "b"], ["mx"], name="max"),
             helper.make_node("Min", ["mx", "a"], ["mn"], name="min"),
             helper.make_node("Flatten", ["mn"], ["f"], name="fl"),
             helper.make_node("Gemm", ["f", "w", "bw"], ["y"], name="fc")]
    inits = [init("wa", _grid(rng, (2, 2, 3, 3), 0.4)), init("ba", _grid(rng, (2,), 0.3)), init("wb", _grid(rng, (2, 2, 3, 3), 0.4)),
             init("bb", _grid(rng, (2,), 0.3)), init("w", _grid(rng, (32, 3), 0.3)), init("bw", _grid(rng, (3,), 0.3))]
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6, 6, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def test_onnx_cnn_follows_onnx_runtime(tmp_path) -> None:
    import onnxruntime as ort
    p = _onnx_cnn(tmp_path / "m.onnx")
    g = _graph(p, "fixed<18,8>")
    assert [getattr(o, "function", o.kind) for o in g.ops if isinstance(o, Merge)] == ["subtract", "multiply", "maximum", "minimum"]
    x = _inputs(g, 500, 1)
    want = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x.reshape(-1, 6, 6, 2).astype(np.float32)})[0]
    assert np.abs(reference.run(g, x) - want).max() < 0.01
    export_onnx(g, tmp_path / "q.onnx")
    assert bondflow.load_model(tmp_path / "q.onnx").digest() == g.digest()


@pytest.mark.hls4ml
def test_hls4ml_csim_equals_golden(keras_mlp, tmp_path, need_tool) -> None:
    """hls4ml's Subtract/Multiply/Maximum/Minimum (io_parallel MLP; io_stream CNN), a 3-input max as a chain of two."""
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    for name, g, n in (("mlp", _graph(keras_mlp[0]), 1000), ("cnn", _graph(_onnx_cnn(tmp_path / "c.onnx"), "fixed<18,8>"), 200)):
        tv = make_vectors(g, n, 1)
        assert np.array_equal(build_project(g, tmp_path / name).predict_raw(tv.inputs), tv.expected), name


@pytest.mark.sim
def test_dataflow_and_moldable_rtl_bit_exact(keras_mlp, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("verilator")
    from bondflow.sim.lint import lint
    from bondflow.sim.runner import simulate
    cnn = _graph(_onnx_cnn(tmp_path / "c.onnx"), "fixed<18,8>")
    for name, g, arch, n in (("mlp", _graph(keras_mlp[0]), "dataflow", 400), ("mlp", _graph(keras_mlp[0]), "moldable", 300),
                             ("cnn", cnn, "dataflow", 40), ("cnn", cnn, "moldable", 40)):
        d = bondflow.generate(g, arch)
        lint(d)
        r = simulate(d.write(tmp_path / f"{name}{arch}"), n, simulator="icarus", check=True)
        assert r.passed and r.vectors == n, r.summary()


def test_da4ml_refuses_other_merges(keras_mlp) -> None:
    with pytest.raises(BondflowError) as e:
        bondflow.generate(_graph(keras_mlp[0]), "da4ml")
    assert "merge subtract" in str(e.value) and "\n" not in str(e.value).strip()

"""Leaky/bounded ReLU, tanh and sigmoid on images: Keras and ONNX CNN import, golden vs source, QONNX round trip, RTL, hls4ml."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import UnsupportedOpError
from bondflow.fidelity import measure
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference
from bondflow.ir.graph import Graph
from bondflow.ir.ops import Activation

DEFAULT = "fixed<16,6>"
INPUT = "fixed<10,4,RND_CONV,SAT>"


@pytest.fixture(scope="module")
def keras_cnn(tmp_path_factory) -> tuple[Path, object]:
    """Conv -> LeakyReLU -> Conv -> tanh -> MaxPool -> Conv 1x1 -> sigmoid -> Flatten -> Dense -> ReLU(max_value=6)."""
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    L = tfk.layers
    m = tfk.Sequential([L.InputLayer(input_shape=(8, 8, 2)), L.Conv2D(3, 3, name="c1"), L.LeakyReLU(alpha=0.125, name="lr"),
                        L.Conv2D(4, 2, name="c2"), L.Activation("tanh", name="th"), L.MaxPooling2D(2, name="mp"),
                        L.Conv2D(3, 1, name="c3"), L.Activation("sigmoid", name="sg"), L.Flatten(name="fl"),
                        L.Dense(3, name="fc"), L.ReLU(max_value=6.0, name="r6")], name="cnnact")
    rng = np.random.default_rng(1)
    for layer in m.layers:  # weights on a 2^-4 grid: Keras's float32 sums are exact
        if layer.get_weights():
            scale = {"c3": 2.0, "fc": 1.5}.get(layer.name, 0.5)  # c3: the sigmoids see -4..4, not only their middle
            layer.set_weights([np.round(rng.normal(0, scale, w.shape) * 16) / 16 for w in layer.get_weights()])
    # each output's pre-activation centred at 3 on typical inputs: inside relu6's range, not stuck at a bound
    feats = tfk.Model(m.inputs, m.get_layer("fl").output).predict(rng.normal(0, 2, (500, 8, 8, 2)), verbose=0)
    w = m.get_layer("fc").get_weights()[0]
    m.get_layer("fc").set_weights([w, np.round((3 - np.median(feats @ w, axis=0)) * 16) / 16])
    path = tmp_path_factory.mktemp("cnnact") / "cnnact.h5"
    m.save(path)
    return path, m


def _graph(keras_cnn) -> Graph:
    return bondflow.load_model(keras_cnn[0], default_precision=DEFAULT, input_precision=INPUT)


def test_keras_cnn_follows_keras(keras_cnn) -> None:
    g = _graph(keras_cnn)
    assert [(o.kind, getattr(o, "function", "")) for o in g.ops] == [
        ("conv", ""), ("param_relu", "leaky_relu(0.125)"), ("conv", ""), ("tanh", ""), ("pool", "max"), ("conv", ""),
        ("sigmoid", ""), ("flatten", ""), ("dense", ""), ("param_relu", "relu6")]
    x = g.input.type.to_float(g.input.type.quantize(np.random.default_rng(0).normal(0, 2, (1000, g.input.size))))
    want = keras_cnn[1].predict(x.reshape(-1, 8, 8, 2), verbose=0).astype(np.float64)
    got = reference.run(g, x)
    err = np.abs(got - want)
    # sigmoid/tanh tables (1/1024 steps) through large fc weights: a few hundredths on outputs spanning 0..6
    assert err.max() < 0.15 and err.mean() < 0.03, (err.max(), err.mean())
    assert len(np.unique(got, axis=0)) > 900 and all(len(np.unique(got[:, k])) > 100 for k in range(3))  # useful outputs
    # the leaky slope is exact: the first cast is the only rounding of c1's exact sums
    tr = reference.trace_raw(g, g.input.type.quantize(x))
    c1, lr = g.ops[0], g.ops[1]
    v = c1.result_type.to_float(tr["c1"])
    assert np.mean(v < 0) > 0.2
    assert np.array_equal(tr["lr"], lr.result_type.quantize(np.where(v >= 0, v, 0.125 * v)))


def test_qonnx_round_trip_keeps_the_graph(keras_cnn, tmp_path) -> None:
    g = _graph(keras_cnn)
    export_onnx(g, tmp_path / "q.onnx")
    assert bondflow.load_model(tmp_path / "q.onnx").digest() == g.digest()


def _onnx_cnn(path: Path) -> None:
    """Float CNN, NHWC input transposed to NCHW: Conv -> LeakyRelu -> Conv -> Clip(0, 2) -> Conv 1x1 -> Tanh -> Flatten -> Gemm."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(3)
    arr = {"W1": rng.normal(0, 0.4, (4, 2, 3, 3)), "B1": rng.normal(0, 0.2, 4), "W2": rng.normal(0, 0.3, (3, 4, 2, 2)),
           "B2": rng.normal(0, 0.2, 3), "W3": rng.normal(0, 0.5, (2, 3, 1, 1)), "B3": np.zeros(2),
           "W4": rng.normal(0, 0.4, (2 * 3 * 3, 3)), "B4": rng.normal(0, 0.2, 3), "lo": np.array(0.0), "hi": np.array(2.0)}
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in arr.items()]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="to_nchw", perm=[0, 3, 1, 2]),  # as tf2onnx writes it
             helper.make_node("Conv", ["xt", "W1", "B1"], ["c1"], name="c1"),
             helper.make_node("LeakyRelu", ["c1"], ["a1"], name="lr", alpha=0.25),
             helper.make_node("Conv", ["a1", "W2", "B2"], ["c2"], name="c2"),
             helper.make_node("Clip", ["c2", "lo", "hi"], ["a2"], name="clip"),
             helper.make_node("Conv", ["a2", "W3", "B3"], ["c3"], name="c3"),
             helper.make_node("Tanh", ["c3"], ["a3"], name="th"),
             helper.make_node("Flatten", ["a3"], ["f"], name="fl"),
             helper.make_node("Gemm", ["f", "W4", "B4"], ["y"], name="fc")]
    graph = helper.make_graph(nodes, "cnnact", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6, 6, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def test_onnx_cnn_follows_onnxruntime(tmp_path) -> None:
    _onnx_cnn(tmp_path / "c.onnx")
    g = bondflow.load_model(tmp_path / "c.onnx", default_precision=DEFAULT)
    assert [(o.kind, getattr(o, "function", "")) for o in g.ops] == [
        ("conv", ""), ("param_relu", "leaky_relu(0.25)"), ("conv", ""), ("param_relu", "relu_max(2)"), ("conv", ""),
        ("tanh", ""), ("flatten", ""), ("dense", "")]
    f = measure(g)
    assert f.reference == "ONNX Runtime" and not f.poor, f.summary()
    assert f.distinct_outputs > 500 and f.agreement >= 0.97, f.summary()


@pytest.mark.sim
def test_dataflow_rtl_bit_exact(keras_cnn, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("verilator")
    from bondflow.sim.lint import lint
    from bondflow.sim.runner import simulate
    d = bondflow.generate(_graph(keras_cnn), "dataflow")
    lint(d)
    r = simulate(d.write(tmp_path / "df"), 200, simulator="icarus", check=True)
    assert r.passed and r.vectors == 200, r.summary()


@pytest.mark.sim
def test_moldable_rtl_bit_exact(keras_cnn, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    from bondflow.sim.runner import simulate
    d = bondflow.generate(_graph(keras_cnn), "moldable")
    r = simulate(d.write(tmp_path / "mo"), 60, simulator="icarus", check=True)
    assert r.passed and r.vectors == 60, r.summary()


@pytest.mark.hls4ml
def test_hls4ml_csim_equals_golden(keras_cnn, tmp_path, need_tool) -> None:
    """hls4ml's streamed leaky_relu, tanh and sigmoid on images == golden; its streamed relu has no relu_max: one line."""
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    g = _graph(keras_cnn)
    with pytest.raises(UnsupportedOpError, match="relu_max") as e:
        build_project(g, tmp_path / "refused")
    assert "\n" not in str(e.value)
    last = g.ops[-1]
    g = Graph(g.name, g.input, g.ops[:-1] + (Activation(name=last.name, input=last.input, result_type=last.result_type,
                                                         function="relu"),))
    tv = make_vectors(g, 1000, 1)
    y = build_project(g, tmp_path / "hls").predict_raw(tv.inputs)
    assert np.array_equal(y, tv.expected)


def test_table_settings_survive_qonnx_round_trip(keras_cnn, tmp_path) -> None:
    """Non-default table sizes and types of sigmoid/tanh (on images and flat) and softmax come back from QONNX exactly."""
    from dataclasses import replace
    from bondflow.ir.ops import Sigmoid, Softmax, Tanh
    from bondflow.ir.types import FixedType
    g = _graph(keras_cnn)
    ops = tuple(replace(o, table_size=256, table_type=FixedType(12, 2)) if isinstance(o, (Sigmoid, Tanh)) else o
                for o in g.ops)
    last = ops[-1]
    ops = ops[:-1] + (Activation(name=last.name, input=last.input, result_type=last.result_type, function="linear"),
                      Softmax(name="sm", input=last.name, result_type=FixedType(16, 6), table_size=512,
                              exp_table_type=FixedType(16, 6, rounding="RND", overflow="SAT"), implementation="latency"))
    g = Graph(g.name, g.input, ops)
    export_onnx(g, tmp_path / "t.onnx")
    again = bondflow.load_model(tmp_path / "t.onnx")
    assert again.digest() == g.digest()
    assert [o.to_dict() for o in again.ops] == [o.to_dict() for o in g.ops]

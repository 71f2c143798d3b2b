"""ELU and SELU (hls4ml's table units): Keras and ONNX import, golden vs the source, hls4ml C-sim, dataflow and moldable RTL."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import BondflowError, QuantizationError, UnsupportedOpError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference
from bondflow.ir.graph import Graph
from bondflow.ir.ops import Elu, ExpLinear, Selu
from bondflow.ir.types import FixedType

DEFAULT = "fixed<16,6>"
INPUT = "fixed<12,4,RND_CONV,SAT>"


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


def _weights(m, rng) -> None:
    for layer in m.layers:  # weights on a 2^-5 grid: Keras's float32 sums are exact
        if layer.get_weights():
            layer.set_weights([np.round(rng.normal(0, 0.35, w.shape) * 32) / 32 for w in layer.get_weights()])


@pytest.fixture(scope="module")
def keras_mlp(tfk, tmp_path_factory) -> tuple[Path, object]:
    """Dense -> ELU(alpha=0.3) -> Dense -> selu -> Dense(elu): both kinds, a non-unit slope, a fused activation."""
    L = tfk.layers
    m = tfk.Sequential([L.InputLayer(input_shape=(8,)), L.Dense(12, name="fc1"), L.ELU(alpha=0.3, name="elu1"),
                        L.Dense(10, name="fc2"), L.Activation("selu", name="selu2"), L.Dense(4, activation="elu", name="fc3")])
    _weights(m, np.random.default_rng(3))
    path = tmp_path_factory.mktemp("elu") / "elu.h5"
    m.save(path)
    return path, m


def _graph(path: Path) -> Graph:
    return bondflow.load_model(path, default_precision=DEFAULT, input_precision=INPUT)


def _inputs(g: Graph, n: int, seed: int = 0) -> np.ndarray:
    t = g.input.type
    return t.to_float(t.quantize(np.random.default_rng(seed).normal(0, 2, (n, g.input.size))))


def test_keras_follows_keras(keras_mlp) -> None:
    g = _graph(keras_mlp[0])
    assert [o.kind for o in g.ops] == ["dense", "elu", "dense", "selu", "dense", "elu"]
    assert g.ops[1].alpha_type.representable(g.ops[1].alpha) and abs(g.ops[1].alpha - 0.3) < 1e-3
    x = _inputs(g, 2000)
    want = keras_mlp[1].predict(x, verbose=0).astype(np.float64)
    got = reference.run(g, x)
    err = np.abs(got - want)
    # 1/128-wide table steps (slope <= 1.76) and fixed<16,6> outputs: a few hundredths at most
    assert err.max() < 0.06 and err.mean() < 0.01, (err.max(), err.mean())
    tr = reference.trace_raw(g, g.input.type.quantize(x))
    for name in ("elu1", "selu2"):  # both branches exercised, and the outputs are useful (not collapsed)
        v = tr[name]
        assert np.mean(v < 0) > 0.2 and np.mean(v > 0) > 0.2
    assert len(np.unique(got, axis=0)) > 1900 and all(len(np.unique(got[:, k])) > 300 for k in range(4))


def test_golden_matches_stated_math() -> None:
    """Table, index and both branches as hls4ml states them, checked on hand-picked inputs (fixed<10,4>, N = 64)."""
    xt = FixedType(10, 4)  # 6 fraction bits
    elu = Elu(name="e", input="x", result_type=FixedType(12, 4, rounding="RND", overflow="SAT"), table_size=64,
              table_type=FixedType(18, 2), alpha=0.375, alpha_type=FixedType(4, 1))
    x = np.array([-512, -500, -64, -9, -8, -7, -1, 0, 1, 63, 511])  # -8.0 ... 7.98
    idx = reference.exp_linear_index(elu, x, xt)
    # floor(-x * 64 / 8) in raw units: -x_raw * 64 / (8 * 64) = -x_raw / 8, clipped to 63
    assert idx.tolist() == [63, 62, 8, 1, 1, 0, 0, 0, 0, 0, 0]
    table = FixedType(18, 2).to_float(reference.exp_linear_table(elu))
    pts = (-8.0 * np.arange(64) / 64).astype(np.float32)
    assert np.allclose(table, np.expm1(pts.astype(np.float64)), atol=2 ** -15)
    y = elu.result_type.to_float(reference.exp_linear_kernel(elu, x, xt))
    v = x / 64.0
    exp = np.where(v >= 0, v, 0.375 * table[idx])
    assert np.allclose(y, exp, atol=2 ** -9)  # one RND cast to 8 fraction bits
    selu = Selu(name="s", input="x", result_type=FixedType(16, 6), table_size=64, table_type=FixedType(18, 4))
    ys = selu.result_type.to_float(reference.exp_linear_kernel(selu, x, xt))
    assert selu.lambda_raw == 34429  # 1.0507009873554805 truncated to ap_ufixed<16,1>
    assert np.allclose(ys[v >= 0], np.floor(v[v >= 0] * 34429 / 2 ** 15 * 2 ** 10) / 2 ** 10)
    assert ys[0] < -1.75 and abs(ys[0] + 1.7581) < 0.002  # lambda * alpha * (e^-7.875 - 1)
    with pytest.raises(QuantizationError):
        Elu(name="bad", input="x", result_type=FixedType(8, 3), alpha=0.3, alpha_type=FixedType(8, 0))


def test_json_and_qonnx_round_trip(keras_mlp, tmp_path) -> None:
    """Non-default tables and the slope come back exactly from JSON and from QONNX (bondflow.table metadata)."""
    g = _graph(keras_mlp[0])
    g = Graph(g.name, g.input, tuple(replace(o, table_size=256, table_type=FixedType(14, 3)) if isinstance(o, ExpLinear) else o
                                     for o in g.ops))
    assert Graph.from_json(g.to_json()).digest() == g.digest()
    export_onnx(g, tmp_path / "q.onnx")
    again = bondflow.load_model(tmp_path / "q.onnx")
    assert [o.to_dict() for o in again.ops] == [o.to_dict() for o in g.ops]
    assert again.digest() == g.digest()


def _onnx_cnn(path: Path, rng: np.random.Generator, selu_gamma: float | None = None) -> Path:
    """Float ONNX: Transpose to NCHW (as tf2onnx writes it) -> Conv 3x3 -> Elu(0.5) -> Conv 1x1 -> Selu -> Flatten -> Gemm."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def init(name: str, a: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array((np.round(a * 32) / 32).astype(np.float32), name)

    selu_attrs = {} if selu_gamma is None else {"gamma": selu_gamma}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="to_nchw", perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["xt", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3]),
             helper.make_node("Elu", ["c1"], ["e1"], name="elu1", alpha=0.5),
             helper.make_node("Conv", ["e1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[1, 1]),
             helper.make_node("Selu", ["c2"], ["s2"], name="selu2", **selu_attrs),
             helper.make_node("Flatten", ["s2"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc")]
    inits = [init("w1", rng.normal(0, 0.5, (3, 2, 3, 3))), init("b1", rng.normal(0, 0.5, 3)),
             init("w2", rng.normal(0, 0.8, (4, 3, 1, 1))), init("b2", rng.normal(0, 0.5, 4)),
             init("w3", rng.normal(0, 0.3, (144, 3))), init("b3", rng.normal(0, 0.3, 3))]
    g = helper.make_graph(nodes, "elucnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8, 8, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def test_onnx_cnn_follows_onnx_runtime(tmp_path) -> None:
    import onnxruntime as ort
    p = _onnx_cnn(tmp_path / "m.onnx", np.random.default_rng(5))
    g = bondflow.load_model(p, default_precision="fixed<18,8>", input_precision=INPUT)
    assert [o.kind for o in g.ops] == ["conv", "elu", "conv", "selu", "flatten", "dense"]
    assert g.ops[1].alpha == 0.5
    x = _inputs(g, 500, 1)
    xin = x.reshape(-1, 8, 8, 2).astype(np.float32)
    want = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": xin})[0].astype(np.float64)
    got = reference.run(g, x)
    err = np.abs(got - want)
    assert err.max() < 0.1 and err.mean() < 0.02, (err.max(), err.mean())
    assert len(np.unique(got, axis=0)) > 490
    with pytest.raises(UnsupportedOpError, match="gamma") as e:
        bondflow.load_model(_onnx_cnn(tmp_path / "g.onnx", np.random.default_rng(5), selu_gamma=1.2), default_precision="fixed<18,8>")
    assert "\n" not in str(e.value)


@pytest.mark.hls4ml
def test_hls4ml_csim_equals_golden(keras_mlp, tmp_path, need_tool) -> None:
    """hls4ml's nnet::elu (slope as param_t) and nnet::selu, with wide non-default tables (libm's expf to the last bit)."""
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    g = _graph(keras_mlp[0])
    g = Graph(g.name, g.input, tuple(replace(o, table_size=2048, table_type=FixedType(26, 3)) if isinstance(o, ExpLinear)
                                     else o for o in g.ops))
    tv = make_vectors(g, 2000, 1)
    y = build_project(g, tmp_path / "hls").predict_raw(tv.inputs)
    assert np.array_equal(y, tv.expected)


@pytest.mark.sim
def test_dataflow_and_moldable_rtl_bit_exact(keras_mlp, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("verilator")
    from bondflow.sim.lint import lint
    from bondflow.sim.runner import simulate
    g = _graph(keras_mlp[0])
    for arch, opts in (("dataflow", {}), ("dataflow", {"reuse_factor": 2}), ("moldable", {})):
        d = bondflow.generate(g, arch, **opts)
        lint(d)
        r = simulate(d.write(tmp_path / f"{arch}{len(opts)}"), 400, simulator="icarus", check=True)
        assert r.passed and r.vectors == 400, r.summary()


@pytest.mark.sim
def test_cnn_rtl_and_hls4ml_stream(tmp_path, need_tool) -> None:
    """ELU/SELU on images: dataflow's streamed 1x1 stages bit-exact; hls4ml's streamed elu == golden; its streamed
    selu (lambda in the input's type) is refused in one line."""
    need_tool("iverilog")
    from bondflow.sim.runner import simulate
    p = _onnx_cnn(tmp_path / "m.onnx", np.random.default_rng(5))
    g = bondflow.load_model(p, default_precision="fixed<18,8>", input_precision=INPUT)
    r = simulate(bondflow.generate(g, "dataflow").write(tmp_path / "df"), 40, simulator="icarus", check=True)
    assert r.passed and r.vectors == 40, r.summary()
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    with pytest.raises(UnsupportedOpError, match="selu") as e:
        build_project(g, tmp_path / "refused")
    assert "\n" not in str(e.value)
    sel = g.ops[3]
    elu_only = Graph(g.name, g.input, g.ops[:3] + (Elu(name=sel.name, input=sel.input, result_type=sel.result_type),) + g.ops[4:])
    tv = make_vectors(elu_only, 300, 1)
    assert np.array_equal(build_project(elu_only, tmp_path / "hls").predict_raw(tv.inputs), tv.expected)


def test_backends_without_elu_refuse(keras_mlp) -> None:
    g = _graph(keras_mlp[0])
    for arch in ("bondmachine", "da4ml"):
        with pytest.raises(BondflowError) as e:
            bondflow.generate(g, arch)
        assert "elu" in str(e.value) and "\n" not in str(e.value).strip(), str(e.value)

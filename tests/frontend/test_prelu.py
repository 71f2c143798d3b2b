"""PReLU (learned slopes per element or per channel): Keras and ONNX import, golden vs the source, QONNX round trip,
hls4ml C-sim, dataflow and moldable RTL."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import BondflowError, UnsupportedOpError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.frontend.quant import slopes_type
from bondflow.ir import reference
from bondflow.ir.graph import Graph
from bondflow.ir.ops import PRelu
from bondflow.ir.types import FixedType

DEFAULT = "fixed<18,8>"
INPUT = "fixed<12,4,RND_CONV,SAT>"


def _grid(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return np.round(rng.normal(0, scale, shape) * 32) / 32  # on a 2^-5 grid: Keras's float32 sums are exact


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """An MLP with a PReLU per element (one slope 0.3: not exact) and a CNN with PReLU per channel (shared_axes)."""
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    L = tfk.layers
    rng = np.random.default_rng(4)
    d = tmp_path_factory.mktemp("prelu")
    mlp = tfk.Sequential([L.InputLayer(input_shape=(8,)), L.Dense(10, name="fc1"), L.PReLU(name="pr1"), L.Dense(4, name="fc2")])
    cnn = tfk.Sequential([L.InputLayer(input_shape=(6, 6, 2)), L.Conv2D(3, 3, name="c1"), L.PReLU(shared_axes=[1, 2], name="pc"),
                          L.Flatten(name="fl"), L.Dense(3, name="fc")])
    out = {}
    for name, m in (("mlp", mlp), ("cnn", cnn)):
        for layer in m.layers:
            w = layer.get_weights()
            if layer.name.startswith("p"):
                a = np.round(rng.uniform(-0.6, 0.9, w[0].shape) * 16) / 16
                if name == "mlp":
                    a.flat[3] = 0.3  # rounds on 18 bits: the others keep their values in that type
                layer.set_weights([a])
            elif w:
                layer.set_weights([_grid(rng, x.shape, 0.4) for x in w])
        m.save(d / f"{name}.h5")
        out[name] = (d / f"{name}.h5", m)
    return out


def _graph(path: Path) -> Graph:
    return bondflow.load_model(path, default_precision=DEFAULT, input_precision=INPUT)


def _inputs(g: Graph, n: int, seed: int = 0) -> np.ndarray:
    t = g.input.type
    return t.to_float(t.quantize(np.random.default_rng(seed).normal(0, 2, (n, g.input.size))))


@pytest.mark.parametrize("name,slopes", [("mlp", 10), ("cnn", 3)])
def test_keras_follows_keras(models, name, slopes) -> None:
    path, m = models[name]
    g = _graph(path)
    pr = next(o for o in g.ops if isinstance(o, PRelu))
    assert pr.alpha.size == slopes  # per element on the vector; per channel on the image (shared_axes H, W)
    assert pr.alpha_type.width <= 18
    x = _inputs(g, 1000)
    want = m.predict(x.reshape((-1,) + g.input.shape), verbose=0).astype(np.float64).reshape(len(x), -1)
    got = reference.run(g, x)
    err = np.abs(got - want)
    assert err.max() < 0.02 and err.mean() < 0.004, (err.max(), err.mean())  # 2^-10 steps through small weights
    tr = reference.trace_raw(g, g.input.type.quantize(x))
    assert np.mean(tr[pr.name] < 0) > 0.2 and np.mean(tr[pr.name] > 0) > 0.2  # both branches
    assert len(np.unique(got, axis=0)) > 990


def test_slopes_type() -> None:
    raw, t = slopes_type(np.array([0.25, 0.125, -0.5]), "p")
    assert t == FixedType(4, 1) and raw.tolist() == [2, 1, -4]  # exact, the smallest shared type
    raw, t = slopes_type(np.array([0.3, 1.5]), "p")
    assert t.width == 18 and abs(t.to_float(raw[0]) - 0.3) < 2 ** -16 and t.to_float(raw[1]) == 1.5


def _onnx(path: Path, rng: np.random.Generator, per_pixel: bool = False) -> Path:
    """Float ONNX: Transpose to NCHW -> Conv 3x3 -> PRelu (a slope per channel, [C, 1, 1]) -> Flatten -> Gemm -> PRelu
    (a slope per element)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def init(name: str, a: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)

    slope = rng.uniform(-0.5, 0.8, (3, 4, 4) if per_pixel else (3, 1, 1))
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="to_nchw", perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["xt", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3]),
             helper.make_node("PRelu", ["c1", "s1"], ["p1"], name="prelu1"),
             helper.make_node("Flatten", ["p1"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["g"], name="fc"),
             helper.make_node("PRelu", ["g", "s2"], ["y"], name="prelu2")]
    inits = [init("w1", _grid(rng, (3, 2, 3, 3), 0.4)), init("b1", _grid(rng, (3,), 0.4)), init("s1", slope),
             init("w2", _grid(rng, (48, 4), 0.3)), init("b2", _grid(rng, (4,), 0.3)), init("s2", rng.uniform(-0.5, 0.8, 4))]
    g = helper.make_graph(nodes, "prelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6, 6, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def test_onnx_follows_onnx_runtime_and_round_trips(tmp_path) -> None:
    import onnxruntime as ort
    p = _onnx(tmp_path / "m.onnx", np.random.default_rng(6))
    g = bondflow.load_model(p, default_precision=DEFAULT, input_precision=INPUT)
    assert [o.kind for o in g.ops] == ["conv", "prelu", "flatten", "dense", "prelu"]
    assert g.ops[1].alpha.size == 3 and g.ops[4].alpha.size == 4
    x = _inputs(g, 500, 1)
    want = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x.reshape(-1, 6, 6, 2).astype(np.float32)})[0]
    err = np.abs(reference.run(g, x) - want)
    assert err.max() < 0.01, err.max()  # float32 slopes on 18 bits, then one 2^-10 cast
    export_onnx(g, tmp_path / "q.onnx")
    again = bondflow.load_model(tmp_path / "q.onnx")
    assert again.digest() == g.digest()
    gp = bondflow.load_model(_onnx(tmp_path / "pp.onnx", np.random.default_rng(6), per_pixel=True), default_precision=DEFAULT)
    assert gp.ops[1].alpha.size == 48  # a slope per pixel and channel: per element
    export_onnx(gp, tmp_path / "qp.onnx")
    assert bondflow.load_model(tmp_path / "qp.onnx").digest() == gp.digest()
    with pytest.raises(UnsupportedOpError, match="per pixel") as e:
        bondflow.generate(gp, "dataflow")
    assert "\n" not in str(e.value)


@pytest.mark.hls4ml
def test_hls4ml_csim_equals_golden(models, tmp_path, need_tool) -> None:
    """hls4ml's prelu (io_parallel on the MLP, io_stream on the CNN) with param_t = the slopes' type."""
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    for name in ("mlp", "cnn"):
        g = _graph(models[name][0])
        tv = make_vectors(g, 1000 if name == "mlp" else 300, 1)
        assert np.array_equal(build_project(g, tmp_path / name).predict_raw(tv.inputs), tv.expected), name


@pytest.mark.sim
def test_dataflow_and_moldable_rtl_bit_exact(models, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("verilator")
    from bondflow.sim.lint import lint
    from bondflow.sim.runner import simulate
    for name, arch, opts, n in (("mlp", "dataflow", {}, 400), ("mlp", "dataflow", {"reuse_factor": 2}, 400),
                                ("mlp", "moldable", {}, 400), ("cnn", "dataflow", {}, 60), ("cnn", "moldable", {}, 60)):
        d = bondflow.generate(_graph(models[name][0]), arch, **opts)
        lint(d)
        r = simulate(d.write(tmp_path / f"{name}{arch}{len(opts)}"), n, simulator="icarus", check=True)
        assert r.passed and r.vectors == n, r.summary()


def test_backends_without_prelu_refuse(models) -> None:
    g = _graph(models["mlp"][0])
    for arch in ("bondmachine", "da4ml"):
        with pytest.raises(BondflowError) as e:
            bondflow.generate(g, arch)
        assert "prelu" in str(e.value) and "\n" not in str(e.value).strip(), str(e.value)

"""Graphs with branches (Add, Concatenate): Keras functional import, golden model == QKeras, hls4ml C-sim, refusals."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import UnsupportedOpError
from bondflow.ir.graph import Graph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INPUT = "fixed<8,3,RND_CONV,SAT>"


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


def _q():
    from qkeras import quantized_bits
    return dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))


def _relu(name: str):
    from qkeras import QActivation, quantized_relu
    return QActivation(quantized_relu(8, 3), name=name)


def _randomize(m, seed: int):
    rng = np.random.default_rng(seed)
    for layer in m.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return m


def _qkeras_equal(model, g, n: int = 1500, seed: int = 0) -> None:
    """Golden model == QKeras predict on n random inputs on the input grid (Keras adds in float32: exact at these widths)."""
    t = g.input.type
    x = np.random.default_rng(seed).uniform(t.min_value, t.max_value, (n, g.input.size))
    xq = t.to_float(t.quantize(x))
    want = model.predict(xq.reshape((n,) + g.input.shape), verbose=0, batch_size=4096).reshape(n, -1)
    got = bondflow.reference.run(g, x)
    assert np.array_equal(got, want), f"{np.count_nonzero(np.any(got != want, axis=1))} of {n} rows differ"


def _residual_mlp(tfk):
    from qkeras import QDense
    L = tfk.layers
    x = L.Input((8,), name="x")
    h = _relu("r1")(QDense(8, name="d1", **_q())(x))
    h = QDense(8, name="d2", **_q())(L.Dropout(0.1, name="drop")(h))
    a = _relu("r2")(L.Add(name="add")([h, x]))  # the skip reads the model input itself
    c = L.Concatenate(name="cat")([a, h])  # a tensor read twice (by add and cat)
    return _randomize(tfk.Model(x, QDense(3, name="out", **_q())(c), name="resmlp"), 1)


def _residual_cnn(tfk, rows: bool = True):
    from qkeras import QConv2D, QDense
    L = tfk.layers
    x = L.Input((6, 6, 2), name="img")
    c1 = _relu("r1")(QConv2D(4, 3, padding="same", name="c1", **_q())(x))
    c2 = QConv2D(4, 3, padding="same", name="c2", **_q())(c1)
    res = _relu("r2")(L.Add(name="add")([c1, c2]))  # residual conv block
    cat = L.Concatenate(axis=-1, name="cat")([res, x])  # along channels: 4 + 2
    p = L.MaxPooling2D(2, name="pool")(cat)
    wide = L.Concatenate(axis=1, name="rows")([p, p]) if rows else p  # along image rows, the same tensor twice
    y = QDense(3, name="fc", **_q())(L.Flatten(name="flat")(wide))
    return _randomize(tfk.Model(x, y, name="rescnn"), 2)


def test_functional_merges_equal_qkeras(tfk, tmp_path) -> None:
    for name, m in (("mlp", _residual_mlp(tfk)), ("cnn", _residual_cnn(tfk))):
        m.save(tmp_path / f"{name}.h5")
        g = bondflow.load_model(tmp_path / f"{name}.h5", input_precision=INPUT)
        merges = [o for o in g.ops if o.kind == "merge"]
        assert len(merges) >= 2 and not g.is_chain(), name
        _qkeras_equal(m, g, seed=len(name))
        g2 = Graph.from_json(g.to_json())  # JSON round trip keeps the inputs of every op
        assert g2.digest() == g.digest() and [o.inputs for o in g2.ops] == [o.inputs for o in g.ops]
    from bondflow.ir.merge import merge_result_type
    add, types = g.op("add"), g.types()
    assert add.inputs == ("r1", "c2")
    assert add.result_type == merge_result_type("add", [types["r1"], types["c2"]])  # exact: hls4ml's rule, nothing requantizes it
    assert g.shapes()["cat"] == (6, 6, 6) and g.shapes()["rows"] == (6, 3, 6)


def test_bundled_residual_example(tfk) -> None:
    """examples/residual_mlp: Add and Concatenate, bit-exact with QKeras, a useful classifier."""
    from qkeras.utils import _add_supported_quantized_objects
    from bondflow.fidelity import measure
    path = EXAMPLES / "residual_mlp" / "model.h5"
    g = bondflow.load_model(path)
    assert [o.function for o in g.ops if o.kind == "merge"] == ["add", "concatenate"]
    f = measure(g)  # QKeras predict on the example's test set
    assert f.reference.startswith("Keras") and f.agreement == 1.0 and f.max_error == 0.0, f.summary()
    co: dict = {}
    _add_supported_quantized_objects(co)
    _qkeras_equal(tfk.models.load_model(str(path), custom_objects=co, compile=False), g, n=1000, seed=3)
    d = np.load(EXAMPLES / "residual_mlp" / "data.npz")
    assert float(np.mean(bondflow.reference.run(g, d["x_test"]).argmax(1) == d["y_test"])) > 0.93


def test_bundled_residual_cnn_example(tfk) -> None:
    """examples/residual_cnn: a residual block and a channel concatenation, bit-exact with QKeras, a useful classifier."""
    from qkeras.utils import _add_supported_quantized_objects
    path = EXAMPLES / "residual_cnn" / "model.h5"
    g = bondflow.load_model(path)
    assert [(o.function, o.inputs) for o in g.ops if o.kind == "merge"] == [("add", ("relu1", "conv3")),
                                                                           ("concatenate", ("relu3", "relu_img"))]
    co: dict = {}
    _add_supported_quantized_objects(co)
    _qkeras_equal(tfk.models.load_model(str(path), custom_objects=co, compile=False), g, n=1000, seed=5)
    d = np.load(EXAMPLES / "residual_cnn" / "data.npz")
    assert float(np.mean(bondflow.reference.run(g, d["x_test"]).argmax(1) == d["y_test"])) > 0.95


@pytest.mark.hls4ml
def test_hls4ml_csim_equals_golden_for_branches(need_tool) -> None:
    need_tool("g++")
    g = bondflow.load_model(EXAMPLES / "residual_mlp" / "model.h5")
    d = bondflow.generate(g, "hls4ml", vectors=1000)
    assert d.info["csim_vectors"] == 1000 and d.info["csim_mismatches_vs_golden"] == 0, d.info
    cfg = d.files["hls4ml_config.json"]
    assert '"skip"' in cfg and '"concat"' in cfg


def test_chain_architectures_refuse_branches(tmp_path) -> None:
    """Every RTL generator refuses a branched graph in one line naming the merge; the CLI exits 3, no traceback."""
    g = bondflow.load_model(EXAMPLES / "residual_mlp" / "model.h5")
    for arch in ("bondmachine", "reference"):
        with pytest.raises(UnsupportedOpError, match=f"layer 'skip' of type 'merge add' is not supported by the {arch} architecture"):
            bondflow.generate(g, arch)
    from bondflow.codegen.reference_core import generate_reference
    with pytest.raises(UnsupportedOpError, match="merge add"):  # also when a generator is called directly
        generate_reference(g)
    g.save(tmp_path / "g.json")  # the CLI reads the graph JSON: no TensorFlow start-up in the subprocesses
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "generate", str(tmp_path / "g.json"),
                        "--arch", "reference", "--no-fidelity", "-o", str(tmp_path / "d")], capture_output=True, text=True)
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "'skip' of type 'merge add'" in r.stderr, r.stderr
    assert not (tmp_path / "d").exists()
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "info", str(tmp_path / "g.json"), "--no-fidelity"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "reads" in r.stdout, r.stderr
    skip = next(line for line in r.stdout.splitlines() if line.startswith("skip "))
    assert "fc3, relu1" in skip and "add" in skip


def test_keras_branch_refusals(tfk, tmp_path) -> None:
    from qkeras import QDense
    L = tfk.layers
    x = L.Input((4,))
    d = QDense(4, name="shared", **_q())
    m = tfk.Model(x, L.Add(name="add")([d(x), d(x)]))  # one layer called twice
    m.save(tmp_path / "shared.h5")
    with pytest.raises(UnsupportedOpError, match="'shared' of type 'QDense called 2 times"):
        bondflow.load_model(tmp_path / "shared.h5", input_precision=INPUT)
    m = tfk.Model(x, L.Average(name="avg")([QDense(4, name="a", **_q())(x), x]))
    m.save(tmp_path / "avg.h5")
    with pytest.raises(UnsupportedOpError, match="'avg' of type 'Average'"):
        bondflow.load_model(tmp_path / "avg.h5", input_precision=INPUT)


def _onnx_residual(path: Path, seed: int) -> None:
    """A float ONNX MLP with a skip Add of two computed tensors and a Concat; weights on a 1/4 grid, so a wide
    default precision holds every value exactly and the golden model must equal onnxruntime bit for bit."""
    from onnx import TensorProto, helper, numpy_helper, save
    rng = np.random.default_rng(seed)

    def init(name: str, shape: tuple[int, ...]):
        return numpy_helper.from_array((rng.integers(-4, 5, shape) / 4).astype(np.float32), name)

    inits = [init("w1", (6, 6)), init("b1", (6,)), init("w2", (6, 6)), init("b2", (6,)), init("w3", (12, 3)), init("b3", (3,))]
    n = helper.make_node
    nodes = [n("MatMul", ["x", "w1"], ["m1"], name="fc1"), n("Add", ["m1", "b1"], ["a1"], name="fc1_bias"),
             n("Relu", ["a1"], ["h1"], name="relu1"),
             n("MatMul", ["h1", "w2"], ["m2"], name="fc2"), n("Add", ["m2", "b2"], ["a2"], name="fc2_bias"),
             n("Add", ["a2", "x"], ["s"], name="skip"),  # two computed tensors: a branch from the input
             n("Relu", ["s"], ["h2"], name="relu2"),
             n("Concat", ["h2", "h1"], ["c"], name="cat", axis=1),  # h1 read a second time
             n("MatMul", ["c", "w3"], ["m3"], name="fc3"), n("Add", ["m3", "b3"], ["y"], name="fc3_bias")]
    gr = helper.make_graph(nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, path)


def test_onnx_merges_equal_onnxruntime(tmp_path) -> None:
    import onnxruntime as ort
    _onnx_residual(tmp_path / "res.onnx", 4)
    g = bondflow.load_model(tmp_path / "res.onnx", default_precision="fixed<28,14>", input_precision="fixed<10,4,RND_CONV,SAT>")
    add, cat = [o for o in g.ops if o.kind == "merge"]  # names as qonnx's cleanup gives them
    assert add.function == "add" and add.inputs[1] == g.input.name and cat.function == "concatenate"
    assert cat.inputs[1] == g.ops[1].name and g.ops[1].function == "relu"  # the first relu, read twice
    x = np.random.default_rng(5).uniform(-8, 8, (1000, 6))
    xq = g.input.type.to_float(g.input.type.quantize(x)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "res.onnx"), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": xi[None]})[0] for xi in xq])
    assert np.array_equal(bondflow.reference.run(g, x), want)


def test_qonnx_export_round_trip_of_merges(tfk, tmp_path) -> None:
    """bondflow's QONNX export writes Add/Concat + Quant (images NCHW, a tensor read twice through a copy); the re-import
    has the same digest and qonnx runs the file to the golden model's numbers."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    from bondflow.frontend.onnx_export import export_onnx
    _residual_cnn(tfk).save(tmp_path / "cnn.h5")
    for i, g in enumerate((bondflow.load_model(EXAMPLES / "residual_mlp" / "model.h5"),
                           bondflow.load_model(tmp_path / "cnn.h5", input_precision=INPUT))):
        export_onnx(g, tmp_path / f"g{i}.onnx")
        g2 = bondflow.load_model(tmp_path / f"g{i}.onnx")
        assert g2.digest() == g.digest() and [o.inputs for o in g2.ops] == [o.inputs for o in g.ops]
        m = cleanup_model(ModelWrapper(str(tmp_path / f"g{i}.onnx")))
        t = g.input.type
        x = t.to_float(t.quantize(np.random.default_rng(6).uniform(t.min_value, t.max_value, (20, g.input.size))))  # qonnx runs one sample at a time
        got = np.stack([execute_onnx(m, {"global_in": xi.reshape((1,) + g.input.shape).astype(np.float32)})[m.graph.output[0].name].reshape(-1)
                        for xi in x])
        assert np.array_equal(got, bondflow.reference.run(g, x))


def test_tf2onnx_residual_cnn_equals_keras_import(tfk, tmp_path) -> None:
    """tf2onnx's export of a float Keras residual CNN (NHWC input, transposes, Add and channel Concat on NCHW tensors)
    imports to the same ops, types and numbers as the Keras file."""
    import tensorflow as tf
    import tf2onnx
    L = tfk.layers
    tfk.utils.set_random_seed(1)
    x = L.Input((8, 8, 2))
    c1 = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    a = L.Activation("relu")(L.Add()([c1, L.Conv2D(4, 3, padding="same")(c1)]))
    y = L.Dense(3)(L.Flatten()(L.MaxPooling2D(2)(L.Concatenate()([a, c1]))))
    m = tfk.Model(x, y)
    m.save(tmp_path / "m.h5")
    proto, _ = tf2onnx.convert.from_keras(m, input_signature=(tf.TensorSpec((None, 8, 8, 2), tf.float32, name="x"),), opset=13)
    (tmp_path / "m.onnx").write_bytes(proto.SerializeToString())
    gk = bondflow.load_model(tmp_path / "m.h5", default_precision="fixed<16,6>")
    go = bondflow.load_model(tmp_path / "m.onnx", default_precision="fixed<16,6>")
    assert [(o.kind, str(o.result_type)) for o in gk.ops] == [(o.kind, str(o.result_type)) for o in go.ops]
    assert [o.kind for o in go.ops].count("merge") == 2
    xs = np.random.default_rng(2).standard_normal((1500, gk.input.size))
    assert np.array_equal(bondflow.reference.run(gk, xs), bondflow.reference.run(go, xs))


@pytest.mark.hls4ml
def test_hls4ml_merges_of_three_tensors(need_tool) -> None:
    """A 3-input add of mixed types and a casting 3-input concatenate: hls4ml merges two tensors, so each becomes a
    chain of two merges whose inner one is exact; the C simulation equals the golden model."""
    need_tool("g++")
    from simgraphs import branchy
    d = bondflow.generate(branchy(seed=4), "hls4ml", vectors=1000)
    assert d.info["csim_vectors"] == 1000 and d.info["csim_mismatches_vs_golden"] == 0, d.info
    assert '"sum3_1"' in d.files["hls4ml_config.json"] and '"cat_1"' in d.files["hls4ml_config.json"]


@pytest.mark.sim
def test_dataflow_streams_a_keras_residual_cnn(tfk, tmp_path, need_tool) -> None:
    """QKeras residual CNN (Add over a conv, Concatenate of channels with the input image) through the streaming
    dataflow design: bit-exact on Verilator with back-pressure, one pixel per cycle; images concatenated along
    rows are refused in one line that names moldable, which builds them."""
    need_tool("verilator")
    m = _residual_cnn(tfk)
    m.save(tmp_path / "rows.h5")
    rows = bondflow.load_model(tmp_path / "rows.h5", input_precision=INPUT)
    with pytest.raises(UnsupportedOpError, match=r"'rows' of type 'concatenate of images along rows' is not supported by "
                                                 r"the dataflow streaming generator \(--arch moldable builds it\)"):
        bondflow.generate(rows, "dataflow")
    from bondflow.bondmachine.moldable.program import map_network, simulate_isa
    from bondflow.sim.vectors import make_vectors
    tv = make_vectors(rows, 200, seed=2)  # as the message says: moldable's programs equal the golden model
    assert np.array_equal(simulate_isa(map_network(rows), tv.inputs)[0], tv.expected)
    m = _residual_cnn(tfk, rows=False)
    m.save(tmp_path / "res.h5")
    g = bondflow.load_model(tmp_path / "res.h5", input_precision=INPUT)
    _qkeras_equal(m, g, n=500, seed=4)
    d = bondflow.generate(g, "dataflow")
    assert d.ii_cycles == 36  # 6x6 pixels, one per cycle: the branches do not slow the stream
    from bondflow.sim.runner import simulate
    r = simulate(d.write(tmp_path / "d"), 300, simulator="verilator", seed=2)
    assert r.passed and r.vectors == 300, r.summary()
    assert (r.latency_cycles, r.ii_cycles) == (d.latency_cycles, d.info["ii_model"]), r.summary()

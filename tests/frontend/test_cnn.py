"""CNNs from import to the golden model and hls4ml: every layer kind bit-exact with QKeras, the bundled CNN examples."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import GraphValidationError, UnsupportedOpError
from bondflow.ir.graph import Graph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INPUT = "fixed<8,3,RND_CONV,SAT>"


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


def _qkeras_equal(model, g, n: int = 1500, seed: int = 0) -> None:
    """Golden model == QKeras predict on n inputs on the input grid (QKeras sums in float32: exact at these widths)."""
    t = g.input.type
    x = np.random.default_rng(seed).uniform(t.min_value, t.max_value, (n, g.input.size))
    xq = t.to_float(t.quantize(x))
    want = model.predict(xq.reshape((n,) + g.input.shape), verbose=0, batch_size=4096).reshape(n, -1)
    assert np.array_equal(bondflow.reference.run(g, x), want)


def _quantized(tfk, layers: list, in_shape: tuple[int, ...], name: str, seed: int):
    rng = np.random.default_rng(seed)
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=in_shape)] + layers, name=name)
    for layer in m.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return m


def _q():
    from qkeras import quantized_bits
    return dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))


def _relu(name: str):
    from qkeras import QActivation, quantized_relu
    return QActivation(quantized_relu(8, 3), name=name)


def _layer_kinds(tfk) -> dict[str, object]:
    from qkeras import QConv1D, QConv2D, QDense
    L = tfk.layers
    return {
        "conv2d_same_stride_max": _quantized(tfk, [QConv2D(4, 3, padding="same", strides=2, name="c", **_q()), _relu("r"),
                                                   L.MaxPooling2D(2, padding="same", name="p"), L.Flatten(), QDense(3, name="d", **_q())],
                                             (9, 9, 2), "k1", 1),
        "conv2d_valid_avg_global": _quantized(tfk, [L.ZeroPadding2D(((1, 0), (2, 1)), name="zp"), QConv2D(8, (3, 2), name="c", **_q()),
                                                    _relu("r"), L.AveragePooling2D(2, name="p"), L.GlobalMaxPooling2D(name="g"),
                                                    QDense(3, name="d", **_q())], (8, 8, 1), "k2", 2),
        "conv1d_stride_avg": _quantized(tfk, [QConv1D(6, 4, strides=2, padding="same", name="c", **_q()), _relu("r"),
                                              L.AveragePooling1D(2, name="p"), L.GlobalAveragePooling1D(name="g"),
                                              QDense(2, name="d", **_q())], (16, 3), "k3", 3),
        "conv1d_max_flatten": _quantized(tfk, [QConv1D(3, 5, name="c", **_q()), _relu("r"), L.MaxPooling1D(3, strides=2, name="p"),
                                               L.Flatten(), QDense(4, name="d", **_q())], (20, 1), "k4", 4),
        "upsample2d_unet_like": _quantized(tfk, [QConv2D(4, 3, padding="same", name="c", **_q()), _relu("r"),
                                                 L.MaxPooling2D(2, name="p"), L.UpSampling2D((2, 3), name="u"),
                                                 QConv2D(2, 3, padding="same", name="c2", **_q()), L.Flatten(),
                                                 QDense(3, name="d", **_q())], (6, 4, 2), "k5", 5),
        "upsample1d": _quantized(tfk, [L.UpSampling1D(3, name="u"), QConv1D(3, 3, name="c", **_q()), _relu("r"),
                                       L.Flatten(), QDense(2, name="d", **_q())], (5, 2), "k6", 6),
    }


def test_every_layer_kind_equals_qkeras(tfk, tmp_path) -> None:
    for kind, m in _layer_kinds(tfk).items():
        m.save(tmp_path / f"{kind}.h5")
        g = bondflow.load_model(tmp_path / f"{kind}.h5", input_precision=INPUT)
        assert g.is_shaped() and len(g.input.shape) > 1, kind
        _qkeras_equal(m, g, seed=len(kind))
        assert Graph.from_json(g.to_json()).digest() == g.digest()  # JSON round trip keeps shapes and ops


@pytest.mark.parametrize("example", ["digits_cnn", "conv1d"])
def test_bundled_cnn_examples(example: str, tfk) -> None:
    from qkeras.utils import _add_supported_quantized_objects
    co: dict = {}
    _add_supported_quantized_objects(co)
    path = EXAMPLES / example / "model.h5"
    g = bondflow.load_model(path)
    m = tfk.models.load_model(str(path), custom_objects=co, compile=False)
    _qkeras_equal(m, g, n=2000)
    d = np.load(EXAMPLES / example / "data.npz")
    acc = float(np.mean(bondflow.reference.run(g, d["x_test"]).argmax(1) == d["y_test"]))
    assert acc > 0.95, f"{example}: golden-model accuracy {acc}"  # a useful classifier, not only an exact one
    from bondflow.fidelity import measure
    f = measure(g)
    assert f.agreement >= 0.98 and not f.poor


@pytest.mark.parametrize("example", ["digits_cnn", "conv1d"])
def test_hls4ml_csim_equals_golden_for_cnns(example: str, need_tool) -> None:
    need_tool("g++")
    g = bondflow.load_model(EXAMPLES / example / "model.h5")
    d = bondflow.generate(g, "hls4ml", vectors=300)
    assert d.info["csim_vectors"] == 300 and d.info["csim_mismatches_vs_golden"] == 0
    assert '"IOType": "io_stream"' in d.files["hls4ml_config.json"] or "io_stream" in "".join(
        t for n, t in d.files.items() if n.endswith("hls4ml_config.yml"))


def test_float_cnn_with_bn_follows_keras(tfk, tmp_path) -> None:
    """A float Keras CNN (Conv2D, BatchNormalization folded, ReLU, pooling, softmax) typed at the default precision."""
    L = tfk.layers
    tfk.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 8, 8, 1))
    quadrants = [x[:, i:i + 4, j:j + 4].sum(axis=(1, 2, 3)) for i in (0, 4) for j in (0, 4)]
    y = np.argmax(quadrants, axis=0)  # which quadrant is brightest
    m = tfk.Sequential([L.InputLayer(input_shape=(8, 8, 1)), L.Conv2D(4, 3, padding="same"), L.BatchNormalization(),
                        L.Activation("relu"), L.MaxPooling2D(2), L.Conv2D(8, 3), L.Activation("relu"),
                        L.AveragePooling2D(2), L.Flatten(), L.Dense(4),
                        L.Activation("softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=4, verbose=0)
    m.save(tmp_path / "float_cnn.h5")
    g = bondflow.load_model(tmp_path / "float_cnn.h5", default_precision="fixed<16,6>")
    assert [o.kind for o in g.ops].count("conv") == 2 and "batch" not in " ".join(o.name for o in g.ops)  # BN folded
    from bondflow.fidelity import measure
    f = measure(g)
    assert f.agreement >= 0.95 and f.distinct_outputs > 1, f.summary()


def test_shape_errors_and_refusals(tfk, tmp_path) -> None:
    from qkeras import QDense
    L = tfk.layers
    m = tfk.Sequential([L.InputLayer(input_shape=(4, 4, 2)), QDense(3, name="d3", **_q())])  # Dense on an image
    m.save(tmp_path / "d3.h5")
    with pytest.raises(UnsupportedOpError, match="add a Flatten"):
        bondflow.load_model(tmp_path / "d3.h5", input_precision=INPUT)
    from bondflow.ir.tensor_ops import Conv
    from bondflow.ir.types import FixedType
    t = FixedType(8, 3)
    with pytest.raises(GraphValidationError, match="input channels"):
        Conv(name="c", input="x", result_type=t, weight=np.zeros((3, 3, 2, 4)), weight_type=t, bias=np.zeros(4),
             bias_type=t, accum_type=t, strides=(1, 1), pads=((0, 0), (0, 0))).out_shape((8, 8, 3))
    # Architectures without convolutions (dataflow and moldable have them) refuse a CNN in one line, never a traceback.
    for arch in ("bondmachine", "reference"):
        r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "generate", str(EXAMPLES / "digits_cnn" / "model.h5"),
                            "--arch", arch, "--no-fidelity", "-o", str(tmp_path / arch)], capture_output=True, text=True)
        assert r.returncode == 3 and r.stderr.count("\n") == 1 and "layer 'conv1' of type 'conv'" in r.stderr, r.stderr
        assert not (tmp_path / arch).exists()


@pytest.mark.parametrize("example", ["digits_cnn", "conv1d", "residual_cnn"])
def test_qonnx_round_trip_and_qonnx_executes_it(example: str, tmp_path) -> None:
    """CNN graphs export to QONNX (NHWC input, one transpose to NCHW) and re-import to the same digest; qonnx runs the file."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from bondflow.frontend.onnx_export import export_onnx
    g = bondflow.load_model(EXAMPLES / example / "model.h5")
    export_onnx(g, tmp_path / "g.onnx")
    assert bondflow.load_model(tmp_path / "g.onnx").digest() == g.digest()
    from qonnx.util.cleanup import cleanup_model
    m = cleanup_model(ModelWrapper(str(tmp_path / "g.onnx")))  # qonnx's own shape inference first, as its users do
    x = np.load(EXAMPLES / example / "data.npz")["x_test"][:40]
    got = np.stack([execute_onnx(m, {"global_in": xi.reshape((1,) + g.input.shape).astype(np.float32)})[m.graph.output[0].name].reshape(-1)
                    for xi in x])
    assert np.array_equal(got, bondflow.reference.run(g, x))


def test_tf2onnx_cnn_equals_keras_import(tfk, tmp_path) -> None:
    """tf2onnx's export of a float Keras CNN (NHWC input, Reshape/Transpose to NCHW, Conv with bias, pools) imports
    to the same numbers and types as the Keras file."""
    import tensorflow as tf
    import tf2onnx
    L = tfk.layers
    tfk.utils.set_random_seed(1)
    m = tfk.Sequential([L.InputLayer(input_shape=(8, 8, 2)), L.Conv2D(4, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
                        L.Conv2D(6, 3, strides=2, padding="same"), L.Activation("relu"), L.GlobalAveragePooling2D(),
                        L.Dense(3), L.Activation("softmax")])
    m.save(tmp_path / "m.h5")
    proto, _ = tf2onnx.convert.from_keras(m, input_signature=(tf.TensorSpec((None, 8, 8, 2), tf.float32, name="x"),), opset=13)
    (tmp_path / "m.onnx").write_bytes(proto.SerializeToString())
    gk = bondflow.load_model(tmp_path / "m.h5", default_precision="fixed<16,6>")
    go = bondflow.load_model(tmp_path / "m.onnx", default_precision="fixed<16,6>")
    assert [str(o.result_type) for o in gk.ops] == [str(o.result_type) for o in go.ops]
    x = np.random.default_rng(2).standard_normal((1500, gk.input.size))
    assert np.array_equal(bondflow.reference.run(gk, x), bondflow.reference.run(go, x))
    from bondflow.fidelity import measure
    assert measure(go).reference == "ONNX Runtime"


def test_channels_first_onnx_input(tmp_path) -> None:
    """A channels-first [N, C, H, W] input: exact when C = 1 (the same flat order), refused in one line otherwise."""
    from onnx import TensorProto, helper, numpy_helper, save
    rng = np.random.default_rng(0)
    for c in (1, 2):
        w = numpy_helper.from_array(rng.normal(0, 0.5, (3, c, 3, 3)).astype(np.float32), "w")
        wd = numpy_helper.from_array(rng.normal(0, 0.5, (3 * 4 * 4, 2)).astype(np.float32), "wd")
        shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "s")
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
                 helper.make_node("Relu", ["c"], ["r"], name="relu"), helper.make_node("Reshape", ["r", "s"], ["f"], name="flat"),
                 helper.make_node("MatMul", ["f", "wd"], ["y"], name="fc")]
        gr = helper.make_graph(nodes, "nchw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 8, 8])],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w, wd, shape])
        model = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        save(model, tmp_path / f"c{c}.onnx")
        if c == 2:
            with pytest.raises(UnsupportedOpError, match="channels-first graph input with 2 channels"):
                bondflow.load_model(tmp_path / "c2.onnx", default_precision="fixed<16,6>")
            continue
        g = bondflow.load_model(tmp_path / "c1.onnx", default_precision="fixed<16,6>")
        assert g.input.shape == (8, 8, 1) and [o.kind for o in g.ops] == ["conv", "activation", "flatten", "dense"]
        # The flatten was channels first (PyTorch order): the Dense reads its rows permuted, exactly.
        import onnxruntime as ort
        x = rng.uniform(-4, 4, (300, 64)).astype(np.float32)
        xq = g.input.type.to_float(g.input.type.quantize(x)).astype(np.float32)
        sess = ort.InferenceSession(str(tmp_path / "c1.onnx"), providers=["CPUExecutionProvider"])
        want = np.concatenate([sess.run(None, {"x": xi.reshape(1, 1, 8, 8)})[0] for xi in xq])
        got = bondflow.reference.run(g, x)
        # Only fixed<16,6> truncation apart (a permuted flatten would be off by whole values).
        assert np.abs(got - want).max() < 0.1 and np.mean(got.argmax(1) == want.argmax(1)) > 0.95


@pytest.mark.sim
def test_depthwise_convolutions(tfk, tmp_path, need_tool) -> None:
    """QDepthwiseConv2D (depth multiplier 2) then a pointwise QConv2D, and a float DepthwiseConv2D with a folded
    BatchNormalization: convolutions whose cross-channel weights are zero, equal to Keras; the dataflow design
    spends multipliers on the depthwise weights only and is bit-exact in RTL; hls4ml's C simulation agrees."""
    need_tool("iverilog")
    need_tool("g++")
    from qkeras import QConv2D, QDense, QDepthwiseConv2D, quantized_bits
    L = tfk.layers
    q6 = quantized_bits(6, 0, alpha=1)
    m = _quantized(tfk, [QDepthwiseConv2D(3, padding="same", depth_multiplier=2, depthwise_quantizer=q6, bias_quantizer=q6,
                                          name="dw"), _relu("r1"),
                         QConv2D(4, 1, name="pw", **_q()), _relu("r2"), L.MaxPooling2D(2, name="p"), L.Flatten(),
                         QDense(3, name="d", **_q())], (6, 6, 3), "dwq", 5)
    m.save(tmp_path / "dw.h5")
    g = bondflow.load_model(tmp_path / "dw.h5", input_precision=INPUT)
    dw = g.op("dw")
    assert dw.weight.shape == (3, 3, 3, 6) and g.shapes()["dw"] == (6, 6, 6)
    assert np.count_nonzero(dw.weight[:, :, 0, 2:]) == 0  # channel 0 feeds outputs 0 and 1 only
    _qkeras_equal(m, g, seed=5)
    d = bondflow.generate(g, "dataflow")
    assert d.info["stages"][0]["multipliers"] <= 3 * 3 * 3 * 2  # zero weights cost nothing
    from bondflow.sim.runner import simulate
    r = simulate(d.write(tmp_path / "d"), 100, simulator="icarus", seed=3)
    assert r.passed and (r.latency_cycles, r.ii_cycles) == (d.latency_cycles, d.info["ii_model"]), r.summary()
    h = bondflow.generate(g, "hls4ml", vectors=200)
    assert h.info["csim_vectors"] == 200 and h.info["csim_mismatches_vs_golden"] == 0
    # float: depthwise convolution, BatchNormalization folded into it, the default precision
    f = tfk.Sequential([L.InputLayer(input_shape=(8, 8, 2)), L.DepthwiseConv2D(3, name="dw"), L.BatchNormalization(name="bn"),
                        L.Activation("relu"), L.Flatten(), L.Dense(3, name="d"), L.Activation("softmax")])
    rng = np.random.default_rng(1)
    for layer in f.layers:
        if layer.get_weights():
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if layer.name == "bn" else rng.normal(0, 0.5, w.shape)
                               for w in layer.get_weights()])
    f.save(tmp_path / "fdw.h5")
    g = bondflow.load_model(tmp_path / "fdw.h5", default_precision="fixed<16,6>")
    assert [o.kind for o in g.ops][:1] == ["conv"] and "bn" not in [o.name for o in g.ops]
    from bondflow.fidelity import measure
    fid = measure(g)
    assert fid.agreement >= 0.95 and fid.distinct_outputs > 1, fid.summary()


def test_tf2onnx_depthwise_equals_keras_import(tfk, tmp_path) -> None:
    """tf2onnx writes a DepthwiseConv2D as a Conv with group = channels: it imports to the Keras file's numbers."""
    import tensorflow as tf
    import tf2onnx
    L = tfk.layers
    tfk.utils.set_random_seed(3)
    m = tfk.Sequential([L.InputLayer(input_shape=(8, 8, 3)), L.DepthwiseConv2D(3, padding="same", depth_multiplier=2),
                        L.Activation("relu"), L.Conv2D(4, 1), L.Activation("relu"), L.GlobalAveragePooling2D(),
                        L.Dense(3), L.Activation("softmax")])
    m.save(tmp_path / "m.h5")
    proto, _ = tf2onnx.convert.from_keras(m, input_signature=(tf.TensorSpec((None, 8, 8, 3), tf.float32, name="x"),), opset=13)
    (tmp_path / "m.onnx").write_bytes(proto.SerializeToString())
    gk = bondflow.load_model(tmp_path / "m.h5", default_precision="fixed<16,6>")
    go = bondflow.load_model(tmp_path / "m.onnx", default_precision="fixed<16,6>")
    assert [str(o.result_type) for o in gk.ops] == [str(o.result_type) for o in go.ops]
    assert np.array_equal(gk.ops[0].weight, go.ops[0].weight) and gk.ops[0].weight.shape == (3, 3, 3, 6)
    x = np.random.default_rng(2).standard_normal((1500, gk.input.size))
    assert np.array_equal(bondflow.reference.run(gk, x), bondflow.reference.run(go, x))
    # the cross-channel zeros are structure, not weights: parameters and MACs as Keras counts them
    dw = gk.ops[0]
    assert dw.groups == go.ops[0].groups == 3 and dw.params() == m.layers[0].count_params() == 3 * 3 * 3 * 2 + 6
    assert dw.macs_for(gk.shapes()[dw.name]) == 8 * 8 * 3 * 3 * 3 * 2
    from bondflow.cli.cmd_info import graph_table
    assert "conv2d 3x3 depthwise" in graph_table(gk).splitlines()[3]
    # grouped weights export as ONNX's grouped Conv and come back the same graph
    from bondflow.frontend.onnx_export import export_onnx
    export_onnx(gk, tmp_path / "rt.onnx")
    assert bondflow.load_model(tmp_path / "rt.onnx").digest() == gk.digest()
    from bondflow.errors import GraphValidationError
    from dataclasses import replace
    leak = dw.weight.copy()
    leak[0, 0, 1, 0] = 1  # input channel 1 feeding output 0 of group 0
    with pytest.raises(GraphValidationError, match="zero weights between groups"):
        replace(dw, weight=leak)


@pytest.mark.sim
def test_separable_convolutions(tfk, tmp_path, need_tool) -> None:
    """QSeparableConv2D and a float SeparableConv2D: a depthwise convolution (exact sums) then a 1x1 convolution,
    equal to Keras; the dataflow design of the quantized one is bit-exact in RTL."""
    need_tool("iverilog")
    from qkeras import QDense, QSeparableConv2D, quantized_bits
    L = tfk.layers
    q6 = quantized_bits(6, 0, alpha=1)
    m = _quantized(tfk, [QSeparableConv2D(4, 3, padding="same", depth_multiplier=2, depthwise_quantizer=q6,
                                          pointwise_quantizer=q6, bias_quantizer=q6, name="sep"), _relu("r1"),
                         L.MaxPooling2D(2, name="p"), L.Flatten(), QDense(3, name="d", **_q())], (6, 6, 2), "sepq", 6)
    m.save(tmp_path / "sep.h5")
    g = bondflow.load_model(tmp_path / "sep.h5", input_precision=INPUT)
    assert [o.name for o in g.ops][:2] == ["sep_depthwise", "sep"] and g.op("sep").kernel == (1, 1)
    assert g.shapes()["sep_depthwise"] == (6, 6, 4) and g.op("sep_depthwise").result_type == g.op("sep_depthwise").accum_type
    _qkeras_equal(m, g, seed=6)
    d = bondflow.generate(g, "dataflow")
    from bondflow.sim.runner import simulate
    r = simulate(d.write(tmp_path / "d"), 80, simulator="icarus", seed=2)
    assert r.passed and (r.latency_cycles, r.ii_cycles) == (d.latency_cycles, d.info["ii_model"]), r.summary()
    f = tfk.Sequential([L.InputLayer(input_shape=(8, 8, 2)), L.SeparableConv2D(4, 3, name="sep"), L.Activation("relu"),
                        L.Flatten(), L.Dense(3, name="d"), L.Activation("softmax")])
    rng = np.random.default_rng(2)
    f.set_weights([rng.normal(0, 0.5, w.shape) for w in f.get_weights()])
    f.save(tmp_path / "fsep.h5")
    g = bondflow.load_model(tmp_path / "fsep.h5", default_precision="fixed<16,6>")
    from bondflow.fidelity import measure
    fid = measure(g)
    assert fid.agreement >= 0.95 and fid.distinct_outputs > 1, fid.summary()


def test_keras_reshape_of_a_flat_input(tfk, tmp_path) -> None:
    """MNIST-style models take flat pixels and Reshape them to an image: the input becomes that image (the same
    row-major values, so the same stream); a Reshape to a vector is a Flatten; any other Reshape is one line."""
    from qkeras import QConv2D, QDense
    L = tfk.layers
    m = _quantized(tfk, [L.Reshape((6, 6, 2), name="img"), QConv2D(3, 3, name="c", **_q()), _relu("r"), L.Reshape((-1,), name="flat"),
                         QDense(3, name="d", **_q())], (72,), "reshaped", 7)
    m.save(tmp_path / "r.h5")
    g = bondflow.load_model(tmp_path / "r.h5", input_precision=INPUT)
    assert g.input.shape == (6, 6, 2) and [o.kind for o in g.ops] == ["conv", "activation", "flatten", "dense"]
    t = g.input.type
    x = t.to_float(t.quantize(np.random.default_rng(7).uniform(t.min_value, t.max_value, (1000, 72))))
    assert np.array_equal(bondflow.reference.run(g, x), m.predict(x, verbose=0, batch_size=1000))  # flat in, as Keras reads it
    assert bondflow.generate(g, "dataflow").ii_cycles == 36  # streamed pixel by pixel
    bad = _quantized(tfk, [L.Reshape((6, 6, 2)), QConv2D(2, 3, name="c", **_q()), L.Reshape((8, 4), name="again"), L.Flatten(),
                           QDense(2, **_q())], (72,), "bad", 8)
    bad.save(tmp_path / "bad.h5")
    with pytest.raises(UnsupportedOpError, match=r"'again' of type 'Reshape \(4, 4, 2\) -> \(8, 4\)'"):
        bondflow.load_model(tmp_path / "bad.h5", input_precision=INPUT)


def test_upsampling_through_onnx(tfk, tmp_path) -> None:
    """UpSampling (nearest) from Keras, from tf2onnx's Resize and in bondflow's own QONNX export: the same pixel
    repeat; qonnx runs the export to the golden model's numbers; Resize modes that read other pixels are refused."""
    import tensorflow as tf
    import tf2onnx
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    from bondflow.frontend.onnx_export import export_onnx
    L = tfk.layers
    tfk.utils.set_random_seed(4)
    m = tfk.Sequential([L.InputLayer(input_shape=(4, 3, 2)), L.Conv2D(3, 3, padding="same", activation="relu"),
                        L.UpSampling2D((2, 3)), L.Conv2D(2, 3, padding="same"), L.Activation("relu"), L.Flatten(),
                        L.Dense(3)])  # no softmax: qonnx runs ONNX's float one, bondflow a table
    m.save(tmp_path / "m.h5")
    proto, _ = tf2onnx.convert.from_keras(m, input_signature=(tf.TensorSpec((None, 4, 3, 2), tf.float32, name="x"),), opset=13)
    (tmp_path / "m.onnx").write_bytes(proto.SerializeToString())
    assert any(n.op_type == "Resize" for n in proto.graph.node)
    gk = bondflow.load_model(tmp_path / "m.h5", default_precision="fixed<16,6>")
    go = bondflow.load_model(tmp_path / "m.onnx", default_precision="fixed<16,6>")
    up = next(o for o in gk.ops if o.kind == "upsample")
    assert up.size == (2, 3) and gk.shapes()[up.name] == (8, 9, 3) and up.result_type == gk.types()[up.input]
    assert [o.kind for o in go.ops] == [o.kind for o in gk.ops]
    x = np.random.default_rng(2).standard_normal((1000, gk.input.size))
    assert np.array_equal(bondflow.reference.run(gk, x), bondflow.reference.run(go, x))
    export_onnx(gk, tmp_path / "rt.onnx")
    assert bondflow.load_model(tmp_path / "rt.onnx").digest() == gk.digest()
    q = cleanup_model(ModelWrapper(str(tmp_path / "rt.onnx")))
    got = np.stack([execute_onnx(q, {"global_in": xi.reshape((1, 4, 3, 2)).astype(np.float32)})[q.graph.output[0].name].reshape(-1)
                    for xi in x[:30]])
    assert np.array_equal(got, bondflow.reference.run(gk, x[:30]))

    def resize_model(path, **modes) -> None:
        scales = helper.make_tensor("s", TensorProto.FLOAT, [4], [1, 1, 2, 2])
        nodes = [helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", **modes),
                 helper.make_node("Flatten", ["y"], ["z"], name="fl")]
        g = helper.make_graph(nodes, "rs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 3])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 36])], [scales])
        (tmp_path / path).write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())

    resize_model("default.onnx", mode="nearest")  # ONNX's defaults: half_pixel + round_prefer_floor repeat pixels
    g = bondflow.load_model(tmp_path / "default.onnx", default_precision="fixed<8,4>")
    xi = np.arange(9.0).reshape(1, 9) / 4
    assert np.array_equal(bondflow.reference.run(g, xi).reshape(6, 6), np.repeat(np.repeat(xi.reshape(3, 3), 2, 0), 2, 1))
    for name, modes, why in (("lin.onnx", dict(mode="linear"), "mode=linear"),
                             ("ceil.onnx", dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                                nearest_mode="round_prefer_ceil"), "nearest_mode=round_prefer_ceil")):
        resize_model(name, **modes)
        with pytest.raises(UnsupportedOpError, match=why):
            bondflow.load_model(tmp_path / name, default_precision="fixed<8,4>")


def test_upsampling_hls4ml_csim_equals_golden(tfk, tmp_path, need_tool) -> None:
    """A U-Net-like chain (conv, pool, nearest UpSampling2D by (2, 3), conv): hls4ml's C simulation == golden model."""
    need_tool("g++")
    m = _layer_kinds(tfk)["upsample2d_unet_like"]
    m.save(tmp_path / "u.h5")
    g = bondflow.load_model(tmp_path / "u.h5", input_precision=INPUT)
    d = bondflow.generate(g, "hls4ml", vectors=300)
    assert d.info["csim_vectors"] == 300 and d.info["csim_mismatches_vs_golden"] == 0


def test_qonnx_round_trip_of_a_hand_built_1d_upsampler_with_a_declared_accumulator(tmp_path) -> None:
    """A graph built in code: a 1-D upsampler and a conv whose declared accumulator is wider than exact; the QONNX
    export keeps both (same digest back) and qonnx runs it to the golden model's numbers."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    from bondflow.frontend.onnx_export import export_onnx
    from bondflow.ir.graph import TensorSpec
    from bondflow.ir.ops import Flatten
    from bondflow.ir.tensor_ops import Conv, Upsample
    from bondflow.ir.types import FixedType
    T = FixedType.parse
    xt, rt = T("fixed<6,2,RND_CONV,SAT>"), T("fixed<10,4,RND_CONV,SAT>")
    rng = np.random.default_rng(0)
    g = Graph("u1", TensorSpec("x", 10, xt, (5, 2)), (
        Upsample(name="up", input="x", result_type=xt, size=(3,)),
        Conv(name="c", input="up", result_type=rt, weight=rng.integers(-8, 8, (3, 2, 3)), weight_type=T("fixed<5,1>"),
             bias=rng.integers(-8, 8, 3), bias_type=T("fixed<5,1>"), accum_type=FixedType(20, 12), strides=(1,), pads=((1, 1),)),
        Flatten(name="f", input="c", result_type=rt)))
    export_onnx(g, tmp_path / "u1.onnx")
    assert bondflow.load_model(tmp_path / "u1.onnx").digest() == g.digest()
    q = cleanup_model(ModelWrapper(str(tmp_path / "u1.onnx")))
    x = rng.uniform(-4, 4, (30, 10))
    got = np.stack([execute_onnx(q, {"global_in": xi.reshape(1, 5, 2).astype(np.float32)})[q.graph.output[0].name].reshape(-1)
                    for xi in x])
    assert np.array_equal(got, bondflow.reference.run(g, x))


def test_tf2onnx_batchnorm_after_relu_equals_keras_import(tfk, tmp_path) -> None:
    """A BatchNormalization after a conv's ReLU stays a BatchNormalization node in tf2onnx's export: both files give
    the same per-channel scale and shift (a 1x1 convolution with a group per channel) and the same numbers."""
    import tensorflow as tf
    import tf2onnx
    from bondflow.fidelity import measure
    L = tfk.layers
    rng = np.random.default_rng(3)
    m = tfk.Sequential([L.InputLayer(input_shape=(6, 6, 2)), L.Conv2D(4, 3, activation="relu", name="c1"),
                        L.BatchNormalization(name="bn"), L.MaxPooling2D(2), L.Flatten(), L.Dense(3, name="fc")])
    for layer in m.layers:
        if layer.name == "bn":
            layer.set_weights([rng.uniform(0.5, 2.0, 4), rng.normal(0, 0.5, 4), rng.normal(0, 0.5, 4), rng.uniform(0.3, 2.0, 4)])
        elif layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    m.save(tmp_path / "m.h5")
    proto, _ = tf2onnx.convert.from_keras(m, input_signature=(tf.TensorSpec((None, 6, 6, 2), tf.float32, name="x"),), opset=13)
    assert "BatchNormalization" in [n.op_type for n in proto.graph.node]
    (tmp_path / "m.onnx").write_bytes(proto.SerializeToString())
    gk = bondflow.load_model(tmp_path / "m.h5", default_precision="fixed<16,6>")
    go = bondflow.load_model(tmp_path / "m.onnx", default_precision="fixed<16,6>")
    bk, bo = gk.ops[2], go.ops[2]
    assert bk.kind == bo.kind == "conv" and bk.groups == bo.groups == 4 and np.array_equal(bk.weight, bo.weight)
    x = np.random.default_rng(2).standard_normal((1000, gk.input.size))
    assert np.array_equal(bondflow.reference.run(gk, x), bondflow.reference.run(go, x))
    f = measure(go)
    assert f.agreement >= 0.95 and not f.poor, f.summary()

"""Keras models as the field ships them: JSON + weights pairs, Keras 3 .keras, binary/ternary/po2 QKeras weights, legacy configs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import ConfigError, ModelLoadError, UnsupportedOpError
from bondflow.frontend.onnx_export import export_onnx

INPUT = "fixed<10,4,RND_CONV,SAT>"


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


def _qkeras_predict(model, g, x: np.ndarray) -> np.ndarray:
    xq = g.input.type.to_float(g.input.type.quantize(x))  # the hardware sees quantized inputs
    return model.predict(xq, verbose=0, batch_size=4096)


@pytest.fixture(scope="module")
def qmodel(tfk):
    """A QKeras MLP whose layers use binary, ternary, power-of-two and symmetric weight quantizers."""
    from qkeras import QActivation, QDense, binary, quantized_bits, quantized_po2, quantized_relu, ternary
    rng = np.random.default_rng(11)
    m = tfk.Sequential([
        tfk.layers.InputLayer(input_shape=(10,)),
        QDense(12, kernel_quantizer=binary(alpha=1), bias_quantizer=quantized_bits(8, 3), name="bin"),
        QActivation(quantized_relu(8, 3), name="r1"),
        QDense(8, kernel_quantizer=ternary(alpha=1), bias_quantizer=quantized_bits(8, 3), name="ter"),
        QActivation(quantized_relu(8, 3), name="r2"),
        QDense(4, kernel_quantizer=quantized_po2(4, 1), bias_quantizer=quantized_bits(8, 3), name="po2"),
        # symmetric quantizers (the hls4ml zoo's qkeras_mnist_dense uses them): ap_fixed's SAT_SYM
        QActivation(quantized_bits(4, 1, symmetric=1), name="symact"),
        QDense(3, kernel_quantizer=quantized_bits(4, 0, symmetric=1, alpha=1), bias_quantizer=quantized_bits(8, 3), name="sym"),
    ], name="bitnet")
    for layer in m.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.6, w.shape) for w in layer.get_weights()])
    return m


def test_binary_ternary_po2_weights_equal_qkeras(qmodel, tmp_path) -> None:
    qmodel.save(tmp_path / "bitnet.h5")
    g = bondflow.load_model(tmp_path / "bitnet.h5", input_precision=INPUT)
    w = {o.name: o for o in g.dense_layers()}
    assert set(np.unique(w["bin"].weight_type.to_float(w["bin"].weight))) == {-1.0, 1.0}
    assert set(np.unique(w["ter"].weight_type.to_float(w["ter"].weight))) <= {-1.0, 0.0, 1.0}
    assert str(w["bin"].weight_type) == "fixed<2,2,RND_CONV,SAT>"
    po2 = np.abs(w["po2"].weight_type.to_float(w["po2"].weight))
    assert np.all(np.log2(po2[po2 > 0]) == np.round(np.log2(po2[po2 > 0])))
    assert str(w["sym"].weight_type) == "fixed<4,1,RND_CONV,SAT_SYM>" and w["sym"].weight.min() >= -7
    assert str(g.types()["symact"]) == "fixed<4,2,RND_CONV,SAT_SYM>"
    x = np.random.default_rng(0).uniform(-8, 8, (3000, 10))
    assert np.array_equal(bondflow.reference.run(g, x), _qkeras_predict(qmodel, g, x))
    export_onnx(g, tmp_path / "bitnet.onnx")  # round trip through QONNX keeps every number and type
    assert bondflow.load_model(tmp_path / "bitnet.onnx").digest() == g.digest()


def test_binary_ternary_po2_in_rtl(qmodel, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    from bondflow.sim.runner import simulate
    qmodel.save(tmp_path / "bitnet.h5")
    g = bondflow.load_model(tmp_path / "bitnet.h5", input_precision=INPUT)
    d = bondflow.generate(g, "dataflow").write(tmp_path / "df")
    r = simulate(d, 1000, simulator="icarus", check=True)
    assert r.passed and r.vectors == 1000


@pytest.fixture(scope="module")
def pair(tfk, tmp_path_factory) -> tuple[Path, object]:
    """QKeras model saved the hls4ml-example way: architecture JSON + weights h5, plus a pruned weights variant."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    rng = np.random.default_rng(3)
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(6,)),
                        QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1), name="fc1"),
                        QActivation(quantized_relu(6, 2), name="relu1"),
                        QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1), name="fc2")],
                       name="pairnet")
    for layer in m.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.4, w.shape) for w in layer.get_weights()])
    d = tmp_path_factory.mktemp("pair")
    (d / "model.json").write_text(m.to_json())
    m.save_weights(d / "model_weights.h5")
    ws = m.get_weights()
    m.set_weights([np.where(np.abs(w) < 0.3, 0, w) for w in ws])  # a pruned variant of the same architecture
    m.save_weights(d / "pruned.h5")
    m.set_weights(ws)
    return d, m


def test_json_and_weights_pair(pair, tmp_path) -> None:
    d, m = pair
    g = bondflow.load_model(d / "model.json", input_precision=INPUT)
    assert g.meta["source_weights"].endswith("model_weights.h5")
    x = np.random.default_rng(1).uniform(-4, 4, (2000, 6))
    assert np.array_equal(bondflow.reference.run(g, x), _qkeras_predict(m, g, x))
    gp = bondflow.load_model(d / "model.json", input_precision=INPUT, weights=d / "pruned.h5")
    assert gp.digest() != g.digest() and sum(o.nonzero() for o in gp.dense_layers()) < sum(o.nonzero() for o in g.dense_layers())
    export_onnx(g, tmp_path / "p.onnx")
    assert bondflow.load_model(tmp_path / "p.onnx").digest() == g.digest()
    from bondflow.fidelity import measure
    f = measure(g)  # the source (JSON + its weights) runs in Keras
    assert f.reference.startswith("Keras predict") and f.agreement >= 0.95


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", *args], capture_output=True, text=True)


def test_pair_bad_input_is_one_line(pair, tmp_path) -> None:
    d, _ = pair
    lone = tmp_path / "lone" / "model.json"
    lone.parent.mkdir()
    lone.write_text((d / "model.json").read_text())
    with pytest.raises(ModelLoadError, match="weights file must sit next to it"):
        bondflow.load_model(lone)
    # Weights of another architecture: names/shapes do not match.
    other = json.loads((d / "model.json").read_text())
    other["config"]["layers"][3]["config"]["units"] = 5
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ModelLoadError, match="must match the architecture JSON"):
        bondflow.load_model(tmp_path / "other.json", weights=d / "model_weights.h5")
    (tmp_path / "notkeras.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(Exception, match="bondflow-graph"):
        bondflow.load_model(tmp_path / "notkeras.json")
    with pytest.raises(ConfigError, match="--weights applies"):
        bondflow.load_model(Path(__file__).resolve().parents[2] / "examples" / "iris" / "model.h5", weights=d / "pruned.h5")
    r = _cli("info", str(lone))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = _cli("info", str(d / "model.json"), "--weights", str(d / "pruned.h5"), "--input-precision", INPUT)
    assert r.returncode == 0 and "fc1" in r.stdout


def test_every_unsupported_layer_in_one_message(tmp_path) -> None:
    """Legacy list-form Sequential configs are checked up front too; every unsupported layer is named at once."""
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 6, 1], "name": "in"}},
              {"class_name": "LSTM", "config": {"name": "l1", "units": 4}},
              {"class_name": "LSTM", "config": {"name": "l2", "units": 4}},
              {"class_name": "Conv1DTranspose", "config": {"name": "c1", "filters": 2, "kernel_size": 2}},
              {"class_name": "Dense", "config": {"name": "fc", "units": 2}}]
    (tmp_path / "legacy.json").write_text(json.dumps({"class_name": "Sequential", "config": layers}))
    (tmp_path / "legacy_weights.h5").write_bytes(b"")
    with pytest.raises(UnsupportedOpError) as e:
        bondflow.load_model(tmp_path / "legacy.json")
    msg = str(e.value)
    assert "3 layers are not supported" in msg and "LSTM x2 ('l1', 'l2')" in msg and "Conv1DTranspose x1 ('c1')" in msg
    r = _cli("info", str(tmp_path / "legacy.json"))
    assert r.returncode == 3 and r.stderr.strip().splitlines() == [f"bondflow: error: {msg}"]


_MAKE_K3 = """
import sys, numpy as np, keras
keras.utils.set_random_seed(0)
L = keras.layers
m = keras.Sequential([keras.Input((16,)), L.Dense(32, activation="relu", name="fc1"), L.Dense(16, name="fc2"),
                      L.BatchNormalization(name="bn"), L.Activation("relu"), L.Dropout(0.1), L.Dense(4, name="out"),
                      L.Softmax()], name="k3mlp")
x = np.random.default_rng(0).standard_normal((3000, 16)); y = (np.tanh(x) @ np.random.default_rng(1).standard_normal((16, 4))).argmax(1)
m.compile("adam", "sparse_categorical_crossentropy"); m.fit(x, y, epochs=4, verbose=0)
m.save(sys.argv[1])
np.save(sys.argv[2], m.predict(x[:1000], verbose=0))
"""


def test_keras3_file_without_keras3(tmp_path) -> None:
    """A .keras written by Keras 3 (in its own process) imports through tf_keras; Keras 3 itself is the fidelity reference."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    r = subprocess.run([sys.executable, "-c", _MAKE_K3, str(tmp_path / "m.keras"), str(tmp_path / "y.npy")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-500:]
    from bondflow.frontend.keras_files import read_model
    rebuilt = read_model(tmp_path / "m.keras")  # the rebuild computes what Keras 3 computed
    x = np.random.default_rng(0).standard_normal((3000, 16))[:1000]
    assert np.allclose(rebuilt.predict(x, verbose=0), np.load(tmp_path / "y.npy"), atol=1e-5)
    g = bondflow.load_model(tmp_path / "m.keras", default_precision="fixed<16,6>")
    assert [o.kind for o in g.ops] == ["dense", "activation", "dense", "activation", "dense", "softmax"]  # BN folded
    from bondflow.fidelity import measure
    f = measure(g)
    assert f.reference.startswith("Keras 3.") and f.agreement >= 0.95 and not f.poor
    export_onnx(g, tmp_path / "m.onnx")
    assert bondflow.load_model(tmp_path / "m.onnx").digest() == g.digest()
    # A Keras 3 file with a layer kind bondflow does not know: one line naming it.
    bad = tmp_path / "bad.keras"
    r = subprocess.run([sys.executable, "-c", "import sys, keras; keras.Sequential([keras.Input((8, 2)), keras.layers.LSTM(3, name='rnn'),"
                        " keras.layers.Dense(2)]).save(sys.argv[1])", str(bad)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-300:]
    with pytest.raises(UnsupportedOpError, match="'rnn' of type 'LSTM'"):
        bondflow.load_model(bad)


_MAKE_K3_FUNCTIONAL = """
import sys, numpy as np, keras
keras.utils.set_random_seed(0)
L = keras.layers
x = keras.Input((16,), name="x")
h1 = L.Dense(32, activation="relu", name="fc1")(x)
h2 = L.Dense(32, name="fc2")(h1)
res = L.Activation("relu", name="r2")(L.Add(name="skip")([h1, h2]))
out = L.Dense(4, name="out")(L.Concatenate(name="cat")([res, x]))
m = keras.Model(x, out, name="k3res")
xs = np.random.default_rng(0).standard_normal((1000, 16))
m.save(sys.argv[1])
np.save(sys.argv[2], m.predict(xs, verbose=0))
shared = L.Dense(16, name="shared")
inp = keras.Input((16,), name="z")
keras.Model(inp, shared(shared(inp)), name="twice").save(sys.argv[3])
"""


def test_keras3_functional_file_with_branches(tmp_path) -> None:
    """A Keras 3 functional model (Add skip, Concatenate with the input) rebuilt from its config: equal to Keras 3's
    own predict, imported with its merges; a layer called twice (shared) is refused in one line."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    r = subprocess.run([sys.executable, "-c", _MAKE_K3_FUNCTIONAL, str(tmp_path / "m.keras"), str(tmp_path / "y.npy"),
                        str(tmp_path / "shared.keras")], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-500:]
    from bondflow.frontend.keras_files import read_model
    rebuilt = read_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).standard_normal((1000, 16))
    assert np.allclose(rebuilt.predict(x, verbose=0), np.load(tmp_path / "y.npy"), atol=1e-5)
    g = bondflow.load_model(tmp_path / "m.keras", default_precision="fixed<16,6>")
    merges = {o.name: (o.function, o.inputs) for o in g.ops if o.kind == "merge"}
    assert merges["skip"][0] == "add" and merges["cat"] == ("concatenate", ("r2", g.input.name))
    from bondflow.fidelity import measure
    f = measure(g)
    assert f.reference.startswith("Keras 3.") and f.agreement >= 0.95 and not f.poor
    with pytest.raises(UnsupportedOpError, match="'shared' of type 'Dense called 2 times"):
        bondflow.load_model(tmp_path / "shared.keras", default_precision="fixed<16,6>")


def _q(cls: str, **cfg) -> dict:
    """A QKeras quantizer as QKeras for Keras 3 serializes it in config.json."""
    return {"module": "qkeras.quantizers", "class_name": cls, "config": cfg, "registered_name": f"qkeras>{cls}"}


def _write_qkeras3(path: Path, weights: dict[str, list[np.ndarray]], extra_setting: dict | None = None) -> None:
    """A .keras archive laid out as QKeras-for-Keras-3 writes one (the hls4ml zoo's qkeras-v3 file): config.json
    naming qkeras.qlayers classes with serialized quantizers, model.weights.h5 keyed by snake-case class names."""
    import zipfile

    import h5py
    kq = _q("quantized_bits", bits=6, integer=0, symmetric=0, alpha=1, keep_negative=True, post_training_scale=None,
            **(extra_setting or {}))
    bq = _q("quantized_bits", bits=8, integer=2, symmetric=0, alpha=1, keep_negative=True)
    act = _q("quantized_relu", bits=6, integer=1, use_sigmoid=0, negative_slope=0.0)

    def layer(cls: str, module: str = "qkeras.qlayers", **cfg) -> dict:
        return {"module": module, "class_name": cls, "config": cfg, "registered_name": None}
    layers = [layer("InputLayer", "keras.layers", name="x", batch_shape=[None, 8, 2], dtype="float32"),
              layer("QConv1D", name="conv", filters=3, kernel_size=[3], strides=[1], padding="valid", use_bias=True,
                    activation="linear", kernel_quantizer=kq, bias_quantizer=bq),
              layer("QActivation", name="r1", activation=act),
              layer("Flatten", "keras.layers", name="flat"),
              layer("QDense", name="fc", units=4, use_bias=True, activation="linear", kernel_quantizer=kq, bias_quantizer=bq)]
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "qk3", "layers": layers}}
    tmp = path.with_suffix(".weights.h5")
    with h5py.File(tmp, "w") as f:
        for key, vals in weights.items():
            grp = f.create_group(f"layers/{key}/vars")
            for i, v in enumerate(vals):
                grp[str(i)] = v
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.14.1"}))
        z.writestr("config.json", json.dumps(cfg))
        z.write(tmp, "model.weights.h5")
    tmp.unlink()


def test_qkeras_for_keras3_file(tfk, tmp_path) -> None:
    """A .keras from QKeras for Keras 3 (QConv1D, QActivation, QDense) reads without Keras 3's QKeras: golden ==
    QKeras's own predict (on tf_keras) on 2000 inputs, and the fidelity record says which QKeras ran it."""
    from qkeras import QActivation, QConv1D, QDense, quantized_bits, quantized_relu
    rng = np.random.default_rng(5)
    w = {"q_conv1d": [rng.normal(0, 0.5, (3, 2, 3)), rng.normal(0, 0.5, (3,))],
         "q_dense": [rng.normal(0, 0.5, (18, 4)), rng.normal(0, 0.5, (4,))]}
    _write_qkeras3(tmp_path / "qk3.keras", w)
    g = bondflow.load_model(tmp_path / "qk3.keras", input_precision=INPUT)
    assert [o.kind for o in g.ops] == ["conv", "activation", "flatten", "dense"]
    ref = tfk.Sequential([tfk.layers.InputLayer(input_shape=(8, 2)),
                          QConv1D(3, 3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 2, alpha=1)),
                          QActivation(quantized_relu(6, 1)), tfk.layers.Flatten(),
                          QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 2, alpha=1))])
    ref.layers[0].set_weights(w["q_conv1d"])
    ref.layers[3].set_weights(w["q_dense"])
    x = np.random.default_rng(1).standard_normal((2000, 16)) * 2
    logits = bondflow.reference.run(g, x)  # the exact accumulators of the last QDense
    yr = _qkeras_predict(ref, g, x.reshape(2000, 8, 2))
    assert np.array_equal(logits, yr) and len(np.unique(logits.argmax(1))) > 1
    from bondflow.fidelity import measure
    f = measure(g)
    assert f.reference.startswith("QKeras predict on tf_keras") and f.agreement >= 0.95 and not f.poor
    # A setting this QKeras does not have, set to a value: one line naming it (never a KeyError traceback).
    _write_qkeras3(tmp_path / "new.keras", w, {"qnoise_extra": 2})
    with pytest.raises(ModelLoadError, match="qnoise_extra=2 must be one this QKeras"):
        bondflow.load_model(tmp_path / "new.keras", input_precision=INPUT)

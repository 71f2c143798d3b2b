"""Keras file formats (.h5, .keras, SavedModel), BatchNormalization folding and layers refused before loading."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError, UnsupportedOpError

DEFAULT = "fixed<16,6,RND_CONV,SAT>"
INPUT = "fixed<12,4,RND_CONV,SAT>"


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


@pytest.fixture(scope="module")
def bn_model(tfk, tmp_path_factory):
    """Float Dense + BatchNormalization (non-trivial statistics) + ReLU + Dropout + Dense, saved three ways."""
    rng = np.random.default_rng(7)
    L = tfk.layers
    m = tfk.Sequential([L.InputLayer(input_shape=(6,)), L.Dense(8, name="fc1"), L.BatchNormalization(name="bn1"),
                        L.Activation("relu", name="relu1"), L.Dropout(0.2), L.Dense(3, name="fc2")], name="bnnet")
    fc1, bn = m.get_layer("fc1"), m.get_layer("bn1")
    fc1.set_weights([rng.normal(0, 0.4, (6, 8)), rng.normal(0, 0.2, 8)])
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.3, 8), rng.normal(0, 0.5, 8), rng.uniform(0.3, 2.0, 8)])
    d = tmp_path_factory.mktemp("bn")
    m.save(d / "m.h5")
    m.save(d / "m.keras")
    m.save(d / "saved", save_format="tf")
    return m, d


def test_all_formats_give_one_graph(bn_model) -> None:
    _, d = bn_model
    graphs = [bondflow.load_model(p, default_precision=DEFAULT, input_precision=INPUT)
              for p in (d / "m.h5", d / "m.keras", d / "saved")]
    assert len({g.digest() for g in graphs}) == 1
    assert [o.kind for o in graphs[0].ops] == ["dense", "activation", "dense"]  # BN folded, Dropout gone


def test_batchnorm_folded_within_quantization_error(bn_model) -> None:
    m, d = bn_model
    g = bondflow.load_model(d / "m.h5", default_precision=DEFAULT, input_precision=INPUT)
    x = np.random.default_rng(3).uniform(-6, 6, (2000, 6))
    xq = g.input.type.to_float(g.input.type.quantize(x))
    want = m.predict(xq, verbose=0, batch_size=4096).astype(np.float64)
    got = bondflow.reference.run(g, xq)
    fc2 = g.ops[2]
    w2 = np.abs(fc2.weight_type.to_float(fc2.weight))
    # Folded fc1 weights/biases round to the 2^-10 grid (error <= 2^-11 each), ReLU output rounds (2^-11), and fc2's
    # weights/biases round too (2^-11 each); fc2's result, which no activation requantizes, rounds to the default (2^-11).
    h = np.maximum(xq @ (m.get_layer("fc1").get_weights()[0]), 0)  # only a scale for sum|h| below
    e_hidden = 2.0 ** -11 * (np.abs(xq).sum(1, keepdims=True) + 1) + 2.0 ** -11
    bound = e_hidden * w2.sum(0) + 2.0 ** -11 * (np.abs(h).sum(1, keepdims=True) * 4 + 8 + 1) + 2.0 ** -11 + 1e-5
    err = np.abs(got - want)
    assert np.all(err <= bound), f"max error {err.max()} beyond the bound the types imply"
    assert err.max() < 0.05  # and the bound itself is tight enough to mean something


def test_result_types(bn_model) -> None:
    """Activations set the type after a Dense (whose result is the exact accumulator); the last Dense, which no
    activation requantizes, takes the default precision, as hls4ml's Dense result does."""
    _, d = bn_model
    fc1, relu, fc2 = bondflow.load_model(d / "m.h5", default_precision=DEFAULT, input_precision=INPUT).ops
    assert fc1.result_type == fc1.accum_type and str(fc1.accum_type) == "fixed<32,14>"  # 12+16+ceil(log2 6)+1 bits
    assert str(relu.result_type) == DEFAULT and str(fc2.result_type) == DEFAULT


def test_quantized_model_keeps_exact_output_without_default() -> None:
    iris = Path(__file__).resolve().parents[2] / "examples" / "iris" / "model.h5"
    last = bondflow.load_model(iris).ops[-1]
    assert last.kind == "dense" and last.result_type == last.accum_type
    assert str(bondflow.load_model(iris, default_precision="fixed<18,8>").ops[-1].result_type) == "fixed<18,8>"


def test_folded_weights_that_overflow_are_refused(tfk, tmp_path) -> None:
    L = tfk.layers
    m = tfk.Sequential([L.InputLayer(input_shape=(2,)), L.Dense(2, name="fc"), L.BatchNormalization(name="bn")])
    m.get_layer("fc").set_weights([np.full((2, 2), 1.0), np.zeros(2)])
    m.get_layer("bn").set_weights([np.full(2, 100.0), np.zeros(2), np.zeros(2), np.ones(2)])
    m.save(tmp_path / "o.h5")
    with pytest.raises(QuantizationError, match="after folding bn.*must fit"):
        bondflow.load_model(tmp_path / "o.h5", default_precision="fixed<8,3>")


def _bn_weights(m, rng) -> None:
    for layer in m.layers:
        if layer.get_weights():
            if type(layer).__name__ == "BatchNormalization":  # gamma, beta, mean, variance: far from the identity
                n = layer.get_weights()[0].shape[0]
                layer.set_weights([rng.uniform(0.5, 2.0, n), rng.normal(0, 0.5, n), rng.normal(0, 0.5, n), rng.uniform(0.3, 2.0, n)])
            else:
                layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])


@pytest.mark.sim
def test_batchnorm_no_layer_absorbs_is_a_scale_and_shift(tfk, tmp_path, need_tool) -> None:
    """BatchNormalization on the input, after a Dense's own ReLU and after a conv's ReLU on an image: a per-channel
    scale and shift at the default precision (hls4ml's BatchNormalization layer), one product per value, following
    Keras; the MLP's dataflow design is bit-exact in RTL. A quantized model gives no default for it: one line."""
    need_tool("iverilog")
    from bondflow.fidelity import measure
    L = tfk.layers
    rng = np.random.default_rng(3)
    mlp = tfk.Sequential([L.InputLayer(input_shape=(6,)), L.BatchNormalization(name="bn0"), L.Dense(12, activation="relu", name="fc1"),
                          L.BatchNormalization(name="bn1"), L.Dense(4, name="fc2"), L.Activation("softmax")])
    cnn = tfk.Sequential([L.InputLayer(input_shape=(6, 6, 2)), L.Conv2D(4, 3, activation="relu", name="c1"),
                          L.BatchNormalization(name="bn2"), L.MaxPooling2D(2), L.Flatten(), L.Dense(3, name="fc")])
    for name, m in (("mlp", mlp), ("cnn", cnn)):
        _bn_weights(m, rng)
        m.save(tmp_path / f"{name}.h5")
        g = bondflow.load_model(tmp_path / f"{name}.h5", default_precision="fixed<16,6>")
        bns = [o for o in g.ops if o.name.startswith("bn")]
        assert [o.name for o in bns] == (["bn0", "bn1"] if name == "mlp" else ["bn2"])
        for o in bns:  # diagonal: one weight per channel
            assert o.nonzero() == o.weight.shape[-1] and str(o.result_type) == "fixed<16,6>"
        assert name == "mlp" or bns[0].groups == 4
        from bondflow.cli.cmd_info import graph_table
        rows = {line.split()[0]: line for line in graph_table(g).splitlines()}
        assert all("scale+shift" in rows[o.name] for o in bns)  # on an image too: a 1x1 conv of one group per channel
        for o in bns:  # one multiply and one add per value: params 2C, weights C/C, MACs C per position
            c = o.weight.shape[-1]
            macs = c * (int(np.prod(g.shapes()[o.name][:-1])) if name == "cnn" else 1)
            assert rows[o.name].split()[-4:] == [str(2 * c), f"{c}/{c}", "(100%)", str(macs)], rows[o.name]
        f = measure(g)
        assert f.agreement >= 0.95 and f.distinct_outputs > 100, f.summary()
    from bondflow.sim.runner import simulate
    g = bondflow.load_model(tmp_path / "mlp.h5", default_precision="fixed<16,6>")
    r = simulate(bondflow.generate(g, "dataflow").write(tmp_path / "d"), 300, simulator="icarus", seed=2)
    assert r.passed, r.summary()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    q = tfk.Sequential([L.InputLayer(input_shape=(4,)), QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1),
                                                              bias_quantizer=quantized_bits(6, 0, alpha=1), name="qd"),
                        QActivation(quantized_relu(6, 2), name="qr"), L.BatchNormalization(name="bnq"), L.Dense(2)])
    _bn_weights(q, rng)
    q.save(tmp_path / "q.h5")
    with pytest.raises(QuantizationError, match="layer 'bnq' has float weights: a default precision must be given"):
        bondflow.load_model(tmp_path / "q.h5", input_precision=INPUT)


@pytest.mark.parametrize("fmt", ["m.keras", "saved"])
def test_lambda_refused_in_every_format(tfk, tmp_path, fmt: str) -> None:
    L = tfk.layers
    m = tfk.Sequential([L.InputLayer(input_shape=(4,)), L.Lambda(lambda x: x * 2, name="lam"), L.Dense(2)])
    if fmt == "saved":
        m.save(tmp_path / fmt, save_format="tf")
    else:
        m.save(tmp_path / fmt)
    with pytest.raises(UnsupportedOpError, match="'lam'.*execute code"):
        bondflow.load_model(tmp_path / fmt, default_precision=DEFAULT)


def test_lstm_refused(tfk, tmp_path) -> None:
    L = tfk.layers
    m = tfk.Sequential([L.InputLayer(input_shape=(5, 3)), L.LSTM(4, name="rnn"), L.Dense(2)])
    m.save(tmp_path / "r.h5")
    with pytest.raises(UnsupportedOpError, match="layer 'rnn' of type 'LSTM'.*supported: .*QDense"):
        bondflow.load_model(tmp_path / "r.h5", default_precision=DEFAULT)


def test_custom_layer_class_refused_without_loading(tmp_path) -> None:
    """A layer class bondflow does not know is refused from the config alone (its code is never imported)."""
    import h5py
    src = Path(__file__).resolve().parents[2] / "examples" / "iris" / "model.h5"
    p = tmp_path / "c.h5"
    p.write_bytes(src.read_bytes())
    with h5py.File(p, "r+") as f:
        cfg = f.attrs["model_config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        f.attrs["model_config"] = cfg.replace('"class_name": "QActivation"', '"class_name": "MyEvilLayer"', 1)
    with pytest.raises(UnsupportedOpError, match="of type 'MyEvilLayer'"):
        bondflow.load_model(p)


def test_qbatchnormalization_uses_its_quantized_statistics(tfk, tmp_path) -> None:
    """QKeras QBatchNormalization (its default po2 quantizers on gamma, beta, mean and variance): bondflow's
    per-channel scale and shift equals the layer's own output; after a QDense (its exact sums) and after a
    QActivation it is a scale and shift at the default precision; the model follows QKeras predict."""
    from qkeras import QActivation, QBatchNormalization, QDense, quantized_bits, quantized_relu
    from bondflow.fidelity import measure
    from bondflow.frontend.qkeras import _bn_affine
    L = tfk.layers
    q = dict(kernel_quantizer=quantized_bits(8, 2, alpha=1), bias_quantizer=quantized_bits(8, 2, alpha=1))
    m = tfk.Sequential([L.InputLayer(input_shape=(6,)), QDense(12, name="qd1", **q), QBatchNormalization(name="qbn1"),
                        QActivation(quantized_relu(8, 3), name="qr1"), QBatchNormalization(name="qbn2"),
                        QDense(4, name="qd2", **q)])
    _bn_weights(m, np.random.default_rng(8))
    x = np.random.default_rng(1).normal(0, 1, (64, 12)).astype(np.float32)
    for name in ("qbn1", "qbn2"):
        bn = m.get_layer(name)
        s, t = _bn_affine(bn, 12, 1)
        assert np.allclose(bn(x, training=False).numpy(), x * s + t, atol=1e-5)
        plain = np.asarray(bn.get_weights())
        assert not np.allclose(s, plain[0] / np.sqrt(plain[3] + bn.get_config()["epsilon"]))  # the quantizers matter
    m.save(tmp_path / "qbn.h5")
    g = bondflow.load_model(tmp_path / "qbn.h5", input_precision=INPUT, default_precision="fixed<22,12>")  # room for s*x
    # both normalise exact values (QDense's sums, the activation's output) as QKeras does, neither folds onto a grid
    assert {"qbn1", "qbn2"} <= {o.name for o in g.ops} and g.op("qbn1").input == "qd1"
    f = measure(g)
    assert f.agreement >= 0.95 and f.distinct_outputs > 100, f.summary()

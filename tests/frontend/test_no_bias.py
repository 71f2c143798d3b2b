"""QKeras layers without a bias (use_bias=False) import without a default precision and equal QKeras predict."""
from __future__ import annotations

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError
from bondflow.ir import reference


def _model(tmp_path, bn: bool):
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    q = quantized_bits(6, 0, alpha=1)
    layers = [tfk.layers.InputLayer(input_shape=(6, 6, 2)), QConv2D(3, 3, kernel_quantizer=q, use_bias=False, name="conv")]
    layers += [tfk.layers.BatchNormalization(name="bn")] if bn else []
    layers += [QActivation(quantized_relu(8, 3), name="r1"), tfk.layers.Flatten(name="flat"),
               QDense(8, kernel_quantizer=q, use_bias=False, name="fc1"), QActivation(quantized_relu(8, 3), name="r2"),
               QDense(3, kernel_quantizer=q, bias_quantizer=q, name="out")]
    m = tfk.Sequential(layers, name="nobias")
    rng = np.random.default_rng(3)
    for layer in m.layers:
        if layer.get_weights() and not bn:
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    p = tmp_path / "nobias.h5"
    m.save(p)
    return p, m


def test_no_bias_layers_need_no_default_precision(tmp_path) -> None:
    p, m = _model(tmp_path, bn=False)
    g = bondflow.load_model(p, input_precision="fixed<10,4,RND_CONV,SAT>")
    for name in ("conv", "fc1"):
        op = g.op(name)
        assert not op.bias.any() and op.bias_type == op.weight_type  # zeros in the weights' type: no made-up precision
    x = np.random.default_rng(0).normal(0, 2, (1000, 6 * 6 * 2))
    xq = g.input.type.to_float(g.input.type.quantize(x))
    want = m.predict(xq.reshape(-1, 6, 6, 2), verbose=0, batch_size=1000)
    got = reference.run(g, xq)
    assert np.array_equal(got, want) and len(np.unique(got, axis=0)) > 100


def test_no_bias_then_batchnorm_still_asks_for_a_bias_precision(tmp_path) -> None:
    p, _ = _model(tmp_path, bn=True)  # the folded BatchNormalization brings a real (float) bias
    with pytest.raises(QuantizationError, match="float bias: a default precision must be given") as e:
        bondflow.load_model(p)
    assert "\n" not in str(e.value)

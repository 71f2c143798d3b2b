"""Binary and ternary activations (QKeras binary/ternary/1-bit quantized_bits, QONNX 1-3-bit Quant) as exact ops: golden == framework, RTL, round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference

INPUT = "fixed<10,4,RND_CONV,SAT>"


@pytest.fixture(scope="module")
def signnet(tmp_path_factory) -> tuple[Path, object]:
    """QKeras MLP with every sign activation kind: binary(use_01) by string, binary(), ternary(threshold), 1-bit quantized_bits, ternary()."""
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    from qkeras import QActivation, QDense, binary, quantized_bits, ternary

    def dense(n: int, name: str, kq=None, **kw) -> QDense:
        return QDense(n, kernel_quantizer=kq or quantized_bits(4, 1, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1), name=name, **kw)
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(8,)),
                        dense(16, "fc1"), QActivation("binary(use_01=True)", name="bin01"),
                        dense(16, "fc2"), QActivation(binary(), name="bin"),
                        dense(12, "fc3", binary(alpha=1)), QActivation(ternary(threshold=0.5), name="ter"),
                        dense(10, "fc4", ternary(alpha=1), activation=quantized_bits(1, 0, alpha=1)),
                        dense(6, "fc5"), QActivation(ternary(), name="ter2"),
                        dense(3, "out")], name="signnet")
    rng = np.random.default_rng(5)
    for layer in m.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.7, w.shape) for w in layer.get_weights()])
    p = tmp_path_factory.mktemp("sign") / "signnet.h5"
    m.save(p)
    return p, m


def test_qkeras_sign_activations_equal_predict(signnet) -> None:
    p, m = signnet
    g = bondflow.load_model(p, input_precision=INPUT)
    th = {o.name: o for o in g.ops if o.kind == "threshold"}
    assert list(th) == ["bin01", "bin", "ter", "fc4_act", "ter2"]
    assert str(th["bin01"].result_type) == "ufixed<1,1,RND_CONV,SAT>" and str(th["bin"].result_type) == "fixed<2,2,RND_CONV,SAT>"
    x = np.random.default_rng(0).uniform(-6, 6, (3000, 8))
    x[:300] = np.round(x[:300] * 2) / 2  # coarse inputs: sums land exactly on 0 and on the ternary thresholds
    xq = g.input.type.to_float(g.input.type.quantize(x))
    want = m.predict(xq, verbose=0, batch_size=4096)
    assert np.array_equal(reference.run(g, xq), want) and len(np.unique(want, axis=0)) > 50
    tr = reference.trace_raw(g, g.input.type.quantize(xq))
    for name, op in th.items():  # every level is reached, and inputs exactly on a threshold are among the samples
        assert len(np.unique(tr[name])) == op.thresholds.shape[1] + 1, name
        if name != "fc4_act":  # its sums (ternary weights, biases off the integers) never land on 0
            assert (tr[op.input][:, :, None] == op.thresholds[None]).sum() > 3, name
    again = p.with_suffix(".onnx")
    export_onnx(g, again)
    assert bondflow.load_model(again).digest() == g.digest()


@pytest.mark.sim
def test_qkeras_sign_activations_rtl(signnet, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(signnet[0], input_precision=INPUT), "dataflow")
    r = bondflow.simulate(d.write(tmp_path / "d"), 300, simulator="icarus", seed=2)
    assert r.passed and r.vectors == 300, r.error


def test_qkeras_auto_alpha_activation_is_one_line(tmp_path) -> None:
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    from qkeras import QActivation, QDense, binary, quantized_bits
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(3,)), QDense(2, kernel_quantizer=quantized_bits(4, 1, alpha=1), use_bias=False, name="fc"),
                        QActivation(binary(alpha="auto"), name="act")])
    m.save(tmp_path / "a.h5")
    with pytest.raises(QuantizationError, match=r"layer 'act': binary activation alpha must be one number or None, not 'auto'") as e:
        bondflow.load_model(tmp_path / "a.h5", default_precision="fixed<8,3>")
    assert "\n" not in str(e.value)


def qonnx_low_bit(path: Path) -> Path:
    """QONNX activations of 1-3 bits: unsigned 1-bit {0, 1}, signed 3-bit FLOOR, BipolarQuant +-2, ternary (2-bit narrow) x 0.5."""
    from test_qonnx_field import QONNX, Net
    n = Net(QONNX, seed=4)
    h = n.op("MatMul", [n.quant("x", 8, 4), n.quant(n.weights(6, 12), 3, 1)])
    h = n.op("MatMul", [n.quant(h, 1, 0, signed=0), n.quant(n.weights(12, 10), 3, 1)])
    h = n.op("MatMul", [n.quant(h, 3, 1, rounding="FLOOR"), n.quant(n.weights(10, 8), 3, 1)])
    h = n.op("MatMul", [n.bipolar(h, 2.0), n.quant(n.weights(8, 4), 3, 1)])
    return n.save(path, 6, n.quant(h, 2, 1, narrow=1), 4, domains=(QONNX,))


@pytest.fixture(scope="module")
def low_bit(tmp_path_factory) -> Path:
    pytest.importorskip("qonnx")
    return qonnx_low_bit(tmp_path_factory.mktemp("lowbit") / "low_bit.onnx")


def test_qonnx_low_bit_activations_equal_qonnx(low_bit) -> None:
    from test_qonnx_field import inputs, qonnx_exec
    g = bondflow.load_model(low_bit)
    assert [str(o.result_type) for o in g.ops] == ["ufixed<1,1,RND_CONV,SAT>", "fixed<3,2,TRN,SAT>", "fixed<1,1,TRN,SAT>",
                                                   "fixed<2,1,RND_CONV,SAT_SYM>"]
    x = inputs(g, 2000)
    want = qonnx_exec(low_bit, x)
    assert np.array_equal(reference.run(g, x), want) and len(np.unique(want, axis=0)) > 10
    again = low_bit.with_suffix(".again.onnx")
    export_onnx(g, again)
    assert bondflow.load_model(again).digest() == g.digest() and np.array_equal(qonnx_exec(again, x), want)


@pytest.mark.sim
def test_qonnx_low_bit_rtl(low_bit, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(low_bit), "dataflow")
    r = bondflow.simulate(d.write(tmp_path / "d"), 300, simulator="icarus", seed=4)
    assert r.passed and r.vectors == 300, r.error

"""QONNX Quant with a non-power-of-two scale or a zero-point: exact Threshold ops and weights, golden == qonnx, RTL, round trip, refusals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference

pytest.importorskip("qonnx")
from onnx import helper  # noqa: E402
from test_qonnx_field import BREVITAS, Net, inputs, qonnx_exec  # noqa: E402


def quant_scaled(n: Net, src: str, bits: int, scale: float, signed: int = 1, zeropt: float = 0.0, rounding: str = "ROUND") -> str:
    out = f"q{len(n.nodes)}"
    ins = [src, n.const(scale), n.const(zeropt), n.const(float(bits))]
    n.nodes.append(helper.make_node("Quant", ins, [out], name=f"Quant_{out}", domain=n.domain, signed=signed, narrow=0, rounding_mode=rounding))
    return out


def scaled(path: Path) -> Path:
    """Brevitas-style scales: 3-bit weights x 0.8125, QuantReLU 3-bit x 0.75, a 4-bit x 0.625 with zero-point 1 (HALF_UP),
    and a BipolarQuant x 0.8298 output (+-s is exact in float32 whatever s)."""
    n = Net(BREVITAS, seed=6)
    h = n.op("MatMul", [n.quant("x", 8, 4), quant_scaled(n, n.weights(6, 12), 3, 0.8125)])
    h = n.op("Add", [h, n.quant(n.const(n.rng.normal(0, 1, 12)), 6, 3)])
    h = quant_scaled(n, n.op("Relu", [h]), 3, 0.75, signed=0)
    h = n.op("MatMul", [h, n.quant(n.weights(12, 8), 3, 1)])
    h = n.op("MatMul", [quant_scaled(n, h, 4, 0.625, zeropt=1.0, rounding="HALF_UP"), n.quant(n.weights(8, 5), 3, 1)])
    return n.save(path, 6, n.bipolar(h, 0.8298), 5)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return scaled(tmp_path_factory.mktemp("scale") / "scaled.onnx")


def test_golden_model_equals_qonnx_executor(model) -> None:
    g = bondflow.load_model(model)
    assert [o.kind for o in g.ops] == ["dense", "threshold", "dense", "threshold", "dense", "threshold"]
    w = g.ops[0].weight_type.to_float(g.ops[0].weight)
    assert np.all(np.round(w / 0.8125) * 0.8125 == w)  # the weights are exactly k * 13/16
    relu_q, zp_q, out = g.ops[1], g.ops[3], g.ops[5]
    assert relu_q.result_type.to_float(relu_q.step) == 0.75 and zp_q.result_type.to_float(zp_q.offset) == -9 * 0.625
    assert out.result_type.to_float(out.offset) == -float(np.float32(0.8298))
    x = inputs(g, 2000, seed=3)
    want = qonnx_exec(model, x)
    assert np.array_equal(reference.run(g, x), want) and len(np.unique(want, axis=0)) > 20
    tr = reference.trace_raw(g, reference.quantize_input(g, x))
    for op in (relu_q, zp_q, out):  # every level is used, and sums exactly on a threshold are among the samples
        assert (tr[op.input][:, :, None] == op.thresholds[None]).sum() > 10, op.name
    assert len(np.unique(tr[zp_q.name])) == 16
    again = model.with_suffix(".again.onnx")
    export_onnx(g, again)
    assert bondflow.load_model(again).digest() == g.digest() and np.array_equal(qonnx_exec(again, x), want)


@pytest.mark.sim
def test_dataflow_rtl_is_bit_exact(model, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(model), "dataflow")
    r = bondflow.simulate(d.write(tmp_path / "d"), 300, simulator="icarus", seed=5)
    assert r.passed and r.vectors == 300, r.error


def test_inexact_scales_are_one_line(tmp_path) -> None:
    n = Net(BREVITAS, seed=6)  # 3 * 0.8298 needs 25 bits: qonnx's float32 rounds it, so the levels are no fixed-point grid
    h = quant_scaled(n, n.op("MatMul", [n.quant("x", 8, 4), n.quant(n.weights(6, 4), 3, 1)]), 3, 0.8298, signed=0)
    with pytest.raises(QuantizationError, match=r"^Quant 'Quant_2' levels \(k - zeropt\) \* scale must be exact in float32 .*"
                                                r"not scale 0\.82980001 .*3 \* scale = 2\.4894000\d+, which qonnx rounds to 2\.4893999\d+$") as e:
        bondflow.load_model(n.save(tmp_path / "a.onnx", 6, h, 4))
    assert "\n" not in str(e.value)
    n = Net(BREVITAS, seed=6)  # +-0.8298 weights are exact, but 8-bit inputs times them sum beyond float32's mantissa
    h = n.op("MatMul", [n.quant("x", 8, 4), n.bipolar(n.weights(6, 4), 0.8298)])
    with pytest.raises(QuantizationError, match=r"MatMul 'matmul_0' reads values of Quant 'BipolarQuant_0' .* not need fixed<36,9> \(36 bits\)"):
        bondflow.load_model(n.save(tmp_path / "b.onnx", 6, h, 4))


def test_larq_and_bnn_layers_are_one_line(tmp_path) -> None:
    """Larq's QuantDense and early BNN code's BinaryConv2D: named in one line that says what to use instead (that code's
    BinaryDense/TernaryDense are read: tests/frontend/test_bnn_keras.py)."""
    import json
    from bondflow.errors import UnsupportedOpError
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 6], "name": "in"}},
              {"class_name": "larq>QuantDense", "config": {"name": "qd", "units": 4, "kernel_quantizer": "ste_sign"}},
              {"class_name": "BinaryConv2D", "config": {"name": "bd", "filters": 4, "H": 1.0}}]
    (tmp_path / "bnn.json").write_text(json.dumps({"class_name": "Sequential", "config": {"name": "bnn", "layers": layers}}))
    (tmp_path / "bnn_weights.h5").write_bytes(b"")
    with pytest.raises(UnsupportedOpError, match=r"not read \(its BinaryDense/TernaryDense are\); write the model with QKeras QDense.*QuantDense x1 \('qd'\); BinaryConv2D x1 \('bd'\)") as e:
        bondflow.load_model(tmp_path / "bnn.json")
    assert "\n" not in str(e.value)

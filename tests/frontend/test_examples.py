"""Each bundled example imports; the golden model equals QKeras; JSON and ONNX round trips keep outputs identical."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir.graph import Graph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ["iris", "jet_tagger", "muon_pt"]


@pytest.fixture(scope="module", params=NAMES)
def example(request):
    path = EXAMPLES / request.param / "model.h5"
    return request.param, path, bondflow.load_model(path), np.load(EXAMPLES / request.param / "data.npz")


def inputs(g: Graph, data, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(42)
    t = g.input.type
    return np.concatenate([data["x_test"], rng.uniform(t.min_value - 1, t.max_value + 1, (n, g.input.size))])


def test_golden_equals_qkeras(example) -> None:
    """QKeras runs the same arithmetic in float32; at these widths every partial sum is exact, so outputs must be equal."""
    from bondflow._compat import import_tensorflow
    tf_keras = import_tensorflow()
    from qkeras.utils import _add_supported_quantized_objects
    co: dict = {}
    _add_supported_quantized_objects(co)
    _, path, g, data = example
    model = tf_keras.models.load_model(str(path), custom_objects=co, compile=False)
    x = inputs(g, data)
    xq = g.input.type.to_float(g.input.type.quantize(x))  # the hardware sees quantized inputs
    want = model.predict(xq, verbose=0, batch_size=4096)
    got = bondflow.reference.run(g, x)
    lsb = g.output.type.lsb
    assert np.abs(got - want).max() <= 0.5 * lsb, "golden model differs from QKeras by more than half an output LSB"
    assert np.array_equal(got, want)


def test_json_round_trip(example, tmp_path) -> None:
    _, _, g, data = example
    p = g.save(tmp_path / "g.json")
    g2 = bondflow.load_model(p)
    assert g2.digest() == g.digest()
    x = inputs(g, data)
    assert np.array_equal(bondflow.reference.run(g, x), bondflow.reference.run(g2, x))


def test_onnx_round_trip(example, tmp_path) -> None:
    _, _, g, data = example
    export_onnx(g, tmp_path / "g.onnx")
    g2 = bondflow.load_model(tmp_path / "g.onnx")
    assert g2.digest() == g.digest()
    x = inputs(g, data)
    assert np.array_equal(bondflow.reference.run(g, x), bondflow.reference.run(g2, x))


def test_onnx_export_is_valid_qonnx(example, tmp_path) -> None:
    """qonnx's own executor on our export agrees with the golden model (Quant semantics are standard)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    _, _, g, data = example
    export_onnx(g, tmp_path / "g.onnx")
    from qonnx.util.cleanup import cleanup_model
    m = cleanup_model(ModelWrapper(str(tmp_path / "g.onnx")))
    x = data["x_test"][:50].astype(np.float32)
    inp = m.graph.input[0].name
    got = np.concatenate([execute_onnx(m, {inp: x[i:i + 1]})[m.graph.output[0].name] for i in range(len(x))])
    want = bondflow.reference.run(g, x)
    # Quant cannot express WRAP accumulators; these examples never overflow, so values must agree to float32 precision.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_pruned_example_counts_zeros() -> None:
    g = bondflow.load_model(EXAMPLES / "muon_pt" / "model.h5")
    nz = sum(o.nonzero() for o in g.dense_layers())
    total = sum(o.weight.size for o in g.dense_layers())
    assert 0.3 < 1 - nz / total < 0.8
    assert [o.n_out for o in g.dense_layers()] == [35, 20, 25, 40, 20, 15, 1]

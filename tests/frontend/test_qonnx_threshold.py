"""FINN's MultiThreshold activations and datatype-annotated integer weights: an exact Threshold op, golden == qonnx, RTL, refusals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError, UnsupportedOpError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference
from bondflow.ir.graph import Graph
from bondflow.ir.ops import Threshold

pytest.importorskip("qonnx")
from onnx import helper  # noqa: E402
from test_qonnx_field import FINN, Net, qonnx_exec  # noqa: E402


def _threshold(n: Net, src: str, thresholds: np.ndarray, **attrs) -> str:
    out = f"mt{len(n.nodes)}"
    n.nodes.append(helper.make_node("MultiThreshold", [src, n.const(thresholds)], [out], name=f"MultiThreshold_{len(n.nodes)}",
                                    domain=FINN, **attrs))
    return out


def finn_streamlined(path: Path, out_scale: float = 0.5) -> Path:
    """FINN after streamlining: UINT8 pixels, integer weights (INT2, BIPOLAR annotations), MultiThreshold activations."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    n = Net(FINN, seed=11)
    w1 = n.const(n.rng.integers(-2, 2, (8, 6)))
    h = n.op("MatMul", ["x", w1])
    # Per-channel thresholds (3 per feature, some between integers) on the integer accumulator; levels -0.5..1.
    t1 = np.sort(n.rng.integers(-300, 300, (6, 3)) + n.rng.choice([0.0, 0.5], (6, 3)), axis=1)
    h = _threshold(n, h, t1, out_dtype="INT2", out_scale=out_scale, out_bias=-0.5)
    w2 = n.const(n.rng.choice([-1.0, 1.0], (6, 5)))
    h = _threshold(n, n.op("MatMul", [h, w2]), np.array([[0.0]]), out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
    w3 = n.const(n.rng.integers(-2, 2, (5, 3)))
    p = n.save(path, 8, n.op("MatMul", [h, w3]), 3)
    m = ModelWrapper(str(p))
    for name, dt in (("x", "UINT8"), (w1, "INT2"), (w2, "BIPOLAR"), (w3, "INT2")):
        m.set_tensor_datatype(name, DataType[dt])
    m.save(str(p))
    return p


@pytest.fixture(scope="module")
def finn(tmp_path_factory) -> Path:
    return finn_streamlined(tmp_path_factory.mktemp("finn") / "finn.onnx")


def test_golden_model_equals_qonnx_executor(finn) -> None:
    g = bondflow.load_model(finn)
    assert [o.kind for o in g.ops] == ["dense", "threshold", "dense", "threshold", "dense"]
    assert str(g.input.type) == "ufixed<8,8,RND_CONV,SAT>" and str(g.ops[0].weight_type) == "fixed<2,2>"
    assert str(g.ops[1].result_type) == "fixed<3,2>" and str(g.ops[3].result_type) == "fixed<2,2>"
    x = np.random.default_rng(0).integers(0, 256, (3000, 8)).astype(np.float64)
    want = qonnx_exec(finn, x)
    assert np.array_equal(reference.run(g, x), want) and len(np.unique(want, axis=0)) > 10
    tr = reference.trace_raw(g, reference.quantize_input(g, x))
    assert len(np.unique(tr[g.ops[1].name], axis=0)) > 100  # the per-channel thresholds spread the samples
    on = (tr[g.ops[0].name][:, :, None] == g.ops[1].thresholds[None]).sum()
    assert on > 10, on  # accumulators exactly on a threshold (x >= t, not x > t) are among them
    again = finn.with_suffix(".again.onnx")
    export_onnx(g, again)
    assert bondflow.load_model(again).digest() == g.digest() and np.array_equal(qonnx_exec(again, x), want)
    assert Graph.from_json(g.to_json()).digest() == g.digest()


def test_thresholds_are_met_exactly_at_their_values() -> None:
    """x >= t on the raw grid: a threshold between grid points and one on a grid point, both sides of each."""
    from bondflow.ir.graph import TensorSpec
    from bondflow.ir.types import FixedType
    xt = FixedType(8, 4)  # lsb 1/16
    op = Threshold(name="t", input="x", result_type=FixedType(3, 3), thresholds=[[-16, 3, 40]], step=1, offset=-1)
    g = Graph("t", TensorSpec("x", 1, xt), (op,))
    x = np.array([[-1.0 - 1 / 16], [-1.0], [3 / 16 - 1 / 16], [3 / 16], [2.5 - 1 / 16], [2.5], [7.9375]])
    assert reference.run(g, x).ravel().tolist() == [-1, 0, 0, 1, 1, 2, 2]


@pytest.mark.sim
@pytest.mark.parametrize("arch", ["dataflow", "moldable"])
def test_rtl_is_bit_exact(finn, arch, tmp_path, need_tool) -> None:
    """dataflow: a comparator bank per feature in the pipeline; moldable: the same bank as an element-wise unit."""
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(finn), arch)
    r = bondflow.simulate(d.write(tmp_path / "d"), 500, simulator="icarus", seed=3)
    assert r.passed and r.vectors == 500, r.error
    assert (r.latency_cycles, r.ii_cycles) == (d.latency_cycles, d.ii_cycles)


@pytest.mark.parametrize("arch", ["bondmachine", "hls4ml"])
def test_other_architectures_refuse_thresholds(finn, arch: str) -> None:
    with pytest.raises(UnsupportedOpError, match="'threshold'") as e:
        bondflow.generate(bondflow.load_model(finn), arch)
    assert "\n" not in str(e.value)


def test_non_fixed_point_levels_are_one_line(tmp_path) -> None:
    with pytest.raises(QuantizationError, match=r"MultiThreshold '.*' levels must lie on a fixed-point grid .*, not out_scale=0\.8298"):
        bondflow.load_model(finn_streamlined(tmp_path / "s.onnx", out_scale=0.8298))

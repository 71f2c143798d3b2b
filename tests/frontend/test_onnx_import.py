"""ONNX/QONNX files that bondflow did not write (built in-test) import, and agree with qonnx's own executor."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError, UnsupportedOpError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation
from bondflow.ir.types import FixedType, Rounding

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DOMAIN = "qonnx.custom_op.general"


class Builder:
    """A tiny hand-written QONNX graph, as Brevitas or a user would write it (no bondflow metadata)."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def quant(self, src: str, dst: str, bits: int, frac: int, signed: int = 1, rounding: str = "ROUND",
              narrow: int = 0) -> str:
        ins = [src, self.const(dst + "_s", 2.0 ** -frac), self.const(dst + "_z", 0.0), self.const(dst + "_b", float(bits))]
        self.nodes.append(helper.make_node("Quant", ins, [dst], name=dst, domain=DOMAIN, signed=signed, narrow=narrow,
                                           rounding_mode=rounding))
        return dst

    def node(self, op: str, ins: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, ins, [out], name=out + "_node", **attrs))
        return out

    def save(self, path: Path, n_in: int, out: str, n_out: int) -> Path:
        g = helper.make_graph(self.nodes, "ext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, n_out])], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)])
        m.ir_version = 8
        onnx.save(m, str(path))
        return path


def qonnx_run(path: Path, x: np.ndarray) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    m = cleanup_model(ModelWrapper(str(path)))
    name, out = m.graph.input[0].name, m.graph.output[0].name
    return np.concatenate([execute_onnx(m, {name: x[i:i + 1].astype(np.float32)})[out] for i in range(len(x))])


def qonnx_mlp(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    b = Builder()
    b.quant("x", "xq", 8, 4)
    b.const("W1", rng.integers(-8, 8, (4, 6)) / 8)
    b.const("b1", rng.integers(-8, 8, 6) / 8)
    b.node("MatMul", ["xq", b.quant("W1", "W1q", 4, 3)], "mm1")
    b.node("Add", ["mm1", b.quant("b1", "b1q", 4, 3)], "acc1")
    b.node("Relu", ["acc1"], "r1")
    b.quant("r1", "r1q", 6, 3, signed=0)
    b.const("W2", rng.integers(-8, 8, (3, 6)) / 8)  # Gemm with transB, as PyTorch exports Linear
    b.const("b2", rng.integers(-8, 8, 3) / 8)
    b.node("Gemm", ["r1q", b.quant("W2", "W2q", 4, 3), b.quant("b2", "b2q", 4, 3)], "y", transB=1)
    return b.save(path, 4, "y", 3)


def test_third_party_qonnx_mlp_matches_qonnx_executor(tmp_path) -> None:
    p = qonnx_mlp(tmp_path / "ext.onnx")
    g = bondflow.load_model(p)
    assert [o.kind for o in g.ops] == ["dense", "activation", "dense"]
    assert str(g.input.type) == "fixed<8,4,RND_CONV,SAT>" and str(g.ops[1].result_type) == "ufixed<6,3,RND_CONV,SAT>"
    x = np.random.default_rng(1).uniform(-10, 10, (300, 4))
    x[:50] = np.round(x[:50] * 32) / 32  # exact ties of the input grid (1/16) as well
    # Every value is a small dyadic rational, so float32 is exact in qonnx: outputs must be equal, not close.
    assert np.array_equal(bondflow.reference.run(g, x), qonnx_run(p, x))
    export_onnx(g, tmp_path / "again.onnx")
    assert bondflow.load_model(tmp_path / "again.onnx").digest() == g.digest()


@pytest.mark.parametrize("mode", ["ROUND", "HALF_EVEN", "FLOOR", "DOWN", "HALF_UP", "HALF_DOWN"])
def test_quant_rounding_modes_match_qonnx(tmp_path, mode: str) -> None:
    b = Builder()
    b.quant("x", "xq", 12, 4)
    b.node("Identity", ["xq"], "id")
    p = b.save(tmp_path / "q.onnx", 1, b.quant("id", "yq", 6, 1, rounding=mode), 1)
    g = bondflow.load_model(p)
    x = (np.arange(-300, 300) / 16.0)[:, None]  # every value of the input grid, so every tie of the output grid
    assert np.array_equal(bondflow.reference.run(g, x), qonnx_run(p, x)), mode


@pytest.mark.parametrize("rounding", list(Rounding))
def test_export_rounding_names_are_valid_qonnx(tmp_path, rounding: Rounding) -> None:
    """Every exported Quant runs in qonnx; exact modes agree with the golden model on every tie."""
    x_t = FixedType(12, 8, rounding="RND_CONV", overflow="SAT")
    g = Graph("r", TensorSpec("x", 1, x_t),
              (Activation(name="a", input="x", result_type=FixedType(6, 5, rounding=rounding, overflow="SAT"),
                          function="linear"),))
    export_onnx(g, tmp_path / "r.onnx")
    x = (np.arange(-300, 300) / 16.0)[:, None]
    got = qonnx_run(tmp_path / "r.onnx", x)
    want = bondflow.reference.run(g, x)
    if rounding in (Rounding.RND, Rounding.RND_MIN_INF):  # no qonnx mode: nearest, differs on ties of one sign only
        assert np.abs(got - want).max() <= g.output.type.lsb
    else:
        assert np.array_equal(got, want)
    assert bondflow.load_model(tmp_path / "r.onnx").digest() == g.digest()


def test_export_sat_sym_is_narrow_quant(tmp_path) -> None:
    x_t = FixedType(12, 8, rounding="RND_CONV", overflow="SAT")
    g = Graph("s", TensorSpec("x", 1, x_t),
              (Activation(name="a", input="x", result_type=FixedType(5, 3, rounding="RND_CONV", overflow="SAT_SYM"),
                          function="linear"),))
    export_onnx(g, tmp_path / "s.onnx")
    x = (np.arange(-300, 300) / 16.0)[:, None]
    got = qonnx_run(tmp_path / "s.onnx", x)
    assert got.min() == -3.75 and np.array_equal(got, bondflow.reference.run(g, x))


def test_float_onnx_needs_default_precision(tmp_path) -> None:
    rng = np.random.default_rng(2)
    b = Builder()
    w = rng.normal(0, 0.5, (5, 3))
    b.const("W", w)
    bias = rng.normal(0, 0.5, 3)
    b.const("B", bias)
    b.node("MatMul", ["x", "W"], "mm")
    b.node("Add", ["mm", "B"], "acc")
    b.node("Relu", ["acc"], "y")
    p = b.save(tmp_path / "f.onnx", 5, "y", 3)
    with pytest.raises(QuantizationError, match="default precision must be given"):
        bondflow.load_model(p)
    g = bondflow.load_model(p, default_precision="fixed<16,6,RND_CONV,SAT>", input_precision="fixed<12,4,RND_CONV,SAT>")
    assert [o.kind for o in g.ops] == ["dense", "activation"]
    assert str(g.ops[0].weight_type) == "fixed<16,6,RND_CONV,SAT>"
    x = rng.uniform(-3, 3, (500, 5))
    w, bias = w.astype(np.float32), bias.astype(np.float32)  # what the file holds
    want = np.maximum(x @ w + bias, 0)
    # Error budget: input rounding (2^-9) x sum|w| + weight/bias rounding (2^-11) x (sum|x| + 1) + output rounding (2^-11).
    bound = 2.0 ** -9 * np.abs(w).sum(0) + 2.0 ** -11 * (np.abs(x).sum(1, keepdims=True) + 1) + 2.0 ** -11
    assert np.all(np.abs(bondflow.reference.run(g, x) - want) <= bound)


@pytest.mark.parametrize("attrs, match", [(dict(signed=0, narrow=1), "unsigned narrow"),
                                          (dict(rounding="CEIL"), "rounding_mode must be one of")])
def test_quant_without_fixed_point_meaning_refused(tmp_path, attrs, match) -> None:
    b = Builder()
    b.quant("x", "xq", 8, 4)
    b.node("Relu", ["xq"], "r")
    bits = attrs.pop("bits", 4)
    p = b.save(tmp_path / "n.onnx", 2, b.quant("r", "rq", bits, 2, **attrs), 2)
    with pytest.raises(QuantizationError, match=match):
        bondflow.load_model(p)


def test_non_power_of_two_scale_refused(tmp_path) -> None:
    """0.3 in float32 has 23 significant bits: qonnx's k * scale rounds for 8-bit levels (see test_qonnx_scale for exact ones)."""
    b = Builder()
    b.quant("x", "xq", 8, 4)
    b.nodes[-1].input[1] = b.const("odd_scale", 0.3)
    b.node("Relu", ["xq"], "y")
    with pytest.raises(QuantizationError, match=r"levels \(k - zeropt\) \* scale must be exact in float32 .* not scale 0\.300000012"):
        bondflow.load_model(b.save(tmp_path / "s.onnx", 2, "y", 2), default_precision="fixed<8,3>")


def test_unsupported_onnx_op(tmp_path) -> None:
    b = Builder()
    b.quant("x", "xq", 8, 4)
    b.node("Softplus", ["xq"], "y")
    with pytest.raises(UnsupportedOpError, match="'Softplus'.*supported: "):
        bondflow.load_model(b.save(tmp_path / "t.onnx", 2, "y", 2), default_precision="fixed<8,3>")


def test_cli_import_of_bad_onnx_writes_nothing(tmp_path, capsys) -> None:
    from bondflow.cli.main import main
    b = Builder()
    b.quant("x", "xq", 8, 4)
    b.node("Softplus", ["xq"], "y")
    src = b.save(tmp_path / "t.onnx", 2, "y", 2)
    before = sorted(tmp_path.iterdir())
    rc = main(["import", str(src), "-o", str(tmp_path / "g.json"), "--onnx", str(tmp_path / "g.onnx")])
    err = capsys.readouterr().err.strip()
    assert rc == UnsupportedOpError.exit_code and err.startswith("bondflow: error: ") and "\n" not in err
    assert "Traceback" not in err and sorted(tmp_path.iterdir()) == before
    rc = main(["import", str(qonnx_mlp(tmp_path / "ok.onnx")), "-o", str(tmp_path / "g.json")])
    assert rc == 0 and bondflow.load_model(tmp_path / "g.json").digest() == bondflow.load_model(tmp_path / "ok.onnx").digest()


def _legacy_pytorch_mlp(path: Path, rng: np.random.Generator) -> None:
    """An MLP as PyTorch 0.x exported it (hls4ml's zoo three_layer_bn_pytorch): ONNX IR 3, opset 6, every weight
    also listed as a graph input, the batch fixed at the training set's size, Gemm(broadcast=1) and a
    BatchNormalization(is_test=1) between Unsqueeze/Squeeze."""
    nodes, inits, inputs = [], [], [helper.make_tensor_value_info("0", TensorProto.FLOAT, [789444, 16])]

    def const(name: str, v: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(v.astype(np.float32), name))
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(v.shape)))
        return name
    w1, b1 = const("w1", rng.normal(0, 0.4, (12, 16))), const("b1", rng.normal(0, 0.1, 12))
    nodes.append(helper.make_node("Gemm", ["0", w1, b1], ["h"], broadcast=1, transB=1))
    nodes.append(helper.make_node("Unsqueeze", ["h"], ["hu"], axes=[2]))
    bn = [const(n, v) for n, v in (("g", rng.uniform(0.5, 1.5, 12)), ("be", rng.normal(0, 0.2, 12)),
                                   ("mu", rng.normal(0, 0.3, 12)), ("var", rng.uniform(0.5, 2, 12)))]
    nodes.append(helper.make_node("BatchNormalization", ["hu", *bn], ["hb"], epsilon=1e-5, is_test=1, momentum=0.9))
    nodes.append(helper.make_node("Squeeze", ["hb"], ["hs"], axes=[2]))
    nodes.append(helper.make_node("Relu", ["hs"], ["r"]))
    w2, b2 = const("w2", rng.normal(0, 0.4, (5, 12))), const("b2", rng.normal(0, 0.1, 5))
    nodes.append(helper.make_node("Gemm", ["r", w2, b2], ["y"], broadcast=1, transB=1))
    g = helper.make_graph(nodes, "torch-jit-export", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [789444, 5])],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 6)], producer_name="pytorch")
    m.ir_version = 3
    onnx.save(m, path)


def test_legacy_pytorch_export_imports_and_runs_as_reference(tmp_path) -> None:
    """Weights listed as inputs are constants, not a second input; the fixed batch does not stop the reference run;
    opset 6 runs in ONNX Runtime after onnx's version converter; golden follows it."""
    _legacy_pytorch_mlp(tmp_path / "old.onnx", np.random.default_rng(3))
    g = bondflow.load_model(tmp_path / "old.onnx", default_precision="fixed<16,6>")
    assert g.input.size == 16 and [o.kind for o in g.ops][-1] == "dense"
    from bondflow.fidelity import measure
    f = measure(g)
    assert f.reference == "ONNX Runtime (opset 6 converted to 13 by onnx's version converter)", f.unavailable
    assert f.samples == 1000 and f.agreement >= 0.97 and f.distinct_outputs > 100 and not f.poor


def test_integer_input_fidelity_draws_every_grid_value() -> None:
    """A bipolar input held as fixed<1,1> ({-1, 0}): fidelity inputs cover both values (a real-valued draw floored
    onto that grid gave one value, so a bipolar network looked constant)."""
    from bondflow.fidelity import inputs_for
    t = FixedType(1, 1, signed=True, rounding="TRN", overflow="SAT")
    g = Graph("bip", TensorSpec("x", 3, t), (Activation(name="a", input="x", result_type=t, function="linear"),))
    x, desc = inputs_for(g, samples=400)
    assert set(np.unique(x)) == {-1.0, 0.0} and 150 < (x == 0).sum() / 3 < 250 and "grid values" in desc

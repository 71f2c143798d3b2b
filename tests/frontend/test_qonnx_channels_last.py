"""QONNX graphs whose Conv/MaxPool/BatchNormalization are qonnx's channels-last wrappers (domain
'qonnx.custom_op.channels_last': NHWC data, Conv kernels (C_out, *k, C_in/group)), as qonnx's
ConvertToChannelsLastAndClean and hls4ml's *_ch_last example models write them: golden == qonnx's executor."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import UnsupportedOpError

onnx = pytest.importorskip("onnx")
pytest.importorskip("qonnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

GENERAL = "qonnx.custom_op.general"
CL = "qonnx.custom_op.channels_last"


class Builder:
    """A tiny hand-written QONNX graph (no bondflow metadata); the channels-last domain is left undeclared, as the
    hls4ml zoo's files leave it. Every tensor's shape is written as value_info, as in those files: qonnx's shape
    inference cannot infer a channels-last op's shape from a custom op's output."""

    def __init__(self, seed: int, in_shape: list[int], declare_cl: bool = False) -> None:
        self.declare_cl = declare_cl  # qonnx runs an undeclared channels-last op at its version 1 (opset 1 in onnxruntime)
        self.nodes: list = []
        self.inits: list = []
        self.rng = np.random.default_rng(seed)
        self.shapes: dict[str, list[int]] = {"x": [1] + in_shape}

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        self.shapes[name] = list(np.shape(value))
        return name

    def quant(self, src: str, dst: str, bits: int, frac: int, signed: int = 1) -> str:
        ins = [src, self.const(dst + "_s", 2.0 ** -frac), self.const(dst + "_z", 0.0), self.const(dst + "_b", float(bits))]
        self.nodes.append(helper.make_node("Quant", ins, [dst], name=dst, domain=GENERAL, signed=signed, narrow=0,
                                           rounding_mode="ROUND"))
        self.shapes[dst] = self.shapes[src]
        return dst

    def weights(self, name: str, shape: tuple[int, ...]) -> str:
        """Random 4-bit weights (fixed<4,1>) through a Quant, as Brevitas exports them."""
        self.const(name, self.rng.integers(-8, 8, shape) / 8)
        return self.quant(name, name + "q", 4, 3)

    def node(self, op: str, ins: list[str], out: str, domain: str = "", shape: list[int] | None = None, **attrs) -> str:
        """``shape``: the output's, when not the first input's."""
        self.nodes.append(helper.make_node(op, ins, [out], name=out + "_node", domain=domain, **attrs))
        self.shapes[out] = shape or self.shapes[ins[0]]
        return out

    def conv(self, src: str, out: str, c_in: int, c_out: int, k: int = 3, pad: int = 1, group: int = 1, bias: bool = True) -> str:
        """A channels-last Conv: its kernel in qonnx's (C_out, kH, kW, C_in/group) order, every attribute explicit
        (qonnx's wrapper requires them)."""
        ins = [src, self.weights(out + "_W", (c_out, k, k, c_in // group))]
        if bias:
            ins.append(self.weights(out + "_b", (c_out,)))
        n, h, w, _ = self.shapes[src]
        return self.node("Conv", ins, out, CL, [n, h + 2 * pad - k + 1, w + 2 * pad - k + 1, c_out], kernel_shape=[k, k],
                         strides=[1, 1], dilations=[1, 1], pads=[pad] * 4, group=group)

    def save(self, path: Path, out: str) -> Path:
        inner = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in self.shapes.items()
                 if k not in ("x", out) and k not in {i.name for i in self.inits}]
        g = helper.make_graph(self.nodes, "cl", [helper.make_tensor_value_info("x", TensorProto.FLOAT, self.shapes["x"])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, self.shapes[out])], self.inits,
                              value_info=inner)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(GENERAL, 1)]
                              + ([helper.make_opsetid(CL, 13)] if self.declare_cl else []))
        m.ir_version = 8
        onnx.save(m, str(path))
        return path


def chain_model(path: Path) -> Path:
    """Quant -> channels-last Conv (Quant'ed weights and bias) -> Relu -> Quant -> channels-last MaxPool -> Flatten -> MatMul."""
    b = Builder(1, [8, 8, 2])
    b.quant("x", "xq", 8, 4)
    b.conv("xq", "c", 2, 3)
    b.node("Relu", ["c"], "r")
    b.quant("r", "rq", 6, 3, signed=0)
    b.node("MaxPool", ["rq"], "p", CL, [1, 4, 4, 3], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    b.node("Flatten", ["p"], "f", shape=[1, 48])
    b.node("MatMul", ["f", b.weights("W2", (48, 4))], "y", shape=[1, 4])
    return b.save(path, "y")


def branched_model(path: Path) -> Path:
    """As hls4ml's tiny U-Net: a depthwise + pointwise (separable) channels-last pair, MaxPool, a Resize by [1, 2, 2, 1]
    and a Concat on axis -1 of NHWC tensors, then a channels-last BatchNormalization with per-channel statistics."""
    b = Builder(2, [4, 4, 2], declare_cl=True)  # BatchNormalization at opset 1 would need 'consumed_inputs'
    b.quant("x", "xq", 8, 4)
    b.conv("xq", "dw", 2, 4, group=2, bias=False)  # depth multiplier 2
    b.quant("dw", "dwq", 8, 4)
    b.conv("dwq", "pw", 4, 3, k=1, pad=0)
    b.node("Relu", ["pw"], "r")
    b.quant("r", "a", 6, 3, signed=0)
    b.node("MaxPool", ["a"], "p", CL, [1, 2, 2, 3], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    b.const("roi", np.zeros(0))
    b.node("Resize", ["p", "roi", b.const("scales", [1.0, 2.0, 2.0, 1.0])], "u", shape=[1, 4, 4, 3], mode="nearest",
           coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    b.node("Concat", ["u", "a"], "cat", shape=[1, 4, 4, 6], axis=-1)
    b.conv("cat", "c2", 6, 2)
    b.quant("c2", "c2q", 8, 3)
    # a = gamma / sqrt(var + 0) = gamma / 2 and b = beta - mean * a: exact in float32 and on the 2^-16 grid
    b.const("g", [1.0, -0.5])
    b.const("beta", [0.25, -0.125])
    b.const("mean", [0.5, -1.0])
    b.const("var", [4.0, 4.0])
    b.node("BatchNormalization", ["c2q", "g", "beta", "mean", "var"], "bn", CL, epsilon=0.0, momentum=0.9)
    b.quant("bn", "bnq", 8, 4)
    b.node("Flatten", ["bnq"], "f", shape=[1, 32])
    b.node("MatMul", ["f", b.weights("W3", (32, 3))], "y", shape=[1, 3])
    return b.save(path, "y")


def qonnx_run(path: Path, x: np.ndarray) -> np.ndarray:
    """qonnx's executor, one sample at a time, each flat row laid out as the file's input."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    m = cleanup_model(ModelWrapper(str(path)))
    name, out = m.graph.input[0].name, m.graph.output[0].name
    shape = m.get_tensor_shape(name)
    return np.stack([execute_onnx(m, {name: xi.reshape(shape).astype(np.float32)})[out].reshape(-1) for xi in x])


def _inputs(g, n: int, seed: int) -> np.ndarray:
    t = g.input.type
    x = np.random.default_rng(seed).uniform(t.min_value, t.max_value, (n, g.input.size))
    return t.to_float(t.quantize(x))


def _equals_qonnx(path: Path, g, n: int = 200, seed: int = 0) -> np.ndarray:
    x = _inputs(g, n, seed)
    want = qonnx_run(path, x)
    got = bondflow.reference.run(g, x)
    assert np.array_equal(got, want), f"{int(np.any(got != want, axis=1).sum())} of {n} differ"
    assert len({r.tobytes() for r in got}) > n // 2  # the outputs vary: a comparison that can fail
    return x


def _round_trip(g, tmp_path: Path) -> None:
    from bondflow.frontend.onnx_export import export_onnx
    export_onnx(g, tmp_path / "rt.onnx")
    assert bondflow.load_model(tmp_path / "rt.onnx").digest() == g.digest()


def test_channels_last_chain_equals_qonnx(tmp_path) -> None:
    p = chain_model(tmp_path / "chain.onnx")
    g = bondflow.load_model(p)
    assert g.input.shape == (8, 8, 2) and [o.kind for o in g.ops] == ["conv", "activation", "pool", "flatten", "dense"]
    assert g.shapes()[g.ops[0].name] == (8, 8, 3) and g.shapes()[g.ops[2].name] == (4, 4, 3)
    _equals_qonnx(p, g)
    _round_trip(g, tmp_path)
    from bondflow.fidelity import measure  # bondflow's fidelity reference runs the file in qonnx (its value_info kept)
    f = measure(g, samples=100)
    assert f.reference == "qonnx execute_onnx" and f.max_error == 0.0, f.unavailable


def test_channels_last_branches_resize_concat_batchnorm_equal_qonnx(tmp_path) -> None:
    p = branched_model(tmp_path / "branched.onnx")
    g = bondflow.load_model(p, default_precision="fixed<24,12>")  # BatchNormalization and the last MatMul: wide enough to be exact
    kinds = [o.kind for o in g.ops]
    assert "upsample" in kinds and "merge" in kinds, kinds
    dw = g.ops[0]
    assert dw.groups == 2 and np.count_nonzero(dw.weight[:, :, 0, 2:]) == 0  # input channel 0 feeds outputs 0 and 1 only
    _equals_qonnx(p, g, seed=1)
    _round_trip(g, tmp_path)


def test_qonnx_convert_to_channels_last_equals_channels_first_source(tmp_path) -> None:
    """qonnx's own ConvertToChannelsLastAndClean(make_input_channels_last=True) of a PyTorch-style channels-first model
    (NCHW input, Conv with Quant'ed weight and bias, Relu, MaxPool, Flatten + MatMul, whose channels-first flatten qonnx
    folds into the weight rows): bondflow's golden model on NHWC inputs equals qonnx on the channels-first source."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.util.cleanup import cleanup_model
    b = Builder(3, [2, 8, 8])
    b.quant("x", "xq", 8, 4)
    ins = ["xq", b.weights("W", (3, 2, 3, 3)), b.weights("bias", (3,))]
    b.node("Conv", ins, "c", shape=[1, 3, 8, 8], kernel_shape=[3, 3], strides=[1, 1], dilations=[1, 1], pads=[1, 1, 1, 1], group=1)
    b.node("Relu", ["c"], "r")
    b.quant("r", "rq", 6, 3, signed=0)
    b.node("MaxPool", ["rq"], "p", shape=[1, 3, 4, 4], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    b.node("Flatten", ["p"], "f", shape=[1, 48])
    b.node("MatMul", ["f", b.weights("W2", (48, 4))], "y", shape=[1, 4])
    src = b.save(tmp_path / "cf.onnx", "y")
    cl = cleanup_model(ModelWrapper(str(src))).transform(ConvertToChannelsLastAndClean(make_input_channels_last=True))
    assert {n.domain for n in cl.graph.node if n.op_type in ("Conv", "MaxPool")} == {CL}
    assert "Transpose" not in [n.op_type for n in cl.graph.node]  # folded into the input and the MatMul's rows
    cl.save(str(tmp_path / "cl.onnx"))
    g = bondflow.load_model(tmp_path / "cl.onnx")
    assert g.input.shape == (8, 8, 2)
    x = _equals_qonnx(tmp_path / "cl.onnx", g, seed=2)
    nchw = x.reshape(-1, 8, 8, 2).transpose(0, 3, 1, 2).reshape(len(x), -1)
    assert np.array_equal(bondflow.reference.run(g, x), qonnx_run(src, nchw))
    _round_trip(g, tmp_path)


def test_channels_first_input_to_channels_last_conv_refused(tmp_path) -> None:
    """An NCHW input of 2 channels transposed to NHWC (ConvertToChannelsLastAndClean without make_input_channels_last) holds
    its values channels first, not in bondflow's order: refused in one line; with one channel the orders agree."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.util.cleanup import cleanup_model
    for c, ok in ((2, False), (1, True)):
        b = Builder(4, [c, 6, 6])
        b.quant("x", "xq", 8, 4)
        b.node("Conv", ["xq", b.weights("W", (2, c, 3, 3))], "cv", shape=[1, 2, 6, 6], kernel_shape=[3, 3], strides=[1, 1],
               dilations=[1, 1], pads=[1, 1, 1, 1], group=1)
        b.quant("cv", "cq", 8, 3)
        b.node("Flatten", ["cq"], "f", shape=[1, 72])
        b.node("MatMul", ["f", b.weights("W2", (72, 2))], "y", shape=[1, 2])
        src = b.save(tmp_path / f"nchw{c}.onnx", "y")
        m = cleanup_model(ModelWrapper(str(src))).transform(ConvertToChannelsLastAndClean(make_input_channels_last=False))
        m.save(str(tmp_path / f"cl{c}.onnx"))
        if ok:
            g = bondflow.load_model(tmp_path / f"cl{c}.onnx")
            assert g.input.shape == (6, 6, 1)
            _equals_qonnx(tmp_path / f"cl{c}.onnx", g, seed=5)
        else:
            with pytest.raises(UnsupportedOpError, match="channels-last Conv reading"):
                bondflow.load_model(tmp_path / f"cl{c}.onnx")


def test_channels_last_layouts_matter(tmp_path) -> None:
    """The comparisons above can fail: the kernel read in another order gives other numbers, the same nodes as standard
    (NCHW) ops read the NHWC input channels first (refused), and a channels-last op qonnx does not define is one line."""
    p = chain_model(tmp_path / "chain.onnx")
    g = bondflow.load_model(p)
    m = onnx.load(str(p))
    w = next(i for i in m.graph.initializer if i.name == "c_W")
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w).transpose(0, 2, 1, 3).copy(), "c_W"))  # kH <-> kW
    onnx.save(m, str(tmp_path / "swapped.onnx"))
    x = _inputs(g, 20, 7)
    assert not np.array_equal(bondflow.reference.run(g, x), qonnx_run(tmp_path / "swapped.onnx", x))
    m = onnx.load(str(p))
    for n in m.graph.node:
        n.domain = "" if n.domain == CL else n.domain
    onnx.save(m, str(tmp_path / "std.onnx"))
    with pytest.raises(UnsupportedOpError, match="channels-first graph input"):
        bondflow.load_model(tmp_path / "std.onnx")
    m = onnx.load(str(p))
    next(n for n in m.graph.node if n.op_type == "Relu").domain = CL
    onnx.save(m, str(tmp_path / "bad.onnx"))
    with pytest.raises(bondflow.errors.BondflowError, match="Relu"):
        bondflow.load_model(tmp_path / "bad.onnx")


def test_channels_last_dataflow_rtl_is_bit_exact(tmp_path, need_tool) -> None:
    need_tool("iverilog")
    from bondflow.sim.runner import simulate
    g = bondflow.load_model(chain_model(tmp_path / "chain.onnx"))
    d = bondflow.generate(g, "dataflow")
    r = simulate(d.write(tmp_path / "d"), 60, simulator="icarus", seed=1)
    assert r.passed, r.summary()

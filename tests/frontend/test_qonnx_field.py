"""QONNX as QKeras->QONNX and Brevitas/FINN write it (old domains, bipolar/ternary/2-3-bit): import, equal qonnx, RTL, round trip."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import ModelLoadError, QuantizationError, UnsupportedOpError
from bondflow.frontend.onnx import BIPOLAR_TYPE
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference

onnx = pytest.importorskip("onnx")
pytest.importorskip("qonnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

QONNX = "qonnx.custom_op.general"
FINN = "finn.custom_op.general"  # QKeras->QONNX and FINN (no opset import for it in the file)
BREVITAS = "onnx.brevitas"


class Net:
    """A hand-built QONNX MLP in one quantizer domain, declaring only the standard opset as the exporters do."""

    def __init__(self, domain: str, seed: int = 0) -> None:
        self.domain, self.nodes, self.inits = domain, [], []
        self.rng = np.random.default_rng(seed)
        self._k = 0

    def const(self, value, name: str | None = None) -> str:
        self._k += 1
        name = name or f"c{self._k}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def quant(self, src: str, bits: int, frac: int, signed: int = 1, narrow: int = 0, rounding: str = "ROUND") -> str:
        out = f"q{len(self.nodes)}"
        ins = [src, self.const(2.0 ** -frac), self.const(0.0), self.const(float(bits))]
        self.nodes.append(helper.make_node("Quant", ins, [out], name=f"Quant_{out}", domain=self.domain, signed=signed,
                                           narrow=narrow, rounding_mode=rounding))
        return out

    def bipolar(self, src: str, scale: float = 1.0) -> str:
        out = f"b{len(self.nodes)}"
        self.nodes.append(helper.make_node("BipolarQuant", [src, self.const(scale)], [out], name=f"Bip_{out}", domain=self.domain))
        return out

    def op(self, kind: str, ins: list[str], **attrs) -> str:
        out = f"{kind.lower()}{len(self.nodes)}"
        self.nodes.append(helper.make_node(kind, ins, [out], name=f"{kind}_{len(self.nodes)}", **attrs))
        return out

    def weights(self, n_in: int, n_out: int, spread: float = 1.0) -> str:
        return self.const(self.rng.normal(0, spread, (n_in, n_out)))

    def save(self, path: Path, n_in: int, out: str, n_out: int, domains: tuple[str, ...] = ()) -> Path:
        g = helper.make_graph(self.nodes, "field", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, n_out])], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)] + [helper.make_opsetid(d, 1) for d in domains])
        m.ir_version = 8
        onnx.save(m, str(path))
        return path


def qkeras_style(path: Path) -> Path:
    """QKeras->QONNX: 'finn.custom_op.general' Quant nodes; 3-bit weights, 2-bit unsigned (quantized_relu(2)) activations."""
    n = Net(FINN, seed=1)
    h = n.quant("x", 8, 5)
    h = n.op("MatMul", [h, n.quant(n.weights(6, 10), 3, 2)])
    h = n.op("Add", [h, n.quant(n.const(n.rng.normal(0, 0.5, 10)), 6, 3)])
    h = n.quant(n.op("Relu", [h]), 2, 1, signed=0)
    h = n.op("MatMul", [h, n.quant(n.weights(10, 8), 3, 2)])
    h = n.quant(n.op("Relu", [h]), 3, 1, signed=0)
    h = n.op("MatMul", [h, n.quant(n.weights(8, 4), 3, 2)])
    return n.save(path, 6, n.quant(h, 8, 3), 4)


def brevitas_binary(path: Path) -> Path:
    """Brevitas/FINN 'w1a1' style in 'onnx.brevitas': bipolar input, bipolar weights (+-1, +-0.5), bipolar activations."""
    n = Net(BREVITAS, seed=2)
    h = n.bipolar("x")
    h = n.op("Gemm", [h, n.bipolar(n.const(n.rng.normal(0, 1, (16, 12)))), n.quant(n.const(n.rng.normal(0, 2, 16)), 8, 3)], transB=1)
    h = n.bipolar(h)
    h = n.op("MatMul", [h, n.bipolar(n.weights(16, 8), 0.5)])
    h = n.bipolar(n.op("Flatten", [h]), 0.25)  # a bipolar output: kept as +-0.25 explicitly
    return n.save(path, 12, h, 8)


def ternary(path: Path) -> Path:
    """Ternary weights and activations (2-bit narrow signed Quant: -1, 0, +1 times the scale), 1-bit signed Quant (bipolar)."""
    n = Net(QONNX, seed=3)
    h = n.quant("x", 6, 3)
    h = n.op("MatMul", [h, n.quant(n.weights(5, 12), 2, 1, narrow=1)])
    h = n.quant(h, 2, 0, narrow=1)  # ternary activation, scale 1
    h = n.op("MatMul", [h, n.quant(n.weights(12, 6, 2), 2, 0, narrow=1)])
    h = n.quant(h, 1, 0)  # signed 1-bit: qonnx makes it bipolar
    h = n.op("MatMul", [h, n.quant(n.weights(6, 3), 3, 1)])
    return n.save(path, 5, h, 3, domains=(QONNX,))


MODELS = {"qkeras_finn_domain": qkeras_style, "brevitas_binary": brevitas_binary, "ternary": ternary}


def qonnx_exec(path: Path, x: np.ndarray) -> np.ndarray:
    """qonnx's own executor, all samples in one batch (its cleanup sets the batch size)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    m = cleanup_model(ModelWrapper(str(path)), override_inpsize=len(x))
    return execute_onnx(m, {m.graph.input[0].name: x.astype(np.float32)})[m.graph.output[0].name]


def inputs(g, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Uniform over the input type's range and beyond, plus exact zeros and ties of the input grid; float32 values."""
    t = g.input.type
    span = max(abs(t.min_value), abs(t.max_value), 1.0) * 1.2
    x = np.random.default_rng(seed).uniform(-span, span, (n, g.input.size))
    x[:200] = np.round(x[:200] * 2 ** (t.frac_bits + 1)) / 2 ** (t.frac_bits + 1)
    x[200:220] = 0.0
    return x.astype(np.float32).astype(np.float64)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("field")
    return {k: f(d / f"{k}.onnx") for k, f in MODELS.items()}


def test_exporters_domains_are_refused_by_the_checker_alone(files) -> None:
    """The defect: onnx.checker rejects these files before qonnx's cleanup could rename their domains."""
    for name in ("qkeras_finn_domain", "brevitas_binary"):
        with pytest.raises(Exception, match="No opset import for domain"):
            onnx.checker.check_model(onnx.load(str(files[name])))


@pytest.mark.parametrize("name", list(MODELS))
def test_golden_model_equals_qonnx_executor(files, name: str) -> None:
    g = bondflow.load_model(files[name])
    x = inputs(g, 2000, seed=len(name))
    got, want = reference.run(g, x), qonnx_exec(files[name], x)
    assert got.shape == want.shape and np.array_equal(got, want), name
    assert len(np.unique(want, axis=0)) > 20  # not a constant or near-constant model
    again = files[name].with_suffix(".again.onnx")
    export_onnx(g, again)
    assert bondflow.load_model(again).digest() == g.digest()
    assert np.array_equal(qonnx_exec(again, x), want)  # the export runs in qonnx with the same outputs


def test_graph_types_are_exact(files) -> None:
    g = bondflow.load_model(files["qkeras_finn_domain"])
    assert [str(o.result_type) for o in g.ops if o.kind == "activation"] == ["ufixed<2,1,RND_CONV,SAT>", "ufixed<3,2,RND_CONV,SAT>"]
    assert str(g.ops[0].weight_type) == "fixed<3,1,RND_CONV,SAT>"
    b = bondflow.load_model(files["brevitas_binary"])
    assert b.input.type == BIPOLAR_TYPE and [o.kind for o in b.ops] == ["dense", "dense", "flatten", "activation", "dense"]
    d1, d2, _, sign, out = b.ops
    # Binary weights are +-1 in the file; read through the bipolar input h in {-1, 0} they are 2W = +-2.
    assert set(np.unique(d1.weight_type.to_float(d1.weight))) == {-2.0, 2.0} and d1.result_type == BIPOLAR_TYPE
    assert set(np.unique(d2.weight_type.to_float(d2.weight))) == {-1.0, 1.0} and sign.result_type == BIPOLAR_TYPE
    assert set(np.unique(reference.run(b, inputs(b, 300)))) == {-0.25, 0.25}
    t = bondflow.load_model(files["ternary"])
    assert str(t.ops[0].weight_type) == "fixed<2,1,RND_CONV,SAT_SYM>" and set(np.unique(t.ops[0].weight)) <= {-1, 0, 1}
    assert str(t.ops[0].result_type) == "fixed<2,2,RND_CONV,SAT_SYM>" and t.ops[1].result_type == BIPOLAR_TYPE


@pytest.mark.sim
@pytest.mark.parametrize("name", list(MODELS))
def test_dataflow_rtl_is_bit_exact(files, name: str, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    g = bondflow.load_model(files[name])
    d = bondflow.generate(g, "dataflow")
    r = bondflow.simulate(d.write(tmp_path / "d"), 400, simulator="icarus", seed=1)
    assert r.passed and r.vectors == 400, r.error


def test_unknown_domain_and_damaged_file_are_one_line(tmp_path, files) -> None:
    n = Net("com.example.custom")
    p = n.save(tmp_path / "u.onnx", 2, n.quant("x", 8, 4), 2)
    with pytest.raises(ModelLoadError, match="No opset import for domain 'com.example.custom'") as e:
        bondflow.load_model(p)
    assert "\n" not in str(e.value)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(files["brevitas_binary"].read_bytes()[:300])
    with pytest.raises(ModelLoadError, match="must be a valid ONNX model") as e:
        bondflow.load_model(cut)
    assert "\n" not in str(e.value)


def test_bipolar_scale_beyond_float32_is_one_line(tmp_path) -> None:
    """+-0.8298 weights are exact, but their sums need more than float32's 24 bits, which qonnx rounds (test_qonnx_scale)."""
    n = Net(BREVITAS)
    h = n.op("MatMul", [n.bipolar("x"), n.bipolar(n.weights(3, 2), 0.8298)])
    with pytest.raises(QuantizationError, match=r"MatMul '.*' reads values of Quant 'BipolarQuant_\d' \(non-power-of-two scale\).*not need fixed<29,6>"):
        bondflow.load_model(n.save(tmp_path / "s.onnx", 3, h, 2))


def test_per_channel_scale_is_refused_not_truncated(tmp_path) -> None:
    n = Net(QONNX)
    w = n.quant(n.weights(3, 2), 4, 2)
    n.nodes[-1].input[1] = n.const(np.array([[0.25, 0.5]]))  # per-output-channel scales
    h = n.op("MatMul", [n.quant("x", 8, 4), w])
    with pytest.raises(QuantizationError, match="scale must be one value per tensor, not 2 values"):
        bondflow.load_model(n.save(tmp_path / "c.onnx", 3, h, 2, domains=(QONNX,)))


def unsupported(path: Path) -> Path:
    n = Net(FINN)
    h = n.quant("x", 8, 4)
    for _ in range(4):
        h = n.op("Softplus", [h])
    h = n.op("Softsign", [n.op("MatMul", [h, n.quant(n.weights(3, 3), 4, 2)])])
    return n.save(path, 3, n.op("HardSigmoid", [h]), 3)


def test_every_unsupported_node_in_one_message(tmp_path) -> None:
    with pytest.raises(UnsupportedOpError) as e:
        bondflow.load_model(unsupported(tmp_path / "u.onnx"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("u.onnx: ONNX nodes must be of supported kinds, not ")
    assert "'Softplus' x4 (Softplus_1, Softplus_2, Softplus_3, ...)" in msg and "'Softsign' x1 (Softsign_" in msg and "'HardSigmoid' x1" in msg
    assert "supported: Quant, BipolarQuant" in msg


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_stderr_is_one_line_unless_verbose(tmp_path, files) -> None:
    bad = unsupported(tmp_path / "u.onnx")
    r = _cli("import", str(bad), "-o", "g.json", cwd=tmp_path)
    assert r.returncode == UnsupportedOpError.exit_code and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("bondflow: error: u.onnx: ONNX nodes must be")
    r = _cli("import", str(files["qkeras_finn_domain"]), "-o", "g.json", cwd=tmp_path)
    assert r.returncode == 0 and "warn" not in r.stderr.lower() and "domain" not in r.stderr, r.stderr
    assert json.loads((tmp_path / "g.json").read_text())["format"] == "bondflow-graph"
    r = _cli("-v", "import", str(files["qkeras_finn_domain"]), "-o", "g2.json", cwd=tmp_path)
    assert r.returncode == 0 and "old-style domain" in r.stderr  # -v: qonnx's own warning is let through

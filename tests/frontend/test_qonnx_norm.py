"""Input normalisation (Mul/Sub/Div/Add by constants) and ONNX BatchNormalization: exact folds, one-line refusals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference

pytest.importorskip("qonnx")
from test_qonnx_field import BREVITAS, FINN, QONNX, Net, qonnx_exec  # noqa: E402


def norm_before_quant(path: Path) -> Path:
    """(x - mean) * 2 per feature, then the input Quant: a float input normalised as PyTorch/FINN exporters write it."""
    n = Net(FINN, seed=4)
    h = n.op("Sub", ["x", n.const(np.array([[0.5, -1.25, 0.0, 2.0, 0.75]]))])
    h = n.op("Mul", [h, n.const(np.array([2.0, 1.0, 0.5, 4.0, 2.0]))])
    h = n.quant(h, 8, 4)
    h = n.op("MatMul", [h, n.quant(n.weights(5, 8), 4, 2)])
    h = n.quant(n.op("Relu", [h]), 4, 2, signed=0)
    return n.save(path, 5, n.op("MatMul", [h, n.quant(n.weights(8, 3), 4, 2)]), 3)


def norm_after_quant(path: Path) -> Path:
    """The input Quant, then Div and Add by constants (folded into the first MatMul), and Div after a quantized MatMul."""
    n = Net(QONNX, seed=5)
    h = n.quant("x", 8, 4)
    h = n.op("Div", [h, n.const(np.array([2.0, 4.0, 1.0, 0.5]))])
    h = n.op("Add", [h, n.const(np.array([0.25, -0.5, 1.0, 0.0]))])
    h = n.op("MatMul", [h, n.quant(n.weights(4, 6), 4, 2)])
    h = n.op("Add", [h, n.quant(n.const(n.rng.normal(0, 1, 6)), 6, 3)])
    h = n.op("Div", [h, n.const(4.0)])
    h = n.quant(n.op("Relu", [h]), 5, 2, signed=0)
    return n.save(path, 4, n.op("MatMul", [h, n.quant(n.weights(6, 3), 4, 2)]), 3, domains=(QONNX,))


def bn_model(path: Path, exact: bool = True) -> Path:
    """Quantized MatMul+Add, then Unsqueeze -> BatchNormalization -> Transpose -> Squeeze (as converters write BatchNorm1d)."""
    n = Net(QONNX, seed=6)
    h = n.quant("x", 8, 4)
    h = n.op("MatMul", [h, n.quant(n.weights(6, 7), 4, 2)])
    h = n.op("Add", [h, n.quant(n.const(n.rng.normal(0, 1, 7)), 6, 3)])
    h = n.op("Unsqueeze", [h, _axes(n, [2])])
    rng = np.random.default_rng(7)
    if exact:  # scales +-2^k and shifts on a grid: the fold is exact (var + eps a power of four)
        gamma, var, eps = rng.choice([-1.0, 0.5, 1.0, 2.0], 7), rng.choice([0.25, 1.0, 4.0], 7), 0.0
        beta, mean = np.round(rng.normal(0, 1, 7) * 16) / 16, np.round(rng.normal(0, 1, 7) * 16) / 16
    else:  # trained statistics: scale 0.83..., not foldable exactly into the quantized layer
        gamma, var, eps = rng.uniform(0.5, 1.5, 7), rng.uniform(0.5, 2, 7), 1e-5
        beta, mean = rng.normal(0, 1, 7), rng.normal(0, 1, 7)
    h = n.op("BatchNormalization", [h] + [n.const(v) for v in (gamma, beta, mean, var)], epsilon=eps)
    h = n.op("Transpose", [h], perm=[0, 2, 1])
    h = n.op("Squeeze", [h, _axes(n, [1])])
    h = n.quant(n.op("Relu", [h]), 4, 2, signed=0)
    return n.save(path, 6, n.op("MatMul", [h, n.quant(n.weights(7, 3), 4, 2)]), 3, domains=(QONNX,))


def _axes(n: Net, axes: list[int]) -> str:
    from onnx import numpy_helper
    n._k += 1
    name = f"axes{n._k}"
    n.inits.append(numpy_helper.from_array(np.array(axes, dtype=np.int64), name))
    return name


def tfc_w1a1(path: Path) -> Path:
    """FINN's TFC shape (784-64-64-64-10) with bipolar weights and activations in Brevitas's domain, input scaled 2x - 1."""
    n = Net(BREVITAS, seed=9)
    h = n.bipolar(n.op("Add", [n.op("Mul", ["x", n.const(2.0)]), n.const(-1.0)]))
    for n_in, n_out in ((784, 64), (64, 64), (64, 64)):
        h = n.bipolar(n.op("MatMul", [h, n.bipolar(n.weights(n_in, n_out))]))
    return n.save(path, 784, n.op("MatMul", [h, n.bipolar(n.weights(64, 10))]), 10)


MODELS = {"norm_before_quant": norm_before_quant, "norm_after_quant": norm_after_quant, "bn_exact": bn_model}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("norm")
    return {k: f(d / f"{k}.onnx") for k, f in MODELS.items()}


def _x(g, n: int, seed: int) -> np.ndarray:
    """Inputs on the graph's input grid (bondflow's input type quantizes first; qonnx reads the same values)."""
    t = g.input.type
    x = np.random.default_rng(seed).uniform(-6, 6, (n, g.input.size))
    return t.to_float(t.quantize(x))


@pytest.mark.parametrize("name", list(MODELS))
def test_golden_model_equals_qonnx_executor(files, name: str) -> None:
    g = bondflow.load_model(files[name])
    x = _x(g, 2000, 3)
    got, want = reference.run(g, x), qonnx_exec(files[name], x)
    assert np.array_equal(got, want), name
    assert len(np.unique(want, axis=0)) > 50
    export_onnx(g, files[name].with_suffix(".again.onnx"))
    again = bondflow.load_model(files[name].with_suffix(".again.onnx"))
    assert again.digest() == g.digest() and np.array_equal(qonnx_exec(files[name].with_suffix(".again.onnx"), x), want)


def test_folds_leave_plain_dense_layers(files) -> None:
    g = bondflow.load_model(files["norm_before_quant"])
    # Before the input Quant: a diagonal Dense whose result is the Quant's type; the input keeps the user's type.
    assert [o.kind for o in g.ops] == ["dense", "dense", "activation", "dense"]
    assert str(g.input.type) == "fixed<16,6,RND_CONV,SAT>" and str(g.ops[0].result_type) == "fixed<8,4,RND_CONV,SAT>"
    assert np.count_nonzero(g.ops[0].weight) == 5
    for name in ("norm_after_quant", "bn_exact"):  # folded into the neighbouring Dense: no extra op
        g = bondflow.load_model(files[name])
        assert [o.kind for o in g.ops] == ["dense", "activation", "dense"], name


def test_finn_tfc_w1a1_equals_qonnx(tmp_path) -> None:
    """MNIST-like pixels k/256, a column of exact ties (2x - 1 = 0, sign +1): bipolar through four layers, bit-exact."""
    p = tfc_w1a1(tmp_path / "tfc.onnx")
    g = bondflow.load_model(p)
    assert [o.kind for o in g.ops] == ["dense"] * 5 and np.count_nonzero(g.ops[0].weight) == 784  # the diagonal 2x - 1
    x = np.random.default_rng(0).integers(0, 256, (1000, 784)) / 256.0
    x[:, :50] = 0.5
    want = qonnx_exec(p, x)
    assert np.array_equal(reference.run(g, x), want) and len(np.unique(want, axis=0)) > 900
    # Any real input: a truncating input type keeps x >= 0.5 exact (the documented advice); rounding does not.
    xr = np.random.default_rng(1).standard_normal((1000, 784)).astype(np.float32).astype(np.float64)
    want = qonnx_exec(p, xr)
    assert np.array_equal(reference.run(bondflow.load_model(p, input_precision="fixed<16,6,TRN,SAT>"), xr), want)
    assert not np.array_equal(reference.run(g, xr), want)


def test_inexact_batchnorm_after_quantized_layer_is_one_line(tmp_path) -> None:
    with pytest.raises(QuantizationError, match=r"BatchNormalization '.*' after quantized MatMul '.*' must scale by \+-2\^k "
                                                r"and shift on a 2\^-16 grid to fold exactly, not scale 0\.") as e:
        bondflow.load_model(bn_model(tmp_path / "bn.onnx", exact=False))
    assert "\n" not in str(e.value)


def test_inexact_input_normalisation_is_one_line(tmp_path) -> None:
    n = Net(QONNX)
    h = n.quant(n.op("Mul", ["x", n.const(1 / 255)]), 8, 8, signed=0)
    p = n.save(tmp_path / "n.onnx", 3, n.op("MatMul", [h, n.quant(n.weights(3, 2), 4, 2)]), 2, domains=(QONNX,))
    with pytest.raises(QuantizationError, match=r"normalisation '.*' must be exact in fixed point .*, not scale 0\.00392"):
        bondflow.load_model(p)


def test_float_batchnorm_folds_like_tf2onnx(tmp_path) -> None:
    """A float MatMul -> BatchNormalization -> Relu folds into the Dense before the one rounding to the default precision."""
    n = Net(QONNX, seed=8)
    w, b = n.rng.normal(0, 0.5, (5, 4)), n.rng.normal(0, 0.5, 4)
    gamma, beta, mean, var = n.rng.uniform(0.5, 1.5, 4), n.rng.normal(0, 0.3, 4), n.rng.normal(0, 0.3, 4), n.rng.uniform(0.5, 2, 4)
    h = n.op("Add", [n.op("MatMul", ["x", n.const(w)]), n.const(b)])
    h = n.op("BatchNormalization", [h] + [n.const(v) for v in (gamma, beta, mean, var)])
    p = n.save(tmp_path / "f.onnx", 5, n.op("Relu", [h]), 4)
    g = bondflow.load_model(p, default_precision="fixed<18,6,RND_CONV,SAT>", input_precision="fixed<12,4,RND_CONV,SAT>")
    assert [o.kind for o in g.ops] == ["dense", "activation"]
    x = _x(g, 1000, 4)
    want = qonnx_exec(p, x)
    assert 0 < np.abs(reference.run(g, x) - want).max() < 2 ** -8  # rounded once: close, not bit-exact (float model)


@pytest.mark.sim
@pytest.mark.parametrize("name", ["norm_before_quant", "bn_exact"])
def test_dataflow_rtl_is_bit_exact(files, name: str, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(files[name]), "dataflow")
    r = bondflow.simulate(d.write(tmp_path / "d"), 400, simulator="icarus", seed=2)
    assert r.passed and r.vectors == 400, r.error

"""HGQ2 models (per-element precision): golden model == HGQ's own predict, dataflow RTL, QONNX round trip, refusals.

HGQ2 needs Keras 3, and bondflow's process routes ``keras`` to tf_keras, so the model is built and run by HGQ in a
child process (its own inference); bondflow reads the saved ``.keras`` file without HGQ.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import ModelLoadError, QuantizationError, UnsupportedOpError
from bondflow.frontend.hgq_runtime import hgq_child_env
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference
from bondflow.ir.element_quant import ElementQuant
from bondflow.ir.graph import Graph
from keras_zips import edited_keras

# Three QDense layers and a standalone output Quantizer; every data-lane quantizer has its own per-element (k, i, f)
# (signed and unsigned elements, 0-bit pruned elements, negative i, f from -3 to 4) and its own modes: RND/WRAP,
# TRN/SAT, RND_CONV/SAT_SYM (KBI), RND/SAT; kernels and biases have random per-element widths of 0..5 bits.
BUILD = r'''
import os, sys
os.environ.pop("TF_USE_LEGACY_KERAS", None)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np
import keras
from hgq.config import QuantizerConfig
from hgq.layers import QDense, Quantizer

keras.utils.set_random_seed(7)
rng = np.random.default_rng(7)
inp = keras.Input((8,))
x = QDense(6, activation="relu", name="d1", iq_conf=QuantizerConfig("kif", "datalane", round_mode="RND", overflow_mode="WRAP"))(inp)
x = QDense(5, activation="relu", name="d2", iq_conf=QuantizerConfig("kif", "datalane", round_mode="TRN", overflow_mode="SAT"))(x)
x = QDense(3, name="d3", iq_conf=QuantizerConfig("kbi", "datalane", round_mode="RND_CONV", overflow_mode="SAT_SYM"))(x)
x = Quantizer(QuantizerConfig("kif", "datalane", round_mode="RND", overflow_mode="SAT"), name="out_q")(x)
m = keras.Model(inp, x, name="hgq_mlp")


def setq(q, **vals):
    q = q.quantizer
    for name, v in vals.items():
        var = getattr(q, "_" + name)
        var.assign(np.asarray(v, dtype=var.dtype).reshape(var.shape))


d1, d2, d3 = (m.get_layer(n) for n in ("d1", "d2", "d3"))
setq(d1.iq, k=[1, 1, 0, 1, 0, 1, 1, 1], i=[1, 2, 1, 0, 2, -1, 3, 1], f=[3, 2, 4, 4, 0, 3, -3, 1])
setq(d2.iq, k=[0, 0, 1, 0, 0, 1], i=[3, 2, 3, 2, -2, 1], f=[2, 3, 1, 2, 1, 2])
setq(d3.iq, k=[0, 1, 0, 0, 1], b=[6, 5, 0, 6, 4], i=[3, 3, 1, 3, 2])
setq(m.get_layer("out_q"), k=[1, 1, 0], i=[4, 3, 5], f=[3, 4, 2])
for d in (d1, d2, d3):
    kshape, bshape = tuple(d.kq.quantizer._b.shape), tuple(d.bq.quantizer._b.shape)
    setq(d.kq, b=rng.integers(0, 6, kshape), i=rng.integers(-1, 2, kshape))
    setq(d.bq, b=rng.integers(0, 6, bshape), i=rng.integers(0, 3, bshape))
    d.bias.assign(rng.normal(0, 1, d.bias.shape).astype("float32"))
m.save(sys.argv[1])
x = np.load(sys.argv[2]).astype(np.float32)
np.save(sys.argv[3], np.asarray(m.predict(x, verbose=0, batch_size=1024)))
if len(sys.argv) > 4:  # a second model: Sequential, a KBI/WRAP Quantizer first, QDense without iq, KIF WRAP kernels
    # (HGQ only rounds those), a Keras ReLU layer, a QDense with an output quantizer (oq)
    s = keras.Sequential([keras.Input((8,)),
                          Quantizer(QuantizerConfig("kbi", "datalane", round_mode="RND", overflow_mode="WRAP"), name="in_q"),
                          QDense(7, enable_iq=False, name="e1", kq_conf=QuantizerConfig("kif", "weight", overflow_mode="WRAP")),
                          keras.layers.ReLU(name="r1"),
                          QDense(4, enable_oq=True, name="e2",
                                 oq_conf=QuantizerConfig("kif", "datalane", round_mode="TRN", overflow_mode="WRAP"))], name="hgq_seq")
    setq(s.get_layer("in_q"), k=[1, 0, 1, 1, 0, 1, 1, 0], b=[4, 3, 5, 0, 0, 2, 3, 5], i=[1, 1, 2, 0, 3, -1, 2, 2])
    e1, e2 = s.get_layer("e1"), s.get_layer("e2")
    setq(e1.kq, f=rng.integers(0, 5, tuple(e1.kq.quantizer._f.shape)))
    setq(e2.iq, k=[0] * 7, i=[2, 3, 1, 2, 3, 2, 1], f=[2, 1, 3, 2, 0, 2, 3])
    setq(e2.oq, k=[1, 1, 1, 1], i=[3, 2, 4, 3], f=[3, 4, 2, 1])
    s.save(sys.argv[4])
    np.save(sys.argv[5], np.asarray(s.predict(x, verbose=0, batch_size=1024)))
'''


def hgq_inputs(n: int = 2000) -> np.ndarray:
    """float32 inputs: N(0, 2) (many wrap and saturate) and a quarter on a 1/16 grid (ties of every rounding)."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (n, 8))
    x[: n // 4] = np.round(x[: n // 4] * 16) / 16
    return x.astype(np.float32)


def hgq_mlp(path: Path, x: np.ndarray | None = None, second: Path | None = None) -> tuple[Path, np.ndarray, np.ndarray]:
    """Build and save the HGQ2 model at ``path`` and run HGQ's own predict on ``x``: (path, x, y); with ``second``,
    also the Sequential model there (its outputs in ``second.with_suffix('.y.npy')``)."""
    x = hgq_inputs() if x is None else x
    xi, yo = path.with_suffix(".x.npy"), path.with_suffix(".y.npy")
    np.save(xi, x)
    env = hgq_child_env()  # HGQ2 lives beside the venv (its qkeras shim would replace QKeras here)
    more = [str(second), str(second.with_suffix(".y.npy"))] if second else []
    r = subprocess.run([sys.executable, "-c", BUILD, str(path), str(xi), str(yo), *more], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return path, x.astype(np.float64), np.load(yo).astype(np.float64)


# QBatchNormDense (HGQ's dense with its input's batch normalization fused into the kernel before quantization), with
# and without gamma, random moving statistics and random kernel/bias widths.
BN_BUILD = r'''
import os, sys
os.environ.pop("TF_USE_LEGACY_KERAS", None)
import numpy as np
import keras
from hgq.layers import QBatchNormDense

keras.utils.set_random_seed(4)
rng = np.random.default_rng(4)
inp = keras.Input((12,))
x = QBatchNormDense(8, activation="relu", name="bd1")(inp)
m = keras.Model(inp, QBatchNormDense(5, name="bd2", scale=False)(x), name="hgq_bndense")
for l in (m.get_layer("bd1"), m.get_layer("bd2")):
    l.moving_mean.assign(rng.normal(0, 0.5, l.moving_mean.shape).astype("float32"))
    l.moving_variance.assign(rng.uniform(0.3, 2.0, l.moving_variance.shape).astype("float32"))
    if l.scale:
        l.bn_gamma.assign(rng.uniform(0.5, 1.5, l.bn_gamma.shape).astype("float32"))
    l.bias.assign(rng.normal(0, 1, l.bias.shape).astype("float32"))
    for q in (l.kq.quantizer, l.bq.quantizer):
        q._b.assign(rng.integers(2, 8, tuple(q._b.shape)).astype(q._b.dtype))
m.save(sys.argv[1] + "/bnd.keras")
x = rng.normal(0, 1.5, (2000, 12)).astype("float32")
x[:500] = np.round(x[:500] * 16) / 16
np.save(sys.argv[1] + "/x.npy", x)
np.save(sys.argv[1] + "/y.npy", m.predict(x, verbose=0, batch_size=1024))
'''


@pytest.fixture(scope="module")
def hgq_models(tmp_path_factory, hgq: str) -> tuple[tuple[Path, np.ndarray, np.ndarray], tuple[Path, np.ndarray, np.ndarray]]:
    d = tmp_path_factory.mktemp("hgq")
    p, x, y = hgq_mlp(d / "hgq_mlp.keras", second=d / "hgq_seq.keras")
    return (p, x, y), (d / "hgq_seq.keras", x, np.load(d / "hgq_seq.y.npy").astype(np.float64))


@pytest.fixture(scope="module")
def hgq_model(hgq_models) -> tuple[Path, np.ndarray, np.ndarray]:
    return hgq_models[0]


def test_golden_model_equals_hgq_predict(hgq_model) -> None:
    p, x, want = hgq_model
    g = bondflow.load_model(p)
    assert [o.kind for o in g.ops] == ["element_quant", "dense", "activation", "element_quant", "dense", "activation",
                                       "element_quant", "dense", "element_quant"]
    eq = [o for o in g.ops if isinstance(o, ElementQuant)]
    assert [o.rounding.value + "/" + o.overflow.value for o in eq] == ["RND/WRAP", "TRN/SAT", "RND_CONV/SAT_SYM", "RND/SAT"]
    assert eq[0].f.tolist() == [3, 2, 4, 4, 0, 3, -3, 1] and str(eq[0].result_type) == "fixed<8,4>"
    assert (eq[1].k + eq[1].i + eq[1].f).tolist()[4] == 0 and eq[2].k.tolist()[2] == 0  # 0-bit elements
    assert str(g.input.type) == "fixed<9,4>"  # widest element type, one finer bit, truncated: RND per element is exact
    assert g.ops[1].weight_type.width <= 8 and (g.ops[1].weight == 0).any()  # the widest kernel element; pruned weights
    got = reference.run(g, x)
    assert len(x) >= 1000 and np.array_equal(got, want), f"{np.any(got != want, axis=1).sum()} of {len(x)} differ"
    assert len(np.unique(want, axis=0)) > 100
    tr = reference.trace_raw(g, reference.quantize_input(g, x))
    first = tr[eq[0].name]
    assert all(len(np.unique(first[:, j])) > 1 for j in range(8) if eq[0].types()[j] is not None)
    raw_in = tr[g.input.name]  # input 3 beyond its element's range (fixed<5,1>: -1..0.9375) wrapped: WRAP is exercised
    assert (np.abs(raw_in[:, 3]) >= 1 << 5).mean() > 0.3 and -16 <= first[:, 3].min() and first[:, 3].max() <= 15


def test_sequential_standalone_quantizer_oq_and_round_only_kernels_equal_hgq(hgq_models, tmp_path) -> None:
    p, x, want = hgq_models[1]
    g = bondflow.load_model(p)
    assert [o.kind for o in g.ops] == ["element_quant", "dense", "activation", "element_quant", "dense", "element_quant"]
    assert [o.name for o in g.ops if o.kind == "element_quant"] == ["in_q", "e2_iq", "e2_oq"]
    eq = g.ops[0]  # KBI: k + b bits; element 3 is a signed 1-bit {-1, 0}, element 4 has none (k, i, f all 0)
    assert (eq.k + eq.i + eq.f).tolist() == [5, 3, 6, 1, 0, 3, 4, 5] and eq.i.tolist()[4] == 0
    assert str(g.input.type) == "fixed<7,3>"  # widest fixed<6,3>; RND with fraction bits 0..3: one more, truncated
    got = reference.run(g, x)
    assert np.array_equal(got, want), f"{np.any(got != want, axis=1).sum()} of {len(x)} differ"
    assert len(np.unique(want, axis=0)) > 100
    export_onnx(g, tmp_path / "seq.onnx")
    assert bondflow.load_model(tmp_path / "seq.onnx").digest() == g.digest()


def test_qonnx_round_trip_keeps_the_digest(hgq_model, tmp_path) -> None:
    p, x, _ = hgq_model
    g = bondflow.load_model(p)
    export_onnx(g, tmp_path / "hgq.onnx")
    again = bondflow.load_model(tmp_path / "hgq.onnx")
    assert again.digest() == g.digest() and np.array_equal(reference.run(again, x[:200]), reference.run(g, x[:200]))
    assert Graph.from_json(g.to_json()).digest() == g.digest()


def test_element_quant_modes_on_raw_values() -> None:
    """One element per case, raw inputs on a 2^-3 grid: HGQ's rounding (RND ties up, RND_CONV ties to even) and overflow."""
    from bondflow.ir.graph import TensorSpec
    from bondflow.ir.types import FixedType
    x = np.array([[-13, -12, -4, 4, 12, 20, 60]]).T.repeat(2, axis=1)  # /8: -1.625 -1.5 -0.5 0.5 1.5 2.5 7.5
    cases = {("RND", "SAT"): [-2, -1, 0, 1, 1, 1, 1], ("RND_CONV", "WRAP"): [-2, -2, 0, 0, -2, -2, 0],
             ("TRN", "SAT_SYM"): [-1, -1, -1, 0, 1, 1, 1]}  # element 0 is fixed<2,2>: -2..1
    for (rnd, ovf), want in cases.items():
        op = ElementQuant(name="q", input="x", result_type=FixedType(4, 2), k=[1, 0], i=[1, -5], f=[0, 2],
                          rounding=rnd, overflow=ovf)
        got = reference.run(Graph("t", TensorSpec("x", 2, FixedType(8, 5)), (op,)), x / 8)
        assert got[:, 0].tolist() == want, (rnd, ovf)
        assert got[:, 1].tolist() == [0] * 7  # k + i + f = -3: no bits


@pytest.mark.sim
def test_dataflow_rtl_is_bit_exact(hgq_model, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    g = bondflow.load_model(hgq_model[0])
    d = bondflow.generate(g, "dataflow", multipliers="lut")
    r = bondflow.simulate(d.write(tmp_path / "d"), 1000, simulator="icarus", seed=3)
    assert r.passed and r.vectors == 1000, r.error
    assert r.latency_cycles == d.latency_cycles
    need_tool("verilator")
    from bondflow.sim.lint import lint
    assert lint(d).clean


@pytest.mark.sim
def test_da4ml_rtl_is_bit_exact(hgq_model, tmp_path, need_tool, da4ml) -> None:
    """The HGQ2 model through da4ml (each element its own cast in the traced program): RTL == golden model."""
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(hgq_model[0]), "da4ml")
    r = bondflow.simulate(d.write(tmp_path / "d"), 1000, simulator="icarus", seed=4)
    assert r.passed and r.vectors == 1000, r.error
    assert r.latency_cycles == d.latency_cycles


def _layer(cfg: dict, name: str) -> dict:
    return next(l for l in cfg["config"]["layers"] if l["config"].get("name") == name)


@pytest.mark.sim
def test_batchnorm_dense_equals_hgq_and_builds_bit_exact(hgq_models, tmp_path, need_tool) -> None:
    """QBatchNormDense: the fused float32 kernel and bias quantized as HGQ does; golden == HGQ predict on 2000 inputs,
    the QONNX round trip keeps the digest, dataflow RTL == golden."""
    r = subprocess.run([sys.executable, "-c", BN_BUILD, str(tmp_path)], capture_output=True, text=True,
                       env=hgq_child_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    g = bondflow.load_model(tmp_path / "bnd.keras")
    assert [o.kind for o in g.ops] == ["element_quant", "dense", "activation", "element_quant", "dense"]
    x, want = np.load(tmp_path / "x.npy").astype(np.float64), np.load(tmp_path / "y.npy").astype(np.float64)
    got = reference.run(g, x)
    assert np.array_equal(got, want), f"{np.any(got != want, axis=1).sum()} of {len(x)} differ"
    assert len(np.unique(want, axis=0)) > 1000
    export_onnx(g, tmp_path / "bnd.onnx")
    assert bondflow.load_model(tmp_path / "bnd.onnx").digest() == g.digest()
    need_tool("iverilog")
    d = bondflow.generate(g, "dataflow")
    res = bondflow.simulate(d.write(tmp_path / "d"), 300, simulator="icarus", seed=4)
    assert res.passed and res.vectors == 300, res.error


def test_unsupported_layer_kind_is_one_line(hgq_model, tmp_path) -> None:
    def edit(cfg: dict) -> None:
        _layer(cfg, "d2")["class_name"] = "QEinsumDenseBatchnorm"
    with pytest.raises(UnsupportedOpError, match=r"layer 'd2' of type 'QEinsumDenseBatchnorm' is not supported by bondflow's HGQ "
                                                 r"reader; supported: .*QDense") as e:
        bondflow.load_model(edited_keras(hgq_model[0], tmp_path / "einsum.keras", edit))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("key, value, match", [
    ("overflow_mode", "WRAP_SM", r"layer 'd1' input quantizer \(iq\) must round with one of .* and overflow with one of "
                                 r"\['SAT', 'SAT_SYM', 'WRAP'\], not RND/WRAP_SM"),
    ("q_type", "float", r"layer 'd1' input quantizer \(iq\) must be a fixed-point quantizer \(q_type kif or kbi\), not q_type 'float'"),
    ("scaler", 0.75, r"layer 'd1' input quantizer \(iq\) must have no scaler \(a plain fixed-point grid\), not scaler=0.75"),
])
def test_unrepresentable_quantizer_is_one_line(hgq_model, tmp_path, key, value, match) -> None:
    def edit(cfg: dict) -> None:
        _layer(cfg, "d1")["config"]["iq_conf"]["config"][key] = value
    with pytest.raises(QuantizationError, match=match) as e:
        bondflow.load_model(edited_keras(hgq_model[0], tmp_path / f"{key}.keras", edit))
    assert "\n" not in str(e.value)


def test_missing_weights_is_one_line(hgq_model, tmp_path) -> None:
    dst = tmp_path / "noweights.keras"
    with zipfile.ZipFile(hgq_model[0]) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            if item != "model.weights.h5":
                zout.writestr(item, zin.read(item))
    with pytest.raises(ModelLoadError, match="must hold model.weights.h5"):
        bondflow.load_model(dst)


def test_import_needs_no_hgq_keras_or_tensorflow(hgq_model) -> None:
    code = ("import sys; sys.modules['hgq'] = sys.modules['keras'] = sys.modules['tensorflow'] = None\n"
            "import bondflow; g = bondflow.load_model(sys.argv[1]); print(len(g.ops))")
    r = subprocess.run([sys.executable, "-c", code, str(hgq_model[0])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "9", r.stderr[-1000:]


@pytest.mark.sim
@pytest.mark.parametrize("arch", ["dataflow", "da4ml", "moldable"])
def test_element_quant_rtl_every_mode(arch, tmp_path, need_tool, request) -> None:
    """Three chained element_quant ops (RND_CONV/WRAP, TRN/SAT_SYM, RND/SAT) with element types wider than their input,
    signed 1-bit, 0-bit and negative-fraction elements, then a linear activation: RTL == golden model in dataflow
    (combinational casts), da4ml (a cast per element) and moldable (element-wise units)."""
    need_tool("iverilog")
    if arch == "da4ml":
        request.getfixturevalue("da4ml")
    from bondflow.ir.element_quant import element_types, widest_type
    from bondflow.ir.graph import TensorSpec
    from bondflow.ir.ops import Activation
    from bondflow.ir.types import FixedType, Overflow, Rounding
    kif = ([1, 0, 1, 0, 1, 1], [8, 1, 0, -3, 2, 1], [4, 2, 0, 1, -1, 3])
    ops, src = [], "x"
    for j, (rnd, ovf) in enumerate([("RND_CONV", "WRAP"), ("TRN", "SAT_SYM"), ("RND", "SAT")]):
        k, i, f = (np.roll(a, j) for a in map(np.array, kif))
        rt = widest_type(element_types(k, i, f, Rounding(rnd), Overflow(ovf)))
        ops.append(ElementQuant(name=f"q{j}", input=src, result_type=rt, k=k, i=i, f=f, rounding=rnd, overflow=ovf))
        src = f"q{j}"
    x = TensorSpec("x", 6, FixedType(7, 3))
    with pytest.raises(UnsupportedOpError, match="a pipeline of casts alone has no register"):  # dataflow's casts are wiring
        bondflow.generate(Graph("eq", x, tuple(ops)), "dataflow")
    g = Graph("eq", x, tuple(ops) + (Activation(name="out", input=src, result_type=ops[-1].result_type, function="linear"),))
    d = bondflow.generate(g, arch)
    r = bondflow.simulate(d.write(tmp_path / "d"), 500, simulator="icarus", seed=5)
    assert r.passed and r.vectors == 500, r.error
    assert r.latency_cycles == d.latency_cycles


@pytest.mark.hls4ml
@pytest.mark.parametrize("which", [0, 1])
def test_hls4ml_csim_is_bit_exact(hgq_models, which: int, tmp_path, need_tool) -> None:
    """hls4ml's own per-element casts (its FixedPointQuantizer, as for HGQ proxy models; one ap_fixed cast per element,
    every mode pair, 0-bit elements) with the graph's precisions: C simulation == golden model on 1000 vectors."""
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project
    from bondflow.sim.vectors import make_vectors
    g = bondflow.load_model(hgq_models[which][0])
    tv = make_vectors(g, 1000, 6)
    y = build_project(g, tmp_path / "hls").predict_raw(tv.inputs)
    bad = np.nonzero(np.any(y != tv.expected, axis=1))[0]
    assert bad.size == 0, f"{bad.size} of {len(y)} differ, first input {tv.inputs[bad[0]].tolist()}"
    assert len(np.unique(y, axis=0)) > 100
    casts = (tmp_path / "hls" / "firmware" / "nnet_utils" / "nnet_code_gen.h").read_text()
    modes = {f"AP_{o.rounding.value},AP_{o.overflow.value}" for o in g.ops if isinstance(o, ElementQuant)}
    assert all(m in casts for m in modes), modes  # every quantizer's own modes reach hls4ml's per-element casts


@pytest.mark.parametrize("arch", ["bondmachine"])
def test_other_architectures_refuse_element_quant(hgq_model, arch: str) -> None:
    with pytest.raises(UnsupportedOpError, match="'element_quant'") as e:
        bondflow.generate(bondflow.load_model(hgq_model[0]), arch)
    assert "\n" not in str(e.value)


def test_hgq_v1_layers_name_the_way_out(tmp_path) -> None:
    """HGQ v1 (tf.keras) models are refused in one line that says to save them with HGQ2."""
    cfg = {"class_name": "Sequential", "config": {"name": "hgq1", "layers": [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, 4]}},
        {"class_name": "HQuantize", "config": {"name": "inp_q"}},
        {"class_name": "HDense", "config": {"name": "h1", "units": 3}}]}}
    (tmp_path / "hgq1.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedOpError, match=r"2 layers are not supported by bondflow: HGQ v1 \(tf.keras\) layers are "
                                                 r"not read; rebuild the model with HGQ2") as e:
        bondflow.load_model(tmp_path / "hgq1.json")
    assert "\n" not in str(e.value)


def test_damaged_configs_give_one_line_errors(hgq_model, tmp_path) -> None:
    """Random edits of config.json (keys dropped, values of the wrong type): a typed bondflow error or a model, never a traceback."""
    from bondflow.errors import BondflowError
    rng = np.random.default_rng(0)
    junk = [None, 3, -1, "x", [], {}, [1, 2], 1.5, True]

    def nodes(obj, out):
        if isinstance(obj, dict):
            for k in obj:
                out.append((obj, k))
                nodes(obj[k], out)
        elif isinstance(obj, list):
            for j, v in enumerate(obj):
                out.append((obj, j))
                nodes(v, out)
        return out
    for t in range(60):
        def edit(cfg: dict) -> None:
            for _ in range(1 + t % 3):
                parent, key = (c := nodes(cfg, []))[rng.integers(len(c))]
                if isinstance(parent, dict) and rng.random() < 0.3:
                    del parent[key]
                else:
                    parent[key] = junk[rng.integers(len(junk))]
        try:
            bondflow.load_model(edited_keras(hgq_model[0], tmp_path / f"m{t}.keras", edit))
        except BondflowError as e:
            assert "\n" not in str(e)


def test_bundled_example_equals_hgq_predict(hgq_model) -> None:
    """examples/hgq_digits (widths learnt by HGQ's EBOPs penalty, 1-4 bits per input): the golden model equals HGQ's
    own predict on the example's test images, and classifies them as well as HGQ does."""
    from bondflow.frontend.keras3 import keras3_predict
    from bondflow.ir import reference
    path = Path(__file__).resolve().parents[2] / "examples" / "hgq_digits" / "model.keras"
    data = np.load(path.with_name("data.npz"))
    g = bondflow.load_model(path)
    bits = {int(k + i + f) for o in g.ops if isinstance(o, ElementQuant) for k, i, f in zip(o.k, o.i, o.f)}
    assert len(bits) >= 3  # heterogeneous: the example is what HGQ is for
    want, ref = keras3_predict(path, data["x_test"])
    assert want is not None, ref
    got = g.output.type.to_float(reference.run_raw(g, g.input.type.quantize(data["x_test"])))
    assert np.array_equal(got, want)
    assert np.mean(got.argmax(1) == data["y_test"]) >= 0.9

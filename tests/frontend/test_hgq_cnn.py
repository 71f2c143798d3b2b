"""HGQ2 CNNs (per-element precision over every pixel): golden model == HGQ's own predict, streaming RTL, QONNX round trip.

The models are built and run by HGQ in a child process (Keras 3; see test_hgq.py); every quantizer gets random
per-element widths, so each pixel position of each channel has its own type.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import QuantizationError, UnsupportedOpError
from bondflow.frontend.hgq_runtime import hgq_child_env
from bondflow.frontend.onnx_export import export_onnx
from bondflow.ir import reference
from bondflow.ir.element_quant import ElementQuant
from keras_zips import edited_keras

# A 2-D CNN (QConv2D valid + relu, QMaxPooling2D, QConv2D same, Flatten, QDense) and a 1-D one (QConv1D same +
# relu, QAveragePooling1D, QConv1D stride 2, Flatten, QDense); data-lane quantizers in four mode pairs, kernels KBI.
# Two more with QBatchNormalization (random moving statistics; on an image and on a vector, without scale, without
# center) and global average / max pooling, their widths drawn wider so that their outputs vary; and a Deep Sets
# network over 8 particles (QDense and QEinsumDense per particle, QSum over the particles, QDense).
BUILD = r'''
import os, sys
os.environ.pop("TF_USE_LEGACY_KERAS", None)
import numpy as np
import keras
from hgq.config import QuantizerConfig
from hgq.layers import (QAdd, QAveragePooling1D, QBatchNormalization, QConv1D, QConv2D, QDense, QEinsumDense,
                        QGlobalAveragePooling2D, QGlobalMaxPooling1D, QMaxPooling2D, QSum, Quantizer)

keras.utils.set_random_seed(3)
rng = np.random.default_rng(3)
Q = lambda r, o, t="kif": QuantizerConfig(t, "datalane", round_mode=r, overflow_mode=o)
inp = keras.Input((8, 8, 1))
x = QConv2D(4, (3, 3), activation="relu", name="c1", iq_conf=Q("RND", "SAT"))(inp)
x = QMaxPooling2D((2, 2), name="p1", iq_conf=Q("TRN", "WRAP"))(x)
x = QConv2D(3, (2, 2), padding="same", name="c2", iq_conf=Q("RND_CONV", "SAT_SYM", "kbi"))(x)
x = keras.layers.Flatten(name="fl")(x)
m2 = keras.Model(inp, QDense(5, name="d1")(x), name="hgq_cnn2d")
inp = keras.Input((16, 2))
y = QConv1D(4, 3, padding="same", activation="relu", name="k1", iq_conf=Q("TRN", "SAT"))(inp)
y = QAveragePooling1D(2, name="a1", iq_conf=Q("RND", "SAT"))(y)
y = QConv1D(3, 3, strides=2, name="k2")(y)
y = keras.layers.Flatten(name="fl")(y)
m1 = keras.Model(inp, QDense(4, name="d1")(y), name="hgq_cnn1d")
inp = keras.Input((4, 4, 2))
z = QConv2D(3, (3, 3), padding="same", name="c1", iq_conf=Q("RND", "SAT"))(inp)
z = QBatchNormalization(name="bn", iq_conf=Q("TRN", "SAT"))(z)
z = keras.layers.ReLU(name="r")(z)
z = QGlobalAveragePooling2D(name="gap")(z)
z = QBatchNormalization(name="bn2", scale=False)(z)
b2 = keras.Model(inp, QDense(2, name="d")(z), name="hgq_bn2d")
inp = keras.Input((8, 3))
z = QConv1D(4, 3, name="k1", iq_conf=Q("RND", "SAT"))(inp)
z = QBatchNormalization(name="bn", center=False)(z)
z = QGlobalMaxPooling1D(name="gmp")(z)
b1 = keras.Model(inp, QDense(3, name="d")(z), name="hgq_bn1d")
inp = keras.Input((8, 3))
z = QDense(6, activation="relu", name="phi1", iq_conf=Q("RND", "SAT"))(inp)
z = QEinsumDense("bnc,cd->bnd", output_shape=(8, 5), bias_axes="d", activation="relu", name="phi2")(z)
z = QSum(axes=1, scale=0.125, name="pool")(z)
ds = keras.Model(inp, QDense(4, name="rho")(z), name="hgq_deepsets")
inp = keras.Input((8,))
q = Quantizer(Q("RND", "SAT"), name="in_q")(inp)
a = QDense(6, activation="relu", name="a")(q)
s1 = QAdd(name="add1")([a, QDense(6, name="b")(a)])
s2 = QAdd(name="add2", iq_confs=Q("TRN", "WRAP"))([QDense(6, activation="relu", name="c")(s1), s1])
rm = keras.Model(inp, QDense(4, name="out")(keras.layers.Concatenate(name="cat")([s2, a])), name="hgq_res_mlp")
inp = keras.Input((6, 6, 2))
c1 = QConv2D(4, (3, 3), padding="same", activation="relu", name="c1", iq_conf=Q("RND", "SAT"))(inp)
r = QAdd(name="add")([c1, QConv2D(4, (3, 3), padding="same", name="c2")(c1)])
r = keras.layers.Concatenate(name="cat")([r, c1])
r = keras.layers.Flatten(name="fl")(QMaxPooling2D((2, 2), name="p")(r))
rc = keras.Model(inp, QDense(3, name="d")(r), name="hgq_res_cnn")


def randomize(q, wide):
    if hasattr(q, "quantizers"):  # a merge's one quantizer per input
        for one in q.quantizers:
            randomize(one, wide)
        return
    q = q.quantizer
    kbi = hasattr(q, "_b")
    shape = tuple((q._b if kbi else q._f).shape)
    if getattr(q, "_k", None) is not None and len(q._k.shape):
        k = rng.integers(0, 2, shape) | (rng.random(shape) < 0.7) if wide else rng.integers(0, 2, shape)
        q._k.assign(k.astype(q._k.dtype))
    if kbi:
        q._b.assign(rng.integers(*((3, 8) if wide else (0, 6)), shape).astype(q._b.dtype))
        q._i.assign(rng.integers(*((-1, 3)), shape).astype(q._i.dtype))
    else:
        q._f.assign(rng.integers(*((2, 6) if wide else (0, 5)), shape).astype(q._f.dtype))
        q._i.assign(rng.integers(*((1, 5) if wide else (-1, 4)), shape).astype(q._i.dtype))


out = sys.argv[1]
for m in (m2, m1, b2, b1, ds, rm, rc):
    for l in m.layers:
        if isinstance(l, Quantizer):
            randomize(l, True)
        for a in ("iq", "kq", "bq"):
            if getattr(l, a, None) is not None:
                randomize(getattr(l, a), m.name != "hgq_cnn2d" and m.name != "hgq_cnn1d")
        if getattr(l, "bias", None) is not None:
            l.bias.assign(rng.normal(0, 1, l.bias.shape).astype("float32"))
        if isinstance(l, QBatchNormalization):
            l.moving_mean.assign(rng.normal(0, 1, l.moving_mean.shape).astype("float32"))
            l.moving_variance.assign(rng.uniform(0.2, 3, l.moving_variance.shape).astype("float32"))
            for v in (l.bn_gamma, l.bn_beta):
                if v is not None:
                    v.assign(rng.normal(0.5, 0.5, v.shape).astype("float32"))
    x = rng.normal(0, 2, (2000,) + m.input_shape[1:]).astype("float32")
    x[:500] = np.round(x[:500] * 16) / 16  # ties of every rounding
    m.save(f"{out}/{m.name}.keras")
    np.save(f"{out}/{m.name}.x.npy", x)
    np.save(f"{out}/{m.name}.y.npy", np.asarray(m.predict(x, verbose=0, batch_size=1024)))
'''


MODELS = ("hgq_cnn2d", "hgq_cnn1d", "hgq_bn2d", "hgq_bn1d", "hgq_deepsets", "hgq_res_mlp", "hgq_res_cnn")

#: hls4ml's C simulation compiles every io_parallel convolution unrolled (1-5 min each on 2 cores): CI runs the Deep
#: Sets network (per-position casts, 1x1 and full-length convolutions) and the residual MLP (merges); the 2-D, 1-D and
#: batchnorm CNNs passed the same test by hand, as the bundled digits CNN did (docs/frontend.md).
CSIM_MODELS = ["hgq_deepsets", "hgq_res_mlp"]


@pytest.fixture(scope="module")
def cnns(tmp_path_factory, hgq: str) -> dict[str, tuple[Path, np.ndarray, np.ndarray]]:
    d = tmp_path_factory.mktemp("hgq_cnn")
    r = subprocess.run([sys.executable, "-c", BUILD, str(d)], capture_output=True, text=True, env=hgq_child_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return {n: (d / f"{n}.keras", np.load(d / f"{n}.x.npy").astype(np.float64), np.load(d / f"{n}.y.npy").astype(np.float64))
            for n in MODELS}


@pytest.mark.parametrize("name, kinds", [
    ("hgq_cnn2d", ["element_quant", "conv", "activation", "element_quant", "pool", "element_quant", "conv", "flatten",
                   "element_quant", "dense"]),
    ("hgq_cnn1d", ["element_quant", "conv", "activation", "element_quant", "pool", "element_quant", "conv", "flatten",
                   "element_quant", "dense"]),
    ("hgq_bn2d", ["element_quant", "conv", "element_quant", "conv", "activation", "element_quant", "pool", "element_quant",
                  "dense", "element_quant", "dense"]),
    ("hgq_bn1d", ["element_quant", "conv", "element_quant", "conv", "element_quant", "pool", "element_quant", "dense"]),
    # per-particle dense layers as 1x1 convolutions, the sum over particles a full-length depthwise one
    ("hgq_deepsets", ["element_quant", "conv", "activation", "element_quant", "conv", "activation", "element_quant",
                         "conv", "flatten", "element_quant", "dense"]),
    # branches: QAdd quantizes each input (its own per-element widths), then an exact add; Concatenate aligns exactly
    ("hgq_res_mlp", ["element_quant", "element_quant", "dense", "activation", "element_quant", "dense", "element_quant",
                     "element_quant", "merge", "element_quant", "dense", "activation", "element_quant", "element_quant",
                     "merge", "merge", "element_quant", "dense"]),
    ("hgq_res_cnn", ["element_quant", "conv", "activation", "element_quant", "conv", "element_quant", "element_quant",
                     "merge", "merge", "element_quant", "pool", "flatten", "element_quant", "dense"]),
])
def test_golden_model_equals_hgq_predict(cnns, name: str, kinds: list[str]) -> None:
    p, x, want = cnns[name]
    g = bondflow.load_model(p)
    assert [o.kind for o in g.ops] == kinds
    shapes = g.shapes()
    first = g.ops[0]
    assert isinstance(first, ElementQuant) and shapes[first.name] == g.input.shape == x.shape[1:]
    # per position, not per channel: one channel's pixels have different types
    c = g.input.shape[-1] if len(g.input.shape) > 1 else 1  # an MLP: per feature
    per_pixel = [(k, i, f) for k, i, f in zip(first.k[::c], first.i[::c], first.f[::c])]
    assert len(set(per_pixel)) > 3
    got = reference.run(g, x.reshape(len(x), -1))
    assert len(x) >= 1000 and np.array_equal(got, want), f"{np.any(got != want, axis=1).sum()} of {len(x)} differ"
    assert len(np.unique(want, axis=0)) > (50 if name == "hgq_bn2d" else 100)  # its global pooling averages a lot away
    for op in g.ops:  # QBatchNormalization: one scale per channel, nothing across channels
        if op.kind == "conv" and op.name.startswith("bn"):
            assert op.groups == op.c_in == op.c_out and op.kernel == (1,) * len(op.kernel)


@pytest.mark.parametrize("name", MODELS)
def test_qonnx_round_trip_keeps_the_digest(cnns, name: str, tmp_path) -> None:
    g = bondflow.load_model(cnns[name][0])
    export_onnx(g, tmp_path / "m.onnx")
    assert bondflow.load_model(tmp_path / "m.onnx").digest() == g.digest()


@pytest.mark.sim
@pytest.mark.parametrize("name, parallelism, vectors", [("hgq_cnn2d", None, 1000), ("hgq_cnn1d", 1, 300),
                                                      ("hgq_bn2d", None, 300), ("hgq_bn1d", 2, 300),
                                                      ("hgq_deepsets", None, 300), ("hgq_cnn2d", "auto", 300),
                                                      ("hgq_res_mlp", None, 300), ("hgq_res_cnn", None, 300)])
def test_dataflow_rtl_is_bit_exact(cnns, name: str, parallelism: "int | str | None", vectors: int, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    g = bondflow.load_model(cnns[name][0])
    d = bondflow.generate(g, "dataflow", parallelism=parallelism)
    r = bondflow.simulate(d.write(tmp_path / "d"), vectors, simulator="icarus", seed=3)
    assert r.passed and r.vectors == vectors, r.error
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == pytest.approx(d.ii_cycles, abs=0.5)
    if parallelism == "auto":  # the tail's per-element casts sit combinationally in front of its shared dense
        assert d.info["tail_reuse_factor"]["d1"] > 1
    need_tool("verilator")
    from bondflow.sim.lint import lint
    assert lint(d).clean


@pytest.mark.sim
def test_positional_cast_is_checked(cnns, tmp_path, need_tool) -> None:
    """A pixel counter that wraps one position early applies the wrong pixels' casts: the harness must catch it."""
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(cnns["hgq_cnn2d"][0]), "dataflow")
    out = d.write(tmp_path / "d")
    f = out / "rtl" / "bondflow_dataflow_c1_iq_quant_hs.v"
    text = f.read_text()
    assert "6'd63)" in text
    f.write_text(text.replace("6'd63)", "6'd62)"))
    r = bondflow.simulate(out, 100, simulator="icarus", seed=1, check=False)
    assert not r.passed and r.mismatches > 0


@pytest.mark.sim
def test_moldable_rtl_is_bit_exact(cnns, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(cnns["hgq_cnn1d"][0]), "moldable")
    r = bondflow.simulate(d.write(tmp_path / "d"), 100, simulator="icarus", seed=2)
    assert r.passed and r.vectors == 100, r.error


@pytest.mark.hls4ml
@pytest.mark.parametrize("name", CSIM_MODELS)
def test_hls4ml_csim_is_bit_exact(cnns, name: str, tmp_path, need_tool) -> None:
    """Per-pixel casts go to hls4ml's FixedPointQuantizer, which exists for io_parallel only: the generator picks
    io_parallel for such images, and hls4ml's C simulation equals the golden model on HGQ's own inputs."""
    need_tool("g++")
    from bondflow.codegen.hls4ml.generator import build_project, io_type_for
    p, x, _ = cnns[name]
    g = bondflow.load_model(p)
    assert io_type_for(g) == "io_parallel"
    xr = reference.quantize_input(g, x.reshape(len(x), -1))
    y = build_project(g, tmp_path / "hls").predict_raw(xr)
    want = reference.run_raw(g, xr)
    bad = np.nonzero(np.any(y != want, axis=1))[0]
    assert bad.size == 0, f"{bad.size} of {len(y)} differ, first input {xr[bad[0]].tolist()}"
    assert len(np.unique(y, axis=0)) > 100
    casts = (tmp_path / "hls" / "firmware" / "nnet_utils" / "nnet_code_gen.h").read_text()
    modes = {f"AP_{o.rounding.value},AP_{o.overflow.value}" for o in g.ops if isinstance(o, ElementQuant)}
    assert all(m in casts for m in modes), modes  # every quantizer's own modes reach hls4ml's per-pixel casts


@pytest.mark.parametrize("arch", ["da4ml", "bondmachine"])
def test_other_architectures_refuse_in_one_line(cnns, arch: str) -> None:
    with pytest.raises(UnsupportedOpError) as e:
        bondflow.generate(bondflow.load_model(cnns["hgq_cnn2d"][0]), arch)
    assert "\n" not in str(e.value) and ("'element_quant" in str(e.value) or "'conv'" in str(e.value))


def _edited(src: Path, dst: Path, layer: str, **changes: object) -> Path:
    """A copy of the .keras zip with ``changes`` made to ``layer``'s config."""
    def edit(cfg: dict) -> None:
        next(l for l in cfg["config"]["layers"] if l["config"].get("name") == layer)["config"].update(changes)
    return edited_keras(src, dst, edit)


def _rewired(src: Path, dst: Path, edit) -> Path:
    """A copy of the .keras zip whose layers (by name) ``edit`` rewired."""
    return edited_keras(src, dst, lambda cfg: edit({l["config"]["name"]: l for l in cfg["config"]["layers"]}))


def test_unsupported_wiring_is_one_line(cnns, tmp_path) -> None:
    """A shared layer (called twice) and a branch straight off the float input: one line each, naming the layer."""
    src = cnns["hgq_res_mlp"][0]

    def shared(layers: dict) -> None:
        layers["b"]["inbound_nodes"] = layers["b"]["inbound_nodes"] * 2

    def float_branch(layers: dict) -> None:
        layers["b"]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = next(
            n for n, l in layers.items() if l["class_name"] == "InputLayer")
    def float_merge(layers: dict) -> None:
        layers["cat"]["inbound_nodes"][0]["args"][0][1]["config"]["keras_history"][0] = next(
            n for n, l in layers.items() if l["class_name"] == "InputLayer")
    for edit, match in ((shared, r"layer 'b' of type 'QDense called 2 times \(a shared layer\)'"),
                        (float_branch, r"layer 'b' of type 'a second layer reading the float input'"),
                        (float_merge, r"layer 'cat' must merge quantized tensors .*not the float input")):
        with pytest.raises((UnsupportedOpError, QuantizationError), match=match) as e:
            bondflow.load_model(_rewired(src, tmp_path / f"{edit.__name__}.keras", edit))
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("layer, changes, match", [
    ("c1", {"dilation_rate": [2, 2]}, r"layer 'c1' of type 'QConv2D dilation_rate=\[2, 2\]' is not supported by bondflow's "
                                      r"HGQ reader \(dilation_rate must be 1\)"),
    ("c2", {"padding": "causal"}, r"layer 'c2' of type 'QConv2D padding=causal' is not supported"),
    ("c1", {"activation": "tanh"}, r"layer 'c1' of type 'QConv2D activation tanh' is not supported"),
    ("phi2", {"equation": "bnc,nd->bcd"}, r"layer 'phi2' of type 'QEinsumDense equation 'bnc,nd->bcd' \(bias axes 'd'\)' "
                                          r"is not supported by bondflow's HGQ reader \(a dense over the last axis"),
    ("pool", {"axes": [2]}, r"layer 'pool' of type 'QSum axes=\[2\] keepdims=False scale=0.125' is not supported"),
])
def test_unsupported_conv_options_are_one_line(cnns, tmp_path, layer: str, changes: dict, match: str) -> None:
    model = "hgq_deepsets" if layer in ("phi2", "pool") else "hgq_cnn2d"
    with pytest.raises(UnsupportedOpError, match=match) as e:
        bondflow.load_model(_edited(cnns[model][0], tmp_path / "m.keras", layer, **changes))
    assert "\n" not in str(e.value)


def test_bundled_example_equals_hgq_predict(cnns) -> None:
    """examples/hgq_digits_cnn (widths per pixel and channel learnt by HGQ's EBOPs penalty): the golden model equals
    HGQ's own predict on the example's test images and classifies them as well as HGQ does."""
    from bondflow.frontend.keras3 import keras3_predict
    path = Path(__file__).resolve().parents[2] / "examples" / "hgq_digits_cnn" / "model.keras"
    data = np.load(path.with_name("data.npz"))
    g = bondflow.load_model(path)
    assert g.input.shape == (8, 8, 1) and sum(o.kind == "conv" for o in g.ops) == 2
    bits = {int(k + i + f) for o in g.ops if isinstance(o, ElementQuant) for k, i, f in zip(o.k, o.i, o.f)}
    assert len(bits) >= 3  # heterogeneous: the example is what HGQ is for
    x = data["x_test"].reshape((-1, 8, 8, 1))
    want, ref = keras3_predict(path, x)
    assert want is not None, ref
    got = g.output.type.to_float(reference.run_raw(g, g.input.type.quantize(data["x_test"])))
    assert len(x) >= 400 and np.array_equal(got, want)
    assert np.mean(got.argmax(1) == data["y_test"]) >= 0.9


def test_info_shows_each_quantizers_width_spread(cnns) -> None:
    """`bondflow info` says how wide each per-element quantizer's elements are (the spread is the point of HGQ)."""
    import re
    g = bondflow.load_model(cnns["hgq_cnn2d"][0])
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "info", str(cnns["hgq_cnn2d"][0]), "--no-fidelity"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for op in (o for o in g.ops if isinstance(o, ElementQuant)):
        bits = op.k + op.i + op.f
        line = next(x for x in r.stdout.splitlines() if x.startswith(op.name + " "))
        m = re.search(r"quant (\d+)-(\d+) bits, mean (\d+\.\d)(, (\d+) pruned)?", line)
        assert m and (int(m[1]), int(m[2])) == (bits.min(), bits.max()), line
        assert float(m[3]) == pytest.approx(bits.mean(), abs=0.05)
        assert int(m[5] or 0) == np.count_nonzero(bits <= 0)

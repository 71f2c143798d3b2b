"""HGQ v1 proxy models (.h5 of plain Keras layers + FixedPointQuantizer): golden model == bondflow's TF FixedPointQuantizer
bit for bit, dataflow RTL == golden model, one-line refusals. The models are built here in the zoo files' layout."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import bondflow
from bondflow.errors import ModelLoadError, QuantizationError, UnsupportedOpError
from bondflow.ir import reference
from bondflow.ir.element_quant import ElementQuant

N = 2000


def _widths(rng: np.random.Generator, shape: tuple[int, ...], signed: "float | int", b: tuple[int, int],
            i: tuple[int, int], pruned: float) -> list[np.ndarray]:
    """Per-element keep_negative, bits, integers (ap_fixed's I, with the sign); a share of elements of 0 bits."""
    k = (rng.random(shape) < signed).astype(np.int8)
    bits = rng.integers(b[0], b[1] + 1, shape).astype(np.int8)
    bits[rng.random(shape) < pruned] = 0
    ints = (rng.integers(i[0], i[1] + 1, shape) + k).astype(np.int8)
    return [np.where(bits == 0, 0, k).astype(np.int8), bits, np.where(bits == 0, 0, ints).astype(np.int8)]


def _grid(rng: np.random.Generator, shape: tuple[int, ...], t: tuple[int, int], sparse: float = 0.3) -> np.ndarray:
    """Random values on fixed<W, I>'s grid (signed), some exactly 0 (HGQ prunes weights)."""
    w, i = t
    raw = rng.integers(-(2 ** (w - 1)), 2 ** (w - 1), shape)
    raw[rng.random(shape) < sparse] = 0
    return (raw * 2.0 ** (i - w)).astype(np.float32)


def _save(model, path: Path, quantizers: dict[str, list[np.ndarray]], dense: dict[str, list[np.ndarray]]) -> Path:
    for name, ws in {**quantizers, **dense}.items():
        model.get_layer(name).set_weights(ws)
    model.save(str(path), save_format="h5")
    return path


def _fpq(tfk):
    from bondflow.frontend.hgq_proxy_tf import fixed_point_quantizer_class
    return fixed_point_quantizer_class(tfk)


def proxy_mlp(path: Path, seed: int = 0) -> Path:
    """8 -> q(RND, SAT; signed/unsigned, 0-bit) -> Dense 12 -> q(TRN, WRAP, one width) -> relu -> q(TRN, SAT, per element,
    0-bit) -> Dense 4 -> q(RND, WRAP, per element), with HGQ's overrides naming each Dense's weight_t/bias_t."""
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    FPQ = _fpq(tfk)
    rng = np.random.default_rng(seed)
    ov = lambda layer, w, b: {"layers": {layer: {"weight_t": f"fixed<{w[0]},{w[1]}>", "bias_t": f"fixed<{b[0]},{b[1]}>"}}}
    x = inp = tfk.Input((8,), name="input_1")
    x = FPQ(RND="RND", SAT="SAT", shape=(1, 8), name="inp_q_quantizer")(x)
    x = tfk.layers.Dense(12, name="dense_1")(x)
    x = FPQ(RND="TRN", SAT="WRAP", shape=(1,), overrides=ov("dense_1", (6, 2), (8, 3)), fusible=True, name="dense_1_quantizer")(x)
    x = tfk.layers.Activation("relu", name="dense_1_relu")(x)
    x = FPQ(RND="TRN", SAT="SAT", shape=(1, 12), name="dense_1_relu_quantizer")(x)
    x = tfk.layers.Dense(4, name="dense_2")(x)
    x = FPQ(RND="RND", SAT="WRAP", shape=(1, 4), overrides=ov("dense_2", (5, 1), (6, 2)), name="dense_2_quantizer")(x)
    model = tfk.Model(inp, x)
    return _save(model, path, {
        "inp_q_quantizer": _widths(rng, (1, 8), 0.7, (1, 6), (0, 3), 0.15),
        "dense_1_quantizer": [np.int8([1]), np.int8([7]), np.int8([3])],
        "dense_1_relu_quantizer": _widths(rng, (1, 12), 0, (1, 5), (0, 2), 0.25),
        "dense_2_quantizer": _widths(rng, (1, 4), 1, (3, 6), (1, 3), 0)},
        {"dense_1": [_grid(rng, (8, 12), (6, 2)), _grid(rng, (12,), (8, 3))],
         "dense_2": [_grid(rng, (12, 4), (5, 1)), _grid(rng, (4,), (6, 2))]})


def proxy_cnn(path: Path, seed: int = 1) -> Path:
    """(6, 6) -> q(TRN, WRAP, per column) -> Reshape (6, 6, 1) -> Conv2D 3x3 x3 -> q(RND, SAT) -> relu -> q(TRN, WRAP, per
    channel, one channel pruned) -> MaxPooling2D -> Flatten -> Dense 3 -> q(RND, SAT_SYM, per element)."""
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    FPQ = _fpq(tfk)
    rng = np.random.default_rng(seed)
    x = inp = tfk.Input((6, 6), name="input_1")
    x = FPQ(RND="TRN", SAT="WRAP", shape=(1, 1, 6), name="h_quantize_quantizer")(x)
    x = tfk.layers.Reshape((6, 6, 1), name="p_reshape")(x)
    x = tfk.layers.Conv2D(3, 3, name="h_conv2d")(x)
    x = FPQ(RND="RND", SAT="SAT", shape=(1,), overrides={"layers": {"h_conv2d": {"weight_t": "fixed<5,2>", "bias_t": "fixed<6,2>"}}},
            name="h_conv2d_quantizer")(x)
    x = tfk.layers.Activation("relu", name="h_conv2d_relu")(x)
    x = FPQ(RND="TRN", SAT="WRAP", shape=(1, 1, 1, 3), name="h_conv2d_relu_quantizer")(x)
    x = tfk.layers.MaxPooling2D(2, name="p_max_pooling2d")(x)
    x = tfk.layers.Flatten(name="p_flatten")(x)
    x = tfk.layers.Dense(3, name="h_dense")(x)
    x = FPQ(RND="RND", SAT="SAT_SYM", shape=(1, 3), name="h_dense_quantizer")(x)  # no overrides: the coarsest exact grid
    model = tfk.Model(inp, x)
    relu_q = [np.int8([[[[0, 0, 0]]]]), np.int8([[[[3, 0, 4]]]]), np.int8([[[[2, 0, 1]]]])]  # channel 1 pruned
    return _save(model, path, {
        "h_quantize_quantizer": _widths(rng, (1, 1, 6), 0.5, (0, 4), (0, 2), 0.1),
        "h_conv2d_quantizer": [np.int8([1]), np.int8([6]), np.int8([3])],
        "h_conv2d_relu_quantizer": relu_q,
        "h_dense_quantizer": [np.int8([[1, 1, 1]]), np.int8([[7, 1, 8]]), np.int8([[4, 1, 5]])]},  # a signed 1-bit SAT_SYM: 0
        {"h_conv2d": [_grid(rng, (3, 3, 1, 3), (5, 2)), _grid(rng, (3,), (6, 2))],
         "h_dense": [_grid(rng, (12, 3), (4, 1)), _grid(rng, (3,), (4, 1))]})


@pytest.fixture(scope="module")
def proxies(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("proxy")
    return {"mlp": proxy_mlp(d / "mlp.h5"), "cnn": proxy_cnn(d / "cnn.h5")}


def _inputs(g, scale: float, seed: int = 0) -> np.ndarray:
    """Float32 inputs beyond the quantizers' ranges (so WRAP and SAT act), as the TF reference receives them."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, g.input.size)) * scale).astype(np.float32).astype(np.float64)


def _tf(path: Path, x: np.ndarray) -> np.ndarray:
    from bondflow.frontend.hgq_proxy_tf import REFERENCE, proxy_predict
    y, what = proxy_predict(path, x)
    assert y is not None and what == REFERENCE, what
    return y


def test_files_have_the_zoo_layout(proxies) -> None:
    """What HGQ v1 writes: class FixedPointQuantizer with RND/SAT/shape/overrides/fusible; int8 keep_negative/bits/integers."""
    with h5py.File(proxies["mlp"], "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        q = [l for l in cfg["config"]["layers"] if l["class_name"] == "FixedPointQuantizer"]
        assert len(q) == 4 and {"RND", "SAT", "shape", "overrides", "fusible"} <= set(q[1]["config"])
        names = [n.decode() if isinstance(n, bytes) else n for n in f["model_weights/dense_1_quantizer"].attrs["weight_names"]]
        assert [n.split("/")[-1] for n in names] == ["keep_negative:0", "bits:0", "integers:0"]
        assert f["model_weights/dense_1_quantizer"][names[1]].dtype == np.int8


@pytest.mark.parametrize("which, scale", [("mlp", 6.0), ("cnn", 3.0)])
def test_golden_model_equals_tf_reference(proxies, which: str, scale: float) -> None:
    g = bondflow.load_model(proxies[which])
    assert g.meta["source_format"] == "hgq_proxy"
    quants = [o for o in g.ops if isinstance(o, ElementQuant)]
    assert len(quants) == 4 and any((q.k + q.i + q.f == 0).any() for q in quants)  # pruned elements are kept as 0
    x = _inputs(g, scale)
    y, yr = reference.run(g, x), _tf(proxies[which], x)
    assert y.shape == yr.shape == (N, 4 if which == "mlp" else 3)
    assert int(np.any(y != yr, axis=1).sum()) == 0
    assert len(np.unique(y, axis=0)) > N // 10  # not a degenerate model: the comparison has something to compare


def test_modes_and_widths_are_read_as_hgq_means_them(proxies) -> None:
    """The element types: fixed<b, I> (I counts the sign), ufixed when keep_negative is 0; 0 bits is always 0."""
    g = bondflow.load_model(proxies["cnn"])
    q = {o.name: o for o in g.ops if isinstance(o, ElementQuant)}
    relu_q = q["h_conv2d_relu_quantizer"]
    assert (relu_q.rounding.value, relu_q.overflow.value) == ("TRN", "WRAP")
    types = relu_q.types()[:3]
    assert str(types[0]) == "ufixed<3,2>" and types[1] is None and str(types[2]) == "ufixed<4,1>"
    out = q["h_dense_quantizer"].types()
    assert str(out[0]) == "fixed<7,4,RND,SAT_SYM>" and out[1] is None  # signed 1-bit SAT_SYM: HGQ's range [-0, 0]
    assert g.input.shape == (6, 6, 1)  # the Reshape of the input is the input's own shape


def test_a_changed_mode_changes_the_outputs(proxies, tmp_path) -> None:
    """The comparison can fail: the same file with RND read as TRN gives other golden outputs."""
    p = _edit(proxies["mlp"], tmp_path / "trn.h5", lambda cfg: _layer(cfg, "dense_2_quantizer").update(RND="TRN"))
    x = _inputs(bondflow.load_model(p), 6.0)
    assert np.any(reference.run(bondflow.load_model(p), x) != _tf(proxies["mlp"], x))


@pytest.mark.sim
@pytest.mark.parametrize("which, vectors", [("mlp", 1000), ("cnn", 200)])
def test_dataflow_rtl_is_bit_exact(proxies, which: str, vectors: int, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(proxies[which]), "dataflow")
    r = bondflow.simulate(d.write(tmp_path / "d"), vectors, simulator="icarus", seed=3)
    assert r.passed and r.vectors == vectors, r.error
    assert r.latency_cycles == d.latency_cycles


def _layer(cfg: dict, name: str) -> dict:
    return next(l["config"] for l in cfg["config"]["layers"] if l["config"]["name"] == name)


def _edit(src: Path, dst: Path, change=None, weights=None) -> Path:
    """A copy of a proxy .h5 with its config and/or one weight array changed."""
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        if change is not None:
            cfg = json.loads(f.attrs["model_config"])
            change(cfg)
            f.attrs["model_config"] = json.dumps(cfg)
        if weights is not None:
            weights(f)
    return dst


def _first(f: h5py.File, layer: str, short: str) -> h5py.Dataset:
    g = f[f"model_weights/{layer}"]
    return g[next(n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]
                  if (n.decode() if isinstance(n, bytes) else n).split("/")[-1].startswith(short))]


def test_weight_off_its_grid_is_one_line(proxies, tmp_path) -> None:
    def off(f: h5py.File) -> None:
        k = _first(f, "dense_1", "kernel")
        v = k[...]
        v[2, 3] = 0.3
        k[...] = v
    p = _edit(proxies["mlp"], tmp_path / "off.h5", weights=off)
    with pytest.raises(ModelLoadError, match=r"layer 'dense_1' kernel must lie on the 2\^-4 grid of its declared "
                                             r"fixed<6,2>, not 0\.3 at \(2, 3\)") as e:
        bondflow.load_model(p)
    assert "\n" not in str(e.value)

    def beyond(f: h5py.File) -> None:
        b = _first(f, "dense_2", "bias")
        b[...] = np.float32([4.0, 0, 0, 0])  # on the grid, beyond fixed<6,2>
    with pytest.raises(ModelLoadError, match=r"layer 'dense_2' bias must fit its declared fixed<6,2"):
        bondflow.load_model(_edit(proxies["mlp"], tmp_path / "beyond.h5", weights=beyond))


@pytest.mark.parametrize("key, value, err, match", [
    ("RND", "RND_ZERO", QuantizationError, r"layer 'dense_1_quantizer' \(FixedPointQuantizer\) must round with one of "
                                           r"\['RND', 'RND_CONV', 'TRN'\] and overflow with one of .*, not RND_ZERO/WRAP"),
    ("SAT", "WRAP_SM", QuantizationError, r"not TRN/WRAP_SM")])
def test_unknown_mode_is_one_line(proxies, tmp_path, key: str, value: str, err: type, match: str) -> None:
    p = _edit(proxies["mlp"], tmp_path / "mode.h5", lambda cfg: _layer(cfg, "dense_1_quantizer").update({key: value}))
    with pytest.raises(err, match=match) as e:
        bondflow.load_model(p)
    assert "\n" not in str(e.value)


def test_unsupported_layers_and_branches_are_one_line(proxies, tmp_path) -> None:
    def add_layers(cfg: dict) -> None:
        layers = cfg["config"]["layers"]
        _layer(cfg, "dense_1_relu")["activation"] = "tanh"
        layers.insert(3, {"class_name": "BatchNormalization", "config": {"name": "bn"}, "inbound_nodes": []})
    with pytest.raises(UnsupportedOpError, match=r"2 layers are not supported by bondflow's HGQ proxy-model reader: "
                                                 r"BatchNormalization x1 \('bn'\); Activation tanh x1") as e:
        bondflow.load_model(_edit(proxies["mlp"], tmp_path / "bn.h5", add_layers))
    assert "\n" not in str(e.value)

    def branch(cfg: dict) -> None:  # dense_2 reads the input quantizer instead of the layer before it
        l = next(l for l in cfg["config"]["layers"] if l["config"]["name"] == "dense_2")
        l["inbound_nodes"] = [[["inp_q_quantizer", 0, 0, {}]]]
    with pytest.raises(UnsupportedOpError, match=r"a branch"):
        bondflow.load_model(_edit(proxies["mlp"], tmp_path / "br.h5", branch))


def test_damaged_files_give_one_line_errors(proxies, tmp_path) -> None:
    """Dropped weights, wrong shapes, junk widths: a typed bondflow error, never a traceback."""
    from bondflow.errors import BondflowError

    def drop(f: h5py.File) -> None:
        del f["model_weights/dense_1_relu_quantizer"]
    def neg(f: h5py.File) -> None:
        _first(f, "inp_q_quantizer", "keep_negative")[...] = np.int8(3)
    for i, w in enumerate((drop, neg)):
        with pytest.raises(BondflowError) as e:
            bondflow.load_model(_edit(proxies["mlp"], tmp_path / f"d{i}.h5", weights=w))
        assert "\n" not in str(e.value)


def test_fidelity_names_the_reference(proxies) -> None:
    from bondflow.fidelity import measure
    g = bondflow.load_model(proxies["mlp"])
    fid = measure(g, proxies["mlp"], samples=300)
    assert fid.reference == "Keras predict (bondflow's FixedPointQuantizer in TensorFlow)"
    assert fid.max_error == 0.0 and fid.agreement == 1.0

"""BinaryDense/TernaryDense + BatchNormalization + binary_tanh/ternary_tanh Keras JSON models (hls4ml's old BNN examples): exact import, fidelity, RTL."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import ModelLoadError, QuantizationError
from bondflow.fidelity import measure
from bondflow.ir import reference

DEFAULT = "fixed<16,6>"


def _tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


def bnn_json(path: Path, kind: str, seed: int, final_act: bool = False, H: float = 1.0) -> Path:
    """A 16-24-12-5 BinaryDense or TernaryDense network written as the zoo's files are: JSON + <stem>_weights.h5.

    Kernels include exact 0 and +-0.5 H (the quantizers' tie points); BatchNormalization gammas are partly negative.
    """
    from bondflow.frontend.bnn_layers import bnn_custom_objects
    tfk = _tfk()
    co = bnn_custom_objects()
    dense, act = (co["BinaryDense"], co["binary_tanh"]) if kind == "binary" else (co["TernaryDense"], co["ternary_tanh"])
    layers: list = []
    for i, n in enumerate((24, 12)):
        kw = {"input_shape": (16,)} if i == 0 else {}
        layers += [dense(n, H=H, kernel_lr_multiplier=7.3, use_bias=False, name=f"fc{i + 1}", **kw),
                   tfk.layers.BatchNormalization(epsilon=1e-6, momentum=0.9, name=f"bn{i + 1}"),
                   tfk.layers.Activation(act, name=f"act{i + 1}")]
    layers += [dense(5, H=H, kernel_lr_multiplier=7.3, use_bias=False, name="output"),
               tfk.layers.BatchNormalization(epsilon=1e-6, momentum=0.9, name="bn")]
    if final_act:
        layers.append(tfk.layers.Activation(act, name="act_out"))
    m = tfk.Sequential(layers, name=f"{kind}_net")
    rng = np.random.default_rng(seed)
    for layer in m.layers:
        if isinstance(layer, dense):
            w = rng.uniform(-1, 1, layer.kernel.shape)
            w.flat[rng.choice(w.size, 6, replace=False)] = [0.0, 0.0, 0.5, -0.5, 0.5, -0.5]
            layer.set_weights([w * H])
        elif isinstance(layer, tfk.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            gamma = rng.uniform(0.3, 2.0, c) * np.where(rng.random(c) < 0.3, -1, 1)
            layer.set_weights([gamma, rng.normal(0, 0.5, c), rng.normal(0, 2, c), rng.uniform(0.5, 20, c)])
    path.mkdir(parents=True, exist_ok=True)
    j = path / f"{kind}_net.json"
    j.write_text(m.to_json())
    m.save_weights(path / f"{kind}_net_weights.h5")
    return j


def _grid_inputs(g, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.5, (n, 16))
    x[: n // 4] = np.round(x[: n // 4] * 4) / 4  # coarse inputs: sums land exactly on BatchNormalization thresholds
    return g.input.type.to_float(g.input.type.quantize(x))


def _keras(j: Path):
    from bondflow.frontend.keras_files import read_model
    return read_model(j)


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bnn")
    return {"binary": bnn_json(d / "b", "binary", 1), "ternary": bnn_json(d / "t", "ternary", 2),
            "ternary_out": bnn_json(d / "to", "ternary", 3, final_act=True)}


@pytest.mark.parametrize("kind", ["binary", "ternary"])
def test_bnn_layers_equal_keras(nets, kind) -> None:
    j = nets[kind]
    g = bondflow.load_model(j, default_precision=DEFAULT)
    assert [o.kind for o in g.ops] == ["dense", "threshold", "dense", "threshold", "dense", "dense"]
    w = g.ops[0].weight
    assert set(np.unique(w)) == ({-1, 1} if kind == "binary" else {-1, 0, 1})
    m = _keras(j)
    x = _grid_inputs(g, 2000, 7)
    tr = reference.trace_raw(g, g.input.type.quantize(x))
    tfk = _tfk()
    for name in ("act1", "act2"):  # every hidden layer equals Keras bit for bit
        want = tfk.Model(m.input, m.get_layer(name).output).predict(x, verbose=0, batch_size=4096)
        got = next(o for o in g.ops if o.name == name).result_type.to_float(tr[name])
        assert np.array_equal(got, want), name
        assert len(np.unique(want)) == (2 if kind == "binary" else 3)
    # the output BatchNormalization is a scale and shift at the default precision: class agreement
    y, yk = reference.run(g, x), m.predict(x, verbose=0, batch_size=4096)
    assert np.mean(np.argmax(y, 1) == np.argmax(yk, 1)) >= 0.99 and np.abs(y - yk).max() < 0.1
    fid = measure(g, j)
    assert fid.reference.startswith("Keras predict (bondflow's BinaryDense/TernaryDense") and fid.agreement >= 0.97, fid.summary()


def test_ternary_output_is_bit_exact(nets) -> None:
    """Ending in ternary_tanh, the whole network equals Keras exactly: weights, thresholds (negative gammas too), levels."""
    j = nets["ternary_out"]
    g = bondflow.load_model(j, default_precision=DEFAULT)
    x = _grid_inputs(g, 3000, 8)
    want = _keras(j).predict(x, verbose=0, batch_size=4096)
    assert np.array_equal(reference.run(g, x), want) and len(np.unique(want, axis=0)) > 30


def test_bnn_semantics_at_ties() -> None:
    """binary_tanh(0) = -1 (round half to even), ternary at +-0.5: 0.5 -> 0, -0.5 -> -1; weights likewise."""
    from types import SimpleNamespace
    from bondflow.frontend.bnn import bnn_threshold, bnn_weights
    from bondflow.ir.types import FixedType
    layer = SimpleNamespace(name="fc", H=1.0, dtype="float32")
    w = np.array([[0.0, 0.5, -0.5, 0.49, -0.51, 1e-9, -1e-9]])
    qb, tb = bnn_weights(layer, "BinaryDense", w)
    qt, _ = bnn_weights(layer, "TernaryDense", w)
    assert qb.tolist() == [[-1, 1, -1, 1, -1, -1, -1]] and str(tb) == "fixed<2,2,RND_CONV,SAT>"  # 1e-9: 0.5x + 0.5 rounds to 0.5
    assert qt.tolist() == [[0, 0, -1, 0, -1, 0, 0]]
    xt = FixedType(8, 4)
    raw = np.arange(xt.min_raw, xt.max_raw + 1)
    for fn, want in (("binary_tanh", np.where(raw > 0, 1, -1)),
                     ("ternary_tanh", np.where(raw > 8, 1, np.where(raw <= -8, -1, 0)))):
        op = bnn_threshold(fn, xt, "a", "x", "a")
        got = op.offset + op.step * (raw[:, None] >= op.thresholds).sum(1)
        assert np.array_equal(got, want), fn


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["binary", "ternary_out"])
def test_bnn_dataflow_rtl(nets, kind, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(bondflow.load_model(nets[kind], default_precision=DEFAULT), "dataflow")
    r = bondflow.simulate(d.write(tmp_path / "d"), 300, simulator="icarus", seed=3)
    assert r.passed and r.vectors == 300, r.error


def _first_dense(cfg: dict) -> dict:
    return next(l["config"] for l in cfg["config"]["layers"] if l["class_name"] == "BinaryDense")


def test_bnn_bad_inputs_are_one_line(nets, tmp_path) -> None:
    src = nets["binary"]
    cfg = json.loads(src.read_text())
    _first_dense(cfg)["use_bias"] = True  # the weights file has no bias for it
    bad = tmp_path / "bias.json"
    bad.write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"weights file binary_net_weights\.h5 must match the architecture JSON") as e:
        bondflow.load_model(bad, default_precision=DEFAULT, weights=src.with_name("binary_net_weights.h5"))
    assert "\n" not in str(e.value)
    cfg = json.loads(src.read_text())
    _first_dense(cfg)["H"] = 0.3  # +-0.3 is not a fixed-point value
    (tmp_path / "h.json").write_text(json.dumps(cfg))
    with pytest.raises(QuantizationError, match=r"^layer 'fc1': BinaryDense H must be a positive power of two .*not 0\.3$") as e:
        bondflow.load_model(tmp_path / "h.json", default_precision=DEFAULT, weights=src.with_name("binary_net_weights.h5"))
    assert "\n" not in str(e.value)


def test_power_of_two_h(tmp_path) -> None:
    """H = 0.5: weights +-0.5 on fixed<2,1>, still exact against Keras."""
    j = bnn_json(tmp_path, "binary", 4, final_act=True, H=0.5)
    g = bondflow.load_model(j, default_precision=DEFAULT)
    assert str(g.ops[0].weight_type) == "fixed<2,1,RND_CONV,SAT>"
    x = _grid_inputs(g, 1500, 9)
    assert np.array_equal(reference.run(g, x), _keras(j).predict(x, verbose=0, batch_size=4096))

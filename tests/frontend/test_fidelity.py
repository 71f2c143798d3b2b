"""Fidelity to the source model: float models typed as hls4ml types them follow Keras/onnxruntime, and poor typing is caught."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.fidelity import Fidelity, check, measure, table_warnings
from bondflow.errors import ConfigError, FidelityError
from bondflow.ir import reference
from bondflow.ir.graph import Graph
from bondflow.ir.ops import Dense, Softmax

DEFAULT = "fixed<16,6>"


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


def _train(tfk, layers: list, binary: bool, seed: int):
    """A float Keras MLP trained for seconds on a seeded teacher task (16 inputs), so its classes are decisive."""
    tfk.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4000, 16))
    t = np.tanh(x) @ rng.standard_normal((16, 5))
    y = (t[:, 0] > 0).astype(np.int64) if binary else t.argmax(1)
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(16,))] + layers)
    m.compile("adam", "binary_crossentropy" if binary else "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=5, verbose=0, batch_size=64)
    return m


@pytest.fixture(scope="module")
def models(tfk, tmp_path_factory) -> dict[str, Path]:
    """The issue's float models as users train them (no quantizers), saved as .h5 and exported with tf2onnx."""
    import tensorflow as tf
    import tf2onnx
    L = tfk.layers
    d = tmp_path_factory.mktemp("float_models")
    specs = {
        "mlp": ([L.Dense(64, activation="relu"), L.Dense(32, activation="relu"), L.Dense(32, activation="relu"),
                 L.Dense(5), L.Activation("softmax")], False),  # the defect's model (hls4ml's jet-tagger shape)
        "bn": ([L.Dense(32), L.BatchNormalization(), L.Activation("relu"), L.Dense(5), L.BatchNormalization(),
                L.Softmax()], False),
        "sigmoid": ([L.Dense(32, activation="relu"), L.Dense(1, activation="sigmoid")], True),
        "deep": ([L.Dense(100, activation="relu") for _ in range(5)] + [L.Dense(5, activation="softmax")], False),
    }
    out = {}
    for i, (name, (layers, binary)) in enumerate(specs.items()):
        m = _train(tfk, layers, binary, seed=i)
        m.save(d / f"{name}.h5")
        proto, _ = tf2onnx.convert.from_keras(m, input_signature=(tf.TensorSpec((None, 16), tf.float32, name="x"),), opset=13)
        (d / f"{name}.onnx").write_bytes(proto.SerializeToString())
        out[name] = d / f"{name}.h5"
        out[name + "_onnx"] = d / f"{name}.onnx"
    return out


@pytest.mark.parametrize("name", ["mlp", "bn", "sigmoid", "deep", "mlp_onnx", "bn_onnx", "sigmoid_onnx", "deep_onnx"])
def test_float_models_follow_their_framework(models, name: str) -> None:
    g = bondflow.load_model(models[name], default_precision=DEFAULT)
    f = measure(g)
    assert f.reference == ("ONNX Runtime" if name.endswith("onnx") else "Keras predict (QKeras quantizers in floating point)")
    assert f.inputs.startswith("N(0,1)") and f.samples == 1000
    assert f.task == "classifier" and f.agreement is not None and f.agreement >= 0.95, f.summary()
    assert f.distinct_outputs > 1 and not f.poor, f.summary()
    assert not table_warnings(g)
    # The table activation reads the default precision, not the exact accumulator (the defect).
    last_dense = [o for o in g.ops if isinstance(o, Dense)][-1]
    assert str(last_dense.result_type) == DEFAULT


def test_onnx_export_gives_the_keras_graph_outputs(models) -> None:
    """tf2onnx's MatMul/Add/Softmax import to the same types and numbers as the Keras file (no BN: folding orders differ)."""
    x = np.random.default_rng(5).standard_normal((2000, 16))
    for name in ("mlp", "sigmoid", "deep"):
        gk = bondflow.load_model(models[name], default_precision=DEFAULT)
        go = bondflow.load_model(models[name + "_onnx"], default_precision=DEFAULT)
        assert [str(o.result_type) for o in gk.ops] == [str(o.result_type) for o in go.ops]
        assert np.array_equal(reference.run(gk, x), reference.run(go, x))


def _old_typing(g: Graph) -> Graph:
    """The typing before this fix: the Dense before the table activation keeps its exact accumulator."""
    ops = list(g.ops)
    i = next(k for k, o in enumerate(ops) if isinstance(o, Softmax)) - 1
    ops[i] = replace(ops[i], result_type=ops[i].accum_type)
    return Graph(name=g.name, input=g.input, ops=tuple(ops), meta=g.meta)


def test_the_defect_would_have_been_flagged(models) -> None:
    old = _old_typing(bondflow.load_model(models["mlp"], default_precision=DEFAULT))
    f = measure(old)
    assert f.poor and f.distinct_outputs == 1
    assert any(w.startswith("constant outputs") for w in f.warnings)
    assert any("exp table" in w for w in f.warnings) and table_warnings(old)
    with pytest.raises(FidelityError, match="class agreement"):
        check(f, min_agreement=0.9)


def test_auto_precision_keeps_ranges_and_fidelity(models) -> None:
    from bondflow.fidelity import inputs_for
    from bondflow.ir.calibrate import auto_precision, float_trace
    from bondflow.ir.types import FixedType
    g = bondflow.load_model(models["deep"], default_precision=DEFAULT)
    x, _ = inputs_for(g)
    ga, choices = auto_precision(g, x, FixedType.parse(DEFAULT))
    assert choices and ga.digest() != g.digest() and ga.meta["auto_precision"]
    trace = float_trace(g, x)
    for c in choices:  # every chosen type holds its calibration range, with the default's fraction bits
        t = ga.op(c.op).result_type
        assert t.min_value <= trace[c.op].min() and trace[c.op].max() <= t.max_value
        assert t.frac_bits == FixedType.parse(DEFAULT).frac_bits
    assert measure(ga).agreement >= 0.95


def test_regressor_and_unavailable_reference(tmp_path) -> None:
    ex = Path(__file__).resolve().parents[2] / "examples" / "muon_pt" / "model.h5"
    f = measure(bondflow.load_model(ex))
    assert f.task == "regressor" and f.agreement is None and f.mean_error < 0.01 and f.inputs.startswith("data.npz")
    check(f, max_error=0.05)
    with pytest.raises(ConfigError, match="classifiers"):
        check(f, min_agreement=0.9)
    # A graph JSON with no source model: the record says why, and a demanded limit cannot pass.
    g = bondflow.load_model(ex)
    bare = Graph(name=g.name, input=g.input, ops=g.ops, meta={})
    f = measure(bare)
    assert f.reference is None and f.agreement is None and "no source model" in f.unavailable
    assert Fidelity.from_dict(json.loads(json.dumps(f.to_dict()))) == f
    with pytest.raises(FidelityError, match="measurable"):
        check(f, max_error=0.5)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_records_warns_and_enforces(models, tmp_path) -> None:
    m = str(models["mlp"])
    r = _cli("import", m, "--default-precision", DEFAULT, "-o", "g.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "g.json").read_text())["meta"]["fidelity"]
    assert rec["agreement"] >= 0.95 and rec["reference"].startswith("Keras") and not rec["poor"]
    # Limits: a stricter one than the design meets exits 18 with one line, nothing written.
    r = _cli("import", m, "--default-precision", DEFAULT, "-o", "g2.json", "--min-agreement", "0.9999", cwd=tmp_path)
    assert r.returncode == 18 and "Traceback" not in r.stderr and not (tmp_path / "g2.json").exists()
    assert r.stderr.strip().splitlines()[-1].startswith("bondflow: error: class agreement")
    # The old typing, saved as a graph that names its source: every command warns loudly; a limit fails.
    g = bondflow.load_model(m, default_precision=DEFAULT)
    _old_typing(g).save(tmp_path / "old.json")
    r = _cli("info", "old.json", cwd=tmp_path)
    assert r.returncode == 0 and "WARNING: poor fidelity: constant outputs" in r.stderr
    r = _cli("info", "old.json", "--min-agreement", "0.9", cwd=tmp_path)
    assert r.returncode == 18


def test_design_and_sim_carry_fidelity_and_stay_bit_exact(models, tmp_path, need_tool) -> None:
    """dataflow RTL (Icarus, many vectors) and hls4ml's C simulation equal the golden model for the float models."""
    need_tool("iverilog")
    need_tool("g++")
    for name, vectors in (("mlp", 200), ("bn", 400), ("sigmoid", 400), ("bn_onnx", 300)):
        r = _cli("generate", str(models[name]), "--default-precision", DEFAULT, "--arch", "dataflow", "-o", name,
                 cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        info = json.loads((tmp_path / name / "design.json").read_text())["info"]
        assert info["fidelity"]["agreement"] >= 0.95
        r = _cli("sim", name, "--vectors", str(vectors), "--min-agreement", "0.95", cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        res = json.loads((tmp_path / name / "sim_result.json").read_text())
        assert res["passed"] and res["vectors"] == vectors and res["fidelity"]["applies_to"].startswith("design (bit-exact")
        g = bondflow.load_model(models[name], default_precision=DEFAULT)
        hls = bondflow.generate(g, "hls4ml", vectors=300)
        assert hls.info["csim_vectors"] == 300 and hls.info["csim_mismatches_vs_golden"] == 0

"""Bad models give typed one-line errors; the CLI exits non-zero with no traceback and writes nothing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.errors import ModelLoadError, QuantizationError, UnsupportedOpError


@pytest.fixture(scope="module")
def tfk():
    from bondflow._compat import import_tensorflow
    return import_tensorflow()


def save(model, path: Path) -> Path:
    model.save(path)
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", *args], capture_output=True, text=True)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="must exist"):
        bondflow.load_model(tmp_path / "nope.h5")


def test_text_file_named_h5(tmp_path) -> None:
    p = tmp_path / "m.h5"
    p.write_text("not a model")
    with pytest.raises(ModelLoadError, match="HDF5"):
        bondflow.load_model(p)


def test_truncated_h5(tmp_path) -> None:
    src = Path(__file__).resolve().parents[2] / "examples" / "iris" / "model.h5"
    p = tmp_path / "m.h5"
    p.write_bytes(src.read_bytes()[:3000])
    with pytest.raises(ModelLoadError):
        bondflow.load_model(p)


def test_corrupt_onnx(tmp_path) -> None:
    p = tmp_path / "m.onnx"
    p.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelLoadError, match="valid ONNX"):
        bondflow.load_model(p)


def test_unsupported_layer(tfk, tmp_path) -> None:
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(8, 8, 1)), tfk.layers.Conv2DTranspose(1, 2, name="up"),
                        tfk.layers.Flatten(), tfk.layers.Dense(2)])
    with pytest.raises(UnsupportedOpError, match="layer 'up' of type 'Conv2DTranspose' is not supported.*supported: "):
        bondflow.load_model(save(m, tmp_path / "c.h5"), default_precision="fixed<16,6>")
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(8, 8, 1)), tfk.layers.UpSampling2D(interpolation="bilinear", name="up"),
                        tfk.layers.Flatten(), tfk.layers.Dense(2)])
    with pytest.raises(UnsupportedOpError, match="UpSampling2D interpolation=bilinear.*nearest only"):
        bondflow.load_model(save(m, tmp_path / "b.h5"), default_precision="fixed<16,6>")
    # Supported layer kinds with options bondflow cannot express exactly: one line naming the option.
    for layer, msg in ((tfk.layers.Conv2D(2, 3, dilation_rate=2, name="dil"), "dilation_rate"),
                       (tfk.layers.AveragePooling2D(3, name="avg3"), "power-of-two window")):
        m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(8, 8, 1)), layer, tfk.layers.Flatten(), tfk.layers.Dense(2)])
        with pytest.raises(UnsupportedOpError, match=msg):
            bondflow.load_model(save(m, tmp_path / f"{layer.name}.h5"), default_precision="fixed<16,6>")
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(8, 1)), tfk.layers.Conv1D(2, 3, padding="causal", name="causal"),
                        tfk.layers.Flatten(), tfk.layers.Dense(2)])
    with pytest.raises(UnsupportedOpError, match="padding=causal"):
        bondflow.load_model(save(m, tmp_path / "causal.h5"), default_precision="fixed<16,6>")


def test_lambda_refused_without_trust(tfk, tmp_path) -> None:
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(4,)), tfk.layers.Lambda(lambda x: x * 2, name="lam"),
                        tfk.layers.Dense(2)])
    with pytest.raises(UnsupportedOpError, match="execute code"):
        bondflow.load_model(save(m, tmp_path / "l.h5"), default_precision="fixed<16,6>")


def test_float_model_needs_precision(tfk, tmp_path) -> None:
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(4,)), tfk.layers.Dense(3, name="fc")])
    p = save(m, tmp_path / "f.h5")
    with pytest.raises(QuantizationError, match="default precision must be given"):
        bondflow.load_model(p)
    g = bondflow.load_model(p, default_precision="fixed<16,6,RND_CONV,SAT>")
    assert str(g.ops[0].weight_type) == "fixed<16,6,RND_CONV,SAT>"


def test_weights_overflowing_precision(tfk, tmp_path) -> None:
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(2,)), tfk.layers.Dense(2, name="big")])
    m.layers[-1].set_weights([np.full((2, 2), 100.0), np.zeros(2)])
    p = save(m, tmp_path / "o.h5")
    # A wrapping 8-bit type cannot hold 100: refuse rather than silently wrap the weights.
    with pytest.raises(QuantizationError, match="must fit|must lie"):
        bondflow.load_model(p, default_precision="fixed<8,3>")


def test_cli_error_is_one_line_and_writes_nothing(tmp_path) -> None:
    out = tmp_path / "g.json"
    r = cli("import", str(tmp_path / "missing.h5"), "-o", str(out))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "must exist" in r.stderr
    assert not out.exists()


def test_cli_refuses_overwrite(tmp_path) -> None:
    out = tmp_path / "g.json"
    out.write_text("keep me")
    src = Path(__file__).resolve().parents[2] / "examples" / "iris" / "model.h5"
    r = cli("import", str(src), "-o", str(out))
    assert r.returncode != 0 and "--force" in r.stderr
    assert out.read_text() == "keep me"


def test_cli_info_and_import(tmp_path) -> None:
    src = Path(__file__).resolve().parents[2] / "examples" / "iris" / "model.h5"
    r = cli("info", str(src))
    assert r.returncode == 0, r.stderr
    assert "fc1" in r.stdout and "MACs" in r.stdout and "216" in r.stdout
    r = cli("import", str(src), "-o", str(tmp_path / "g.json"), "--onnx", str(tmp_path / "g.onnx"))
    assert r.returncode == 0, r.stderr
    assert bondflow.load_model(tmp_path / "g.json").digest() == bondflow.load_model(tmp_path / "g.onnx").digest()

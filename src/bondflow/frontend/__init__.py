"""Frontends: read a model file (Keras/QKeras, ONNX/QONNX, bondflow JSON) into a Graph."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..ir.graph import Graph

__all__ = ["load_model", "detect_format"]


def detect_format(path: Path) -> str:
    """'keras', 'onnx' or 'json' (a bondflow graph), from the file's name and content."""
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "keras"
        raise ModelLoadError(f"model directory must be a SavedModel (saved_model.pb), not lack it: {path}")
    suffix = path.suffix.lower()
    head = path.read_bytes()[:8]
    if suffix in (".h5", ".hdf5"):
        if not head.startswith(b"\x89HDF\r\n\x1a\n"):
            raise ModelLoadError(f"{path} must be an HDF5 Keras model, not a file without the HDF5 signature")
        return "keras"
    if suffix == ".keras":
        if not head.startswith(b"PK"):
            raise ModelLoadError(f"{path} must be a .keras zip archive, not a file without the zip signature")
        return "keras"
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".json":
        from .keras_files import is_keras_json
        return "keras" if is_keras_json(path) else "json"
    raise ModelLoadError(f"model file must be .h5, .keras, a SavedModel dir, .onnx or .json, not '{suffix or path.name}'")


def load_model(path: Path | str, default_precision: str | None = None, **kwargs: Any) -> Graph:
    """Import a model file; see the format-specific loaders for ``kwargs`` (input_precision, trust_model)."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model file must exist, not be missing: {p}")
    fmt = detect_format(p)
    if kwargs.get("weights") is not None and fmt != "keras":
        from ..errors import ConfigError
        raise ConfigError(f"--weights applies to a Keras architecture JSON, not to a {fmt} model")
    kwargs = {k: v for k, v in kwargs.items() if not (k == "weights" and v is None)}
    if fmt == "json":
        return Graph.load(p)
    if fmt == "onnx":
        from .onnx import load_onnx
        return load_onnx(p, default_precision=default_precision, **kwargs)
    if p.suffix.lower() == ".keras":
        from .keras_files import keras3_config
        cfg = keras3_config(p)
        if cfg is not None:
            from .hgq import is_hgq_config, load_hgq
            if is_hgq_config(cfg):  # HGQ2: read from the file itself, no HGQ/Keras/TensorFlow needed
                return load_hgq(p, default_precision=default_precision, **kwargs)
    if p.suffix.lower() in (".h5", ".hdf5"):
        from .hgq_proxy import is_proxy_config, load_hgq_proxy
        from .keras_files import model_config
        if is_proxy_config(model_config(p)):  # HGQ v1 proxy: read with h5py, no HGQ needed
            return load_hgq_proxy(p, default_precision=default_precision, **kwargs)
    from .qkeras import load_keras
    return load_keras(p, default_precision=default_precision, **kwargs)

"""Keras 3 ``.keras`` files read without Keras 3: its config.json rebuilt as a tf_keras model, weights from model.weights.h5."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelLoadError

__all__ = ["read_keras3", "keras3_predict", "end_layers"]

#: Keras 3 layer classes rebuilt here, with the config keys tf_keras understands for each.
_KEYS = {
    "Dense": ("units", "activation", "use_bias"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "LeakyReLU": ("negative_slope",),  # tf_keras calls it alpha (_layer_kwargs renames it)
    "Softmax": ("axis",),
    "ELU": ("alpha",),
    "Dropout": ("rate",),
    "Flatten": (),
    "Add": (),
    "Subtract": (),
    "Multiply": (),
    "Maximum": (),
    "Minimum": (),
    "Concatenate": ("axis",),
    "Reshape": ("target_shape",),
    "Conv1D": ("filters", "kernel_size", "strides", "padding", "use_bias", "activation"),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "use_bias", "activation"),
    "MaxPooling1D": ("pool_size", "strides", "padding"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling1D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    # QKeras for Keras 3 (its `qkeras` v3 files): rebuilt with the QKeras of this venv, which runs on tf_keras.
    "QDense": ("units", "activation", "use_bias", "kernel_quantizer", "bias_quantizer"),
    "QActivation": ("activation",),
    "QConv1D": ("filters", "kernel_size", "strides", "padding", "use_bias", "activation", "kernel_quantizer", "bias_quantizer"),
    "QConv2D": ("filters", "kernel_size", "strides", "padding", "use_bias", "activation", "kernel_quantizer", "bias_quantizer"),
}
#: Layers with weights: model.weights.h5 must hold them.
_WEIGHTED = ("Dense", "BatchNormalization", "Conv1D", "Conv2D", "QDense", "QConv1D", "QConv2D")


def _qkeras_quantizer(path: Path, layer: str, d: dict[str, Any]) -> Any:
    """A QKeras quantizer object from its Keras 3 serialization; one line for a setting this QKeras lacks."""
    import inspect

    from qkeras import quantizers as qq
    cls = getattr(qq, str(d.get("class_name")), None)
    if cls is None or not inspect.isclass(cls):
        raise ModelLoadError(f"{path}: layer '{layer}' must use a QKeras quantizer, not {d.get('class_name')!r}")
    params = inspect.signature(cls.__init__).parameters
    cfg = {}
    for k, v in (d.get("config") or {}).items():
        if k in params:
            cfg[k] = v
        elif v is not None:  # a newer QKeras' setting (e.g. post_training_scale) that changes what it computes
            raise ModelLoadError(f"{path}: layer '{layer}' quantizer {d.get('class_name')} setting {k}={v!r} must be "
                                 f"one this QKeras ({', '.join(p for p in params if p != 'self')}) knows, not new to it")
    return cls(**cfg)


def _layer_kwargs(path: Path, cls: str, lc: dict[str, Any]) -> dict[str, Any]:
    """tf_keras/QKeras constructor arguments for a Keras 3 layer config (QKeras quantizers rebuilt as objects)."""
    kwargs = {k: lc[k] for k in _KEYS[cls] if k in lc}
    if cls == "LeakyReLU":
        kwargs = {"alpha": kwargs.get("negative_slope", 0.3)}
    if isinstance(kwargs.get("axis"), list):
        kwargs["axis"] = kwargs["axis"][0]
    for k, v in kwargs.items():
        if isinstance(v, dict) and str(v.get("module", "")).startswith("qkeras"):
            kwargs[k] = _qkeras_quantizer(path, str(lc.get("name")), v)
        elif isinstance(v, list) and k in ("kernel_size", "strides", "pool_size", "target_shape"):
            kwargs[k] = tuple(v)
    return kwargs


def _layer_class(tfk: Any, cls: str) -> Any:
    if cls.startswith("Q"):
        import qkeras
        return getattr(qkeras, cls)
    return getattr(tfk.layers, cls)


def _snake(name: str) -> str:
    """Keras 3's key for a layer in model.weights.h5: its class name in snake case."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def read_keras3(path: Path) -> Any:
    """A tf_keras model equal to the Keras 3 model in ``path`` (Sequential, or Functional with Add/Concatenate
    branches); one line for anything else."""
    from .._compat import import_tensorflow
    from .keras_files import config_layers, refuse_unsupported
    with zipfile.ZipFile(path) as z:
        cfg = json.loads(z.read("config.json"))
        if "model.weights.h5" not in z.namelist():
            raise ModelLoadError(f"{path} must hold model.weights.h5 (a Keras 3 .keras archive), not lack it")
        tmp = Path(tempfile.mkdtemp(prefix="bondflow-keras3-"))
        z.extract("model.weights.h5", tmp)
    refuse_unsupported(cfg, trust_model=False)
    tfk = import_tensorflow()
    import h5py
    functional = cfg.get("class_name") == "Functional"
    layers: list[tuple[dict[str, Any], Any]] = []  # (config entry, tf_keras layer)
    weights: list[tuple[Any, list[np.ndarray]]] = []
    seen: dict[str, int] = {}
    in_shape = None
    try:
        with h5py.File(tmp / "model.weights.h5", "r") as f:
            for entry in config_layers(cfg):
                cls, lc = entry.get("class_name"), entry.get("config", {})
                n = seen.get(cls, 0)  # model.weights.h5 names layers by class, counted in model order
                seen[cls] = n + 1
                if cls == "InputLayer":
                    in_shape = tuple(lc.get("batch_shape") or lc.get("batch_input_shape") or (None,))[1:]
                    if functional:
                        layers.append((entry, None))
                    continue
                if entry.get("build_config") and in_shape is None:
                    in_shape = tuple(entry["build_config"].get("input_shape", (None,)))[1:]
                if cls not in _KEYS:
                    from ..errors import UnsupportedOpError
                    raise UnsupportedOpError(str(cls), str(lc.get("name")), sorted(_KEYS), "bondflow's Keras 3 reader")
                layer = _layer_class(tfk, cls)(name=lc.get("name"), **_layer_kwargs(path, cls, lc))
                layers.append((entry, layer))
                key = _snake(cls) + (f"_{n}" if n else "")
                grp = f.get(f"layers/{key}/vars")
                vals = [np.asarray(grp[str(i)]) for i in range(len(grp))] if grp is not None else []
                if cls in _WEIGHTED and not vals:
                    raise ModelLoadError(f"{path}: model.weights.h5 must hold layers/{key}/vars for layer "
                                         f"'{lc.get('name')}', not lack it")
                weights.append((layer, vals))
    finally:
        (tmp / "model.weights.h5").unlink(missing_ok=True)
        tmp.rmdir()
    name = cfg.get("config", {}).get("name", "model")
    if functional:
        model = _functional(tfk, path, cfg, layers, name)
    else:
        if in_shape is None or None in in_shape:
            raise ModelLoadError(f"{path} must declare its input shape (an InputLayer), not leave it open")
        model = tfk.Sequential([tfk.layers.InputLayer(input_shape=in_shape)] + [l for _, l in layers], name=name)
    for layer, vals in weights:
        if vals:
            try:
                layer.set_weights(vals)
            except ValueError as e:
                raise ModelLoadError(f"{path}: weights of '{layer.name}' must match its config, not: {' '.join(str(e).split())[:160]}") from None
    return model


def _functional(tfk: Any, path: Path, cfg: dict[str, Any], layers: list[tuple[dict[str, Any], Any]], name: str) -> Any:
    """Connect the rebuilt layers as Keras 3's ``inbound_nodes`` say (one call per layer: shared layers are refused)."""
    tensors: dict[str, Any] = {}

    def source(arg: Any) -> Any:
        hist = arg.get("config", {}).get("keras_history") if isinstance(arg, dict) else None
        if not hist or hist[0] not in tensors:
            raise ModelLoadError(f"{path}: a layer input must be an earlier layer's tensor (keras_history), not {str(arg)[:80]}")
        return tensors[hist[0]]

    for entry, layer in layers:
        lc = entry.get("config", {})
        lname = lc.get("name")
        if layer is None:  # InputLayer
            shape = tuple(lc.get("batch_shape") or lc.get("batch_input_shape") or (None,))[1:]
            if None in shape:
                raise ModelLoadError(f"{path}: input '{lname}' must declare its shape, not leave it open ({shape})")
            tensors[lname] = tfk.Input(shape=shape, name=lname)
            continue
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) != 1:
            from ..errors import UnsupportedOpError
            raise UnsupportedOpError(f"{entry.get('class_name')} called {len(nodes)} times (a shared layer)", str(lname),
                                     ["layers called once"], "bondflow's Keras 3 reader")
        args = nodes[0].get("args") or []
        first = args[0] if args else None
        tensors[lname] = layer([source(a) for a in first] if isinstance(first, list) else source(first))
    ends = []
    for key in ("input_layers", "output_layers"):
        refs = end_layers(cfg, key)
        if len(refs) != 1 or refs[0][0] not in tensors:
            raise ModelLoadError(f"{path} must have one input and one output layer, not {key} {refs}")
        ends.append(tensors[refs[0][0]])
    return tfk.Model(ends[0], ends[1], name=name)


def end_layers(cfg: dict[str, Any], key: str) -> list[list[Any]]:
    """A functional Keras 3 config's ``input_layers`` or ``output_layers`` as a list of [layer, node, tensor] refs
    (Keras writes a single tensor as one bare ref)."""
    refs = cfg.get("config", {}).get(key) or []
    return [refs] if refs and not isinstance(refs[0], list) else refs


_PREDICT = """
import sys, numpy as np, keras
try:
    import hgq  # noqa: F401  (registers HGQ2's layers, so HGQ models run their own inference)
except ImportError:
    pass
m = keras.saving.load_model(sys.argv[1], compile=False)
x = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(m.predict(x.reshape((len(x),) + tuple(m.input_shape[1:])), verbose=0)))
print(keras.__version__)
"""


def _is_hgq(path: Path) -> bool:
    from .hgq import is_hgq_config
    try:
        with zipfile.ZipFile(path) as z:
            return is_hgq_config(json.loads(z.read("config.json")))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False


def keras3_predict(path: Path, x: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Keras 3's own predict in a separate process (this one aliases keras to tf_keras), or why it cannot run."""
    with tempfile.TemporaryDirectory(prefix="bondflow-k3p-") as d:
        xi, yo = Path(d) / "x.npy", Path(d) / "y.npy"
        np.save(xi, np.asarray(x, dtype=np.float32))
        env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if _is_hgq(path):  # HGQ's layers run their own inference with HGQ2 from beside the venv (hgq_runtime.py)
            from .hgq_runtime import hgq_child_env
            try:
                env = hgq_child_env()
            except MissingDependencyError as e:
                return None, str(e)
        r = subprocess.run([sys.executable, "-c", _PREDICT, str(path), str(xi), str(yo)], capture_output=True,
                           text=True, env=env, timeout=600)
        if r.returncode != 0 or not yo.exists():
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1][:160]
            return None, f"Keras 3 could not run it ({tail})"
        version = (r.stdout.strip().splitlines() or ["3"])[-1]
        return np.load(yo).astype(np.float64).reshape(len(x), -1), f"Keras {version} predict"

"""Keras model files as the field ships them (.h5, Keras 2/3 .keras, SavedModel, JSON + weights) into a tf_keras model."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from .._compat import import_tensorflow
from ..errors import ConfigError, ModelLoadError, UnsupportedOpError, unsupported_layers

__all__ = ["SUPPORTED_LAYERS", "BN_LAYERS", "CONV_LAYERS", "DEPTHWISE_LAYERS", "SEPARABLE_LAYERS", "POOL_LAYERS", "MERGE_LAYERS", "read_model", "model_config", "refuse_unsupported", "find_weights", "is_keras_json",
           "keras3_config"]

#: Depthwise convolutions import as convolutions whose cross-channel weights are zero (exact; see docs/frontend.md).
DEPTHWISE_LAYERS = ("DepthwiseConv1D", "DepthwiseConv2D", "QDepthwiseConv2D")
#: Separable convolutions import as that depthwise convolution (its exact sums) and a 1x1 convolution.
SEPARABLE_LAYERS = ("SeparableConv1D", "SeparableConv2D", "QSeparableConv1D", "QSeparableConv2D")
CONV_LAYERS = ("Conv1D", "Conv2D", "QConv1D", "QConv2D") + DEPTHWISE_LAYERS + SEPARABLE_LAYERS
POOL_LAYERS = ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
               "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D")
MERGE_LAYERS = ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Concatenate")
BN_LAYERS = ("BatchNormalization", "QBatchNormalization")
SUPPORTED_LAYERS = ("InputLayer", "Dense", "QDense", "BinaryDense", "TernaryDense", "Activation", "QActivation", "ReLU", "LeakyReLU", "ELU", "PReLU", "BatchNormalization", "QBatchNormalization",
                    "Dropout", "Flatten", "Reshape", "Softmax", "ZeroPadding1D", "ZeroPadding2D", "UpSampling1D",
                    "UpSampling2D") + CONV_LAYERS + POOL_LAYERS + MERGE_LAYERS
UNSAFE = ("Lambda", "TFOpLambda")
#: Binary/ternary layers of other libraries (Larq; the BinaryConv2D of early BNN code): their quantizers are code outside
#: the file, and no reference inference of theirs runs here to check a reading against. (That code's BinaryDense and
#: TernaryDense, which hls4ml's example models use, are read: frontend/bnn.py, with stand-ins in frontend/bnn_layers.py.)
BNN_LAYERS = ("QuantDense", "QuantConv1D", "QuantConv2D", "QuantDepthwiseConv2D", "BinaryConv2D")
BNN_HINT = ("bondflow: Larq layers and early BNN code's BinaryConv2D are not read (its BinaryDense/TernaryDense are); write "
            "the model with QKeras QDense(kernel_quantizer=binary(alpha=1) or ternary(alpha=1)) and QActivation(binary() or "
            "ternary()), or export it to QONNX")
#: HGQ v1 (tf.keras) layers: bondflow reads HGQ2's Keras 3 files instead (frontend/hgq.py).
HGQ1_LAYERS = ("HQuantize", "HDense", "HConv1D", "HConv2D", "HActivation", "HAdd", "HDenseBatchNorm", "HConv1DBatchNorm",
               "HConv2DBatchNorm", "PDropout", "PFlatten", "PReshape", "PConcatenate", "PMaxPooling1D", "PMaxPooling2D",
               "PAveragePooling1D", "PAveragePooling2D", "Signature")
HGQ1_HINT = ("bondflow: HGQ v1 (tf.keras) layers are not read; rebuild the model with HGQ2 and save it as a Keras 3 "
             ".keras file, which bondflow reads without HGQ installed")
#: Names a weights file next to ``model.json`` may have (hls4ml's KerasJson/KerasH5 convention first).
WEIGHT_NAMES = ("{stem}_weights.h5", "model_weights.h5", "{stem}.weights.h5", "{stem}.h5", "weights.h5")


def is_keras_json(path: Path) -> bool:
    """Whether a .json file holds a Keras model config (``model.to_json()``), not a bondflow graph."""
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(d, dict) and "class_name" in d and "config" in d and d.get("format") != "bondflow-graph"


def find_weights(path: Path, weights: str | Path | None) -> Path:
    """The weights file of a Keras JSON: ``weights`` when given, else the first conventional name next to it."""
    if weights is not None:
        w = Path(weights)
        if not w.is_file():
            raise ModelLoadError(f"weights file must exist, not be missing: {w}")
        return w
    tried = [path.with_name(n.format(stem=path.stem)) for n in WEIGHT_NAMES]
    for w in tried:
        if w.is_file():
            return w
    raise ModelLoadError(f"{path.name} holds only the architecture: a weights file must sit next to it "
                         f"({', '.join(t.name for t in tried[:2])}) or be given with --weights, not be missing")


def keras3_config(path: Path) -> dict[str, Any] | None:
    """A .keras zip's config when Keras 3 wrote it (its layers carry 'module' keys), else None."""
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in z.namelist() else {}
            cfg = json.loads(z.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path} must be a readable .keras archive, not corrupt ({type(e).__name__}: {e})") from None
    version = str(meta.get("keras_version", ""))
    return cfg if version.startswith("3") or "module" in cfg else None


def model_config(path: Path) -> dict[str, Any] | None:
    """The model's JSON config read without building it, so unsafe layers are refused before any code runs."""
    try:
        suffix = path.suffix.lower()
        if suffix in (".h5", ".hdf5"):
            import h5py
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
                if raw is None:
                    raise ModelLoadError(f"{path} must contain a Keras model config, not only weights "
                                         "(pass the architecture JSON as the model and this file with --weights)")
                return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        if suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
        if suffix == ".json":
            return json.loads(path.read_text())
        if path.is_dir() and (path / "keras_metadata.pb").is_file():
            return _saved_model_config(path / "keras_metadata.pb")
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path} must be a readable Keras model, not corrupt ({type(e).__name__}: {e})") from None
    return None


def _saved_model_config(meta: Path) -> dict[str, Any]:
    """A SavedModel's layers from keras_metadata.pb, shaped like a model config (direct children as its layers)."""
    import_tensorflow()
    from google.protobuf.message import DecodeError
    from tf_keras.protobuf import saved_metadata_pb2
    pb = saved_metadata_pb2.SavedMetadata()
    try:
        pb.ParseFromString(meta.read_bytes())
    except DecodeError as e:
        raise json.JSONDecodeError(f"keras_metadata.pb does not parse ({e})", "", 0) from None
    nodes = {n.node_path: json.loads(n.metadata) for n in pb.nodes if n.metadata}
    root = nodes.pop("root", {})

    def entry(d: dict[str, Any]) -> dict[str, Any]:
        return {"class_name": d.get("class_name", "?"), "config": {"name": d.get("name", "?")}}

    layers = [entry(d) for k, d in nodes.items() if k.count(".") == 1 and ".layer" in k]
    nested = [entry(d) for k, d in nodes.items() if k.count(".") > 1]
    return {"class_name": root.get("class_name", "?"), "config": {"layers": layers}, "nested": nested}


def config_layers(cfg: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The model's own layer entries: ``config.layers``, or the legacy list form where ``config`` is the list."""
    inner = cfg.get("config") if isinstance(cfg, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else inner
    return [l for l in layers if isinstance(l, dict)] if isinstance(layers, list) else []


def _top_layers(cfg: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(class, name) of the model's own layers, from its config."""
    out = []
    for layer in config_layers(cfg):
        lc = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        out.append((str(layer.get("class_name", "?")), str(lc.get("name", layer.get("name", "?")))))
    return out


def _walk_layers(cfg: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(cfg, dict):
        if "class_name" in cfg and "config" in cfg:
            out.append(cfg)
        for v in cfg.values():
            out.extend(_walk_layers(v))
    elif isinstance(cfg, list):
        for v in cfg:
            out.extend(_walk_layers(v))
    return out


def refuse_unsupported(cfg: dict[str, Any] | None, trust_model: bool) -> None:
    """Refuse every layer class bondflow cannot convert (all named in one message), then code-carrying layers,
    before TF builds the model."""
    if cfg is None:
        return
    bad = [(cls, name) for cls, name in _top_layers(cfg)
           if cls not in SUPPORTED_LAYERS and not (cls in UNSAFE and trust_model)]
    unsafe = [b for b in bad if b[0] in UNSAFE]
    if unsafe and len(unsafe) == len(bad):
        raise UnsupportedOpError(unsafe[0][0], unsafe[0][1], SUPPORTED_LAYERS,
                                 "bondflow (it would execute code from the model file; pass --trust-model to load it anyway)")
    if bad:
        hint = BNN_HINT if any(b[0].split(">")[-1] in BNN_LAYERS for b in bad) else \
            HGQ1_HINT if any(b[0].split(">")[-1] in HGQ1_LAYERS for b in bad) else "bondflow"
        raise unsupported_layers([b for b in bad if b[0] not in UNSAFE] or bad, SUPPORTED_LAYERS, hint)
    if trust_model:
        return
    for layer in _walk_layers(cfg):
        if layer["class_name"] in UNSAFE:
            name = layer["config"].get("name", "?") if isinstance(layer["config"], dict) else "?"
            raise UnsupportedOpError(layer["class_name"], name, SUPPORTED_LAYERS,
                                     "bondflow (it would execute code from the model file; pass --trust-model to load it anyway)")


def _custom_objects(cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """QKeras's objects, plus bondflow's BNN stand-ins when the config names them (scoped to this load only)."""
    try:
        from qkeras.utils import _add_supported_quantized_objects
    except ImportError:
        from ..errors import MissingDependencyError
        raise MissingDependencyError("qkeras", "reading QKeras models") from None
    co: dict[str, Any] = {}
    _add_supported_quantized_objects(co)
    co["QActivation"] = _qactivation_class(co["QActivation"])
    from .bnn_layers import bnn_custom_objects, uses_bnn
    if uses_bnn(cfg):
        co.update(bnn_custom_objects())
    return co


def _qactivation_class(base: type) -> type:
    """QActivation whose from_config accepts the nested quantizer dict ``model.to_json()`` writes (QKeras
    itself only takes a string or an object there, so such JSON would not load)."""
    from qkeras.quantizers import get_quantizer

    class QActivationFromJson(base):  # type: ignore[misc, valid-type]
        @classmethod
        def from_config(cls, config: dict[str, Any]) -> Any:
            act = config.get("activation")
            if isinstance(act, dict):
                config = dict(config, activation=get_quantizer({"class_name": act["class_name"], "config": act["config"]}))
            return base(**config)

    return QActivationFromJson


def read_model(path: Path, trust_model: bool = False, weights: str | Path | None = None):
    """A built tf_keras model from any supported Keras file; every refusal is one line, before TF builds anything."""
    path = Path(path)
    if path.suffix.lower() == ".keras" and keras3_config(path) is not None:
        from .keras3 import read_keras3
        return read_keras3(path)
    cfg = model_config(path)
    if path.suffix.lower() == ".json" and not (isinstance(cfg, dict) and "class_name" in cfg and config_layers(cfg)):
        raise ModelLoadError(f"{path} must be a Keras model JSON (model.to_json()) or a bondflow graph, not another JSON")
    if weights is not None and path.suffix.lower() != ".json":
        raise ConfigError(f"--weights applies to a Keras architecture JSON, not to {path.suffix or 'SavedModel'} models")
    refuse_unsupported(cfg, trust_model)
    tf_keras = import_tensorflow()
    co = _custom_objects(cfg)
    try:
        if path.suffix.lower() == ".json":
            w = find_weights(path, weights)
            with tf_keras.utils.custom_object_scope(co):  # nested QKeras quantizers deserialize through the scope
                model = tf_keras.models.model_from_json(path.read_text())
            _load_weights(model, w)
            return model
        return tf_keras.models.load_model(str(path), custom_objects=co, compile=False)
    except ModelLoadError:
        raise
    except Exception as e:  # tf_keras raises many types for unreadable files
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ModelLoadError(f"{path} must be a loadable Keras model, not fail with {type(e).__name__}: {msg}") from None


def _load_weights(model: Any, w: Path) -> None:
    """Weights by layer name, and every layer with weights must find them: a mismatch is one line, never partial."""
    try:
        model.load_weights(str(w))
    except Exception as e:  # shapes or names that do not match the JSON
        msg = " ".join(str(e).split())[:200] if str(e) else type(e).__name__
        raise ModelLoadError(f"weights file {w.name} must match the architecture JSON (layer names and shapes), "
                             f"not fail with {type(e).__name__}: {msg}") from None

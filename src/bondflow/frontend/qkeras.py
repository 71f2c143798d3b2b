"""QKeras / Keras-2 frontend: reads .h5, .keras and SavedModel files through tf_keras into a Graph."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._compat import import_tensorflow
from ..errors import ModelLoadError, QuantizationError, UnsupportedOpError
from ..ir.graph import Graph, TensorSpec
from ..ir.ops import Activation, Dense, Flatten, Op, Sigmoid, Softmax
from ..ir.types import FixedType
from ..render_names import unique_name
from .quant import DEFAULT_INPUT_PRECISION, accum_type_for, exact_raw, qkeras_type, quantize_checked, sidecar_options

__all__ = ["load_keras", "SUPPORTED_LAYERS", "TABLE_ACTIVATIONS"]

#: Activations computed from lookup tables addressed by the top bits of their input (hls4ml's nnet_activation.h).
TABLE_ACTIVATIONS = ("softmax", "sigmoid")

SUPPORTED_LAYERS = ("InputLayer", "Dense", "QDense", "Activation", "QActivation", "ReLU", "BatchNormalization",
                    "Dropout", "Flatten", "Softmax")
_IGNORED = ("InputLayer", "Dropout")
_UNSAFE = ("Lambda", "TFOpLambda")


def _model_config(path: Path) -> dict[str, Any] | None:
    """The model's JSON config read without building it, so unsafe layers are refused before any code runs."""
    try:
        if path.suffix.lower() in (".h5", ".hdf5"):
            import h5py
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
                if raw is None:
                    raise ModelLoadError(f"{path} must contain a Keras model config, not only weights")
                return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
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


def _top_layers(cfg: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(class, name) of the model's own layers, from its config."""
    inner = cfg.get("config") if isinstance(cfg, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return []
    out = []
    for layer in layers:
        if isinstance(layer, dict):
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


def _refuse_unsafe(cfg: dict[str, Any] | None, trust_model: bool) -> None:
    """Refuse code-carrying layers, then any layer class bondflow cannot convert, before TF builds the model."""
    if cfg is None:
        return
    for cls, name in _top_layers(cfg):
        if cls in _UNSAFE and trust_model:
            continue  # loaded on request; refused later as unsupported unless it is dropped
        if cls not in SUPPORTED_LAYERS and cls not in _UNSAFE:
            raise UnsupportedOpError(cls, name, SUPPORTED_LAYERS)
    if trust_model:
        return
    for layer in _walk_layers(cfg):
        if layer["class_name"] in _UNSAFE:
            name = layer["config"].get("name", "?") if isinstance(layer["config"], dict) else "?"
            raise UnsupportedOpError(layer["class_name"], name, SUPPORTED_LAYERS,
                                     "bondflow (it would execute code from the model file; pass --trust-model to load it anyway)")


def _read_model(path: Path, trust_model: bool):
    cfg = _model_config(path)
    _refuse_unsafe(cfg, trust_model)
    tf_keras = import_tensorflow()
    try:
        from qkeras.utils import _add_supported_quantized_objects
    except ImportError:
        from ..errors import MissingDependencyError
        raise MissingDependencyError("qkeras", "reading QKeras models") from None
    co: dict[str, Any] = {}
    _add_supported_quantized_objects(co)
    try:
        return tf_keras.models.load_model(str(path), custom_objects=co, compile=False)
    except Exception as e:  # tf_keras raises many types for unreadable files
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ModelLoadError(f"{path} must be a loadable Keras model, not fail with {type(e).__name__}: {msg}") from None


def _quantizer(layer: Any, attr: str) -> tuple[str, dict[str, Any]] | None:
    q = getattr(layer, attr, None)
    if q is None:
        return None
    if hasattr(q, "get_config"):
        return type(q).__name__, q.get_config()
    return getattr(q, "__name__", str(q)), {}


def _activation_from_quantizer(layer: Any) -> tuple[str, dict[str, Any]]:
    q = getattr(layer, "quantizer", None) or getattr(layer, "activation", None)
    if hasattr(q, "get_config"):
        return type(q).__name__, q.get_config()
    return getattr(q, "__name__", str(q)), {}


def load_keras(path: Path, default_precision: str | None = None, input_precision: str | None = None,
               trust_model: bool = False) -> Graph:
    """Read a QKeras/Keras-2 MLP.

    Types: QKeras quantizers map as hls4ml maps them; plain Dense weights and activations without a
    quantizer use ``default_precision`` (required for such layers); a Dense result that an activation
    requantizes is the exact accumulator (the activation does the only rounding, as in QKeras), one that
    nothing requantizes takes ``default_precision``, or stays the exact accumulator when none is given.
    """
    path = Path(path)
    side = sidecar_options(path)
    input_precision = input_precision or side.get("input_precision") or default_precision or DEFAULT_INPUT_PRECISION
    default_precision = default_precision or side.get("default_precision")
    model = _read_model(path, trust_model)
    in_shape = model.input_shape
    if isinstance(in_shape, list) or in_shape is None:
        raise UnsupportedOpError("multi-input model", model.name, ["single-input Sequential/functional MLP"])
    n_in = int(np.prod([d for d in in_shape[1:] if d is not None]))
    in_type = FixedType.parse(input_precision)
    names: set[str] = set()
    inp = TensorSpec(unique_name("input", names), n_in, in_type)
    ops: list[Op] = []
    cur, cur_type = inp.name, in_type

    def default(what: str, lname: str) -> FixedType:
        if not default_precision:
            raise QuantizationError(
                f"layer '{lname}' has float {what}: a default precision must be given (--default-precision fixed<16,6>), not none")
        return FixedType.parse(default_precision)

    def add_activation(fn: str, lname: str, rtype: FixedType) -> None:
        nonlocal cur, cur_type
        name = unique_name(lname, names)
        if fn in ("relu", "linear"):
            ops.append(Activation(name=name, input=cur, result_type=rtype, function=fn))
        elif fn == "softmax":
            ops.append(Softmax(name=name, input=cur, result_type=rtype))
        elif fn == "sigmoid":
            ops.append(Sigmoid(name=name, input=cur, result_type=rtype))
        else:
            raise UnsupportedOpError(f"activation {fn}", lname, ["relu", "linear", "softmax", "sigmoid"])
        cur, cur_type = name, rtype

    layers = [l for l in model.layers if type(l).__name__ not in _IGNORED]
    for idx, layer in enumerate(layers):
        cls = type(layer).__name__
        lname = layer.name
        if cls in ("Dense", "QDense"):
            w, b = (layer.get_weights() + [None])[:2]
            if not getattr(layer, "use_bias", True) or b is None:
                b = np.zeros(w.shape[1])
            if cls == "QDense":
                kq, bq = _quantizer(layer, "kernel_quantizer_internal"), _quantizer(layer, "bias_quantizer_internal")
                if kq is None:
                    raise QuantizationError(f"layer '{lname}': QDense must have a kernel_quantizer, not none")
                wt = qkeras_type(*kq, lname)
                wq = np.asarray(layer.kernel_quantizer_internal(w))
                bt = qkeras_type(*bq, lname) if bq else default("bias", lname)
                bqv = np.asarray(layer.bias_quantizer_internal(b)) if bq else quantize_checked(b, bt, f"layer '{lname}' biases")
            else:
                wt = bt = default("weights", lname)
                wq = quantize_checked(w, wt, f"layer '{lname}' weights")
                bqv = quantize_checked(b, bt, f"layer '{lname}' biases")
            # Fold a following BatchNormalization into this layer (as hls4ml's optimizer does); float weights
            # fold before their only rounding, so the folded layer is as close to the float model as its type allows.
            nxt = layers[idx + 1] if idx + 1 < len(layers) else None
            if nxt is not None and type(nxt).__name__ == "BatchNormalization":
                wq, bqv = _fold_bn(nxt, w if cls == "Dense" else wq, b if cls == "Dense" else bqv)
                wq = quantize_checked(wq, wt, f"layer '{lname}' weights after folding {nxt.name}")
                bqv = quantize_checked(bqv, bt, f"layer '{lname}' biases after folding {nxt.name}")
            w_raw = exact_raw(wq, wt, f"layer '{lname}' weights")
            b_raw = exact_raw(bqv, bt, f"layer '{lname}' biases")
            acc = accum_type_for(cur_type, wt, bt, w.shape[0])
            act = _quantizer(layer, "activation")
            # A result no element-wise activation requantizes takes the default precision (as hls4ml's Dense
            # result does); so does one feeding a table activation (softmax, sigmoid), which indexes its table
            # with the top bits of its input: an exact accumulator there collapses every input onto one entry.
            # Without a default (fully quantized QKeras) it stays the exact accumulator, equal to QKeras's sums.
            rtype = acc
            follower = _activation_fn(act) if _requantizes(act) else _next_activation(layers, idx + 1)
            if default_precision and (follower is None or follower in TABLE_ACTIVATIONS):
                rtype = FixedType.parse(default_precision)
            name = unique_name(lname, names)
            ops.append(Dense(name=name, input=cur, result_type=rtype, weight=w_raw, weight_type=wt,
                             bias=b_raw, bias_type=bt, accum_type=acc))
            cur, cur_type = name, rtype
            if act is not None:
                _apply_activation(act, lname + "_act", add_activation, default)
        elif cls == "BatchNormalization":
            prev = type(layers[idx - 1]).__name__ if idx else None
            if prev not in ("Dense", "QDense"):
                raise UnsupportedOpError(cls, lname, SUPPORTED_LAYERS, "bondflow unless it directly follows a Dense layer")
        elif cls == "QActivation":
            _apply_activation(_activation_from_quantizer(layer), lname, add_activation, default)
        elif cls == "Activation":
            _apply_activation((getattr(layer.activation, "__name__", str(layer.activation)), {}), lname, add_activation, default)
        elif cls == "ReLU":
            add_activation("relu", lname, default("activation", lname))
        elif cls == "Softmax":
            add_activation("softmax", lname, default("activation", lname))
        elif cls == "Flatten":
            name = unique_name(lname, names)
            ops.append(Flatten(name=name, input=cur, result_type=cur_type))
            cur = name
        else:
            raise UnsupportedOpError(cls, lname, SUPPORTED_LAYERS)
    meta = {"source": str(path), "source_sha256": _sha256(path), "source_format": "keras",
            "input_precision": str(in_type)}
    if default_precision:
        meta["default_precision"] = str(FixedType.parse(default_precision))
    return Graph(name=_safe(model.name), input=inp, ops=tuple(ops), meta=meta)


def _requantizes(act: tuple[str, dict[str, Any]] | None) -> bool:
    return act is not None and act[0] != "linear"


def _activation_fn(act: tuple[str, dict[str, Any]] | None) -> str | None:
    """The function an activation applies ('relu', 'softmax', 'quantized_relu', ...); None for linear or none."""
    return act[0] if _requantizes(act) else None


def _next_activation(layers: list[Any], i: int) -> str | None:
    """The function of the activation layer at ``i`` (past a folded BatchNormalization) that sets its own type, if any."""
    if i < len(layers) and type(layers[i]).__name__ == "BatchNormalization":
        i += 1
    if i >= len(layers):
        return None
    cls = type(layers[i]).__name__
    if cls == "Activation":
        return _activation_fn((getattr(layers[i].activation, "__name__", ""), {}))
    if cls == "QActivation":
        return _activation_fn(_activation_from_quantizer(layers[i]))
    return {"ReLU": "relu", "Softmax": "softmax"}.get(cls)


def _apply_activation(act: tuple[str, dict[str, Any]], lname: str, add, default) -> None:
    fn, cfg = act
    if fn in ("quantized_relu", "quantized_bits"):
        add("relu" if fn == "quantized_relu" else "linear", lname, qkeras_type(fn, cfg, lname))
    elif fn in ("relu", "softmax", "sigmoid"):
        add(fn, lname, default("activation", lname))
    elif fn == "linear":
        return
    else:
        raise UnsupportedOpError(f"activation {fn}", lname, ["relu", "linear", "softmax", "sigmoid", "quantized_relu", "quantized_bits"])


def _fold_bn(bn: Any, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cfg = bn.get_config()
    weights = bn.get_weights()
    i = 0
    gamma = weights[i] if cfg.get("scale", True) else np.ones(w.shape[1])
    i += 1 if cfg.get("scale", True) else 0
    beta = weights[i] if cfg.get("center", True) else np.zeros(w.shape[1])
    i += 1 if cfg.get("center", True) else 0
    mean, var = weights[i], weights[i + 1]
    s = gamma / np.sqrt(var + cfg.get("epsilon", 1e-3))
    return w * s[None, :], (b - mean) * s + beta


def _sha256(path: Path) -> str:
    if path.is_dir():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _safe(name: str) -> str:
    from ..codegen.render import sanitize
    return sanitize(name)

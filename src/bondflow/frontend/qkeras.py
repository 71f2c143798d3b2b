"""QKeras / Keras-2 frontend: reads .h5, .keras and SavedModel files through tf_keras into a Graph."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QuantizationError, UnsupportedOpError
from ..ir.graph import Graph, TensorSpec
from ..ir.merge import Merge, merge_result_type
from ..ir.ops import Activation, Dense, Elu, Flatten, Op, ParamRelu, Selu, Sigmoid, Softmax, Tanh
from ..ir.tensor_ops import Conv, Pool, Upsample, pool_result_type, same_pads
from ..ir.types import FixedType
from ..render_names import unique_name
from .keras_files import (BN_LAYERS, CONV_LAYERS, DEPTHWISE_LAYERS, MERGE_LAYERS, SEPARABLE_LAYERS, POOL_LAYERS,
                          SUPPORTED_LAYERS, read_model)
from .bnn import BNN_ACTIVATIONS, BNN_DENSE_LAYERS, bnn_threshold, bnn_weights, fold_bn_activation
from .keras_graph import MODEL_INPUT, layer_graph
from .quant import VALUE_QUANTIZERS, grid_type, is_sign_quantizer, sign_threshold
from .quant import (DEFAULT_INPUT_PRECISION, accum_type_for, exact_raw, qkeras_relu_bound, qkeras_type, quantize_checked,
                    scale_shift_op, sidecar_options, slope_type, prelu_op)

__all__ = ["load_keras", "SUPPORTED_LAYERS", "TABLE_ACTIVATIONS"]

#: Activations computed from lookup tables addressed by the top bits of their input (hls4ml's nnet_activation.h).
TABLE_ACTIVATIONS = ("softmax", "sigmoid", "tanh")
#: Bounded ReLUs by name (hls4ml's relu_max<6> and relu_max<1>; relu1 is the BNN code's, bnn_layers.py).
RELU_MAX = {"relu6": 6.0, "relu1": 1.0}

_IGNORED = ("InputLayer", "Dropout")


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
               trust_model: bool = False, weights: str | Path | None = None) -> Graph:
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
    model = read_model(path, trust_model, weights)
    in_shape = model.input_shape
    if isinstance(in_shape, list) or in_shape is None:
        raise UnsupportedOpError("multi-input model", model.name, ["single-input Sequential/functional MLP"])
    if any(d is None for d in in_shape[1:]):
        raise UnsupportedOpError(f"input of open shape {tuple(in_shape[1:])}", model.name, ["a fixed input shape"])
    n_in = int(np.prod(in_shape[1:]))
    in_type = FixedType.parse(input_precision)
    names: set[str] = set()
    inp = TensorSpec(unique_name("input", names), n_in, in_type, tuple(in_shape[1:]) if len(in_shape) > 2 else ())
    ops: list[Op] = []
    cur, cur_type, cur_shape = inp.name, in_type, inp.shape
    pending_pads: tuple[tuple[int, int], ...] | None = None  # the pads of a ZeroPadding this convolution reads

    def default(what: str, lname: str) -> FixedType:
        if not default_precision:
            raise QuantizationError(
                f"layer '{lname}' has float {what}: a default precision must be given (--default-precision fixed<16,6>), not none")
        return FixedType.parse(default_precision)

    def add_activation(fn: str, lname: str, rtype: FixedType, cfg: dict[str, Any] | None = None) -> None:
        nonlocal cur, cur_type
        name = unique_name(lname, names)
        if fn in ("relu", "linear"):
            ops.append(Activation(name=name, input=cur, result_type=rtype, function=fn))
        elif fn in RELU_MAX or fn == "leaky_relu":
            ops.append(_param_relu(name, cur, rtype, lname, RELU_MAX.get(fn), cfg or {}))
        elif fn == "softmax":
            ops.append(Softmax(name=name, input=cur, result_type=rtype))
        elif fn == "sigmoid":
            ops.append(Sigmoid(name=name, input=cur, result_type=rtype))
        elif fn == "tanh":
            ops.append(Tanh(name=name, input=cur, result_type=rtype))
        elif fn == "elu":  # tf_keras's elu activation and ELU layer: alpha 1 unless the layer sets it
            alpha, at = slope_type(float(np.asarray((cfg or {}).get("alpha", 1.0))), lname)
            ops.append(Elu(name=name, input=cur, result_type=rtype, alpha=alpha, alpha_type=at))
        elif fn == "selu":
            ops.append(Selu(name=name, input=cur, result_type=rtype))
        else:
            raise UnsupportedOpError(f"activation {fn}", lname, [*RELU_MAX, "leaky_relu", "relu", "linear", "softmax", "sigmoid", "tanh",
                                                                  "elu", "selu"])
        cur, cur_type = name, rtype

    def add_threshold(fn: str, cfg: dict[str, Any], lname: str) -> None:
        nonlocal cur, cur_type
        if fn in BNN_ACTIVATIONS:
            op = bnn_threshold(fn, cur_type, unique_name(lname, names), cur, lname, cfg.get("dtype", np.float32))
        else:
            op = sign_threshold(fn, cfg, cur_type, unique_name(lname, names), cur, lname)
        ops.append(op)
        cur, cur_type = op.name, op.result_type

    # The layers in topological order, each reading the tensors of earlier ones (a Sequential model: the one
    # before it). Ignored layers pass their input on; "the next layer" of a layer is its only reader.
    nodes, readers = _resolved_graph(model)
    layer_of = {n.name: n.layer for n in nodes}
    produced: dict[str, tuple[str, FixedType, tuple[int, ...]]] = {MODEL_INPUT: (cur, cur_type, cur_shape)}
    pads_of: dict[str, tuple[tuple[int, int], ...]] = {}  # ZeroPadding layer -> pads, folded into the convolution reading it
    folded: set[str] = set()  # BatchNormalization layers folded into the layer before them
    bnn_dense_ops: set[str] = set()  # Dense ops of BinaryDense/TernaryDense layers (their sums are exact)
    absorbed: set[str] = set()  # binary_tanh/ternary_tanh layers folded with the BatchNormalization before them

    def next_layer(name: str) -> Any:
        only = readers.get(name, [])
        return layer_of[only[0]] if len(only) == 1 else None

    for node in nodes:
        layer = node.layer
        cls = type(layer).__name__
        lname = layer.name
        padded = [s for s in node.inputs if s in pads_of]
        if padded and cls not in CONV_LAYERS:
            raise UnsupportedOpError(f"ZeroPadding before {cls}", lname, SUPPORTED_LAYERS,
                                     "bondflow unless a convolution follows it (it folds into the convolution's padding)")
        pending_pads = pads_of[padded[0]] if padded else None
        if cls in MERGE_LAYERS:
            srcs = [produced[s] for s in node.inputs]
            op = _merge_op(layer, cls, unique_name(lname, names), srcs)
            ops.append(op)
            produced[lname] = (op.name, op.result_type, op.infer_shape([s[2] for s in srcs]))
            continue
        cur, cur_type, cur_shape = produced[node.inputs[0]]
        if cls in ("Dense", "QDense") + BNN_DENSE_LAYERS + CONV_LAYERS:
            is_conv = cls in CONV_LAYERS
            quantized = cls.startswith("Q") or cls in BNN_DENSE_LAYERS
            depthwise = cls in DEPTHWISE_LAYERS
            separable = cls in SEPARABLE_LAYERS
            if separable:  # the depthwise half now, as its own exact convolution; the rest is a 1x1 convolution
                dw_w, w, b = (layer.get_weights() + [None])[:3]
                op = _separable_depthwise(layer, cls, unique_name(lname + "_depthwise", names), cur, cur_type, cur_shape,
                                          dw_w, pending_pads, default)
                ops.append(op)
                cur, cur_type, cur_shape = op.name, op.result_type, op.out_shape(cur_shape)
            else:
                w, b = (layer.get_weights() + [None])[:2]
            n_terms = int(np.prod(w.shape[:-2] if depthwise else w.shape[:-1]))  # products summed per output
            no_bias = not getattr(layer, "use_bias", True) or b is None
            if no_bias:
                b = np.zeros(w.shape[-1] * (w.shape[-2] if depthwise else 1))
            nxt = next_layer(lname)
            # A BatchNormalization folds into a linear float layer. After the layer's own activation, or after a
            # quantized layer when a default precision is given, it is its own scale and shift: QKeras normalises
            # the quantized layer's exact output, which folding onto the layer's weight grid would round.
            bn_follows = (nxt is not None and type(nxt).__name__ in BN_LAYERS
                          and not _requantizes(_quantizer(layer, "activation"))
                          and (not quantized or not default_precision))
            if cls in BNN_DENSE_LAYERS:  # +-H or {-H, 0, H}, computed as the source code does; a float bias if any
                wq, wt = bnn_weights(layer, cls, w)
                bt = wt if no_bias and not bn_follows else default("bias", lname)
                bqv = quantize_checked(b, bt, f"layer '{lname}' biases")
            elif cls.startswith("Q"):
                kattr = ("depthwise_quantizer_internal" if depthwise else "pointwise_quantizer_internal" if separable
                         else "kernel_quantizer_internal")
                kq, bq = _quantizer(layer, kattr), _quantizer(layer, "bias_quantizer_internal")
                if kq is None:
                    raise QuantizationError(f"layer '{lname}': {cls} must have a {kattr.replace('_internal', '')}, not none")
                wq = np.asarray(getattr(layer, kattr)(w))
                if depthwise:
                    w, wq = _depthwise_as_conv(w), _depthwise_as_conv(wq)
                wt = grid_type(wq, f"layer '{lname}' {kq[0]} weights") if _on_value_grid(kq) else qkeras_type(*kq, lname)
                bqv = np.asarray(layer.bias_quantizer_internal(b)) if bq else None
                # No bias at all (use_bias=False): zeros fit the weights' type, so no default precision is needed
                # unless a BatchNormalization folds a real bias in.
                bt = (grid_type(bqv, f"layer '{lname}' {bq[0]} biases") if bq and _on_value_grid(bq)
                      else qkeras_type(*bq, lname) if bq else wt if no_bias and not bn_follows else default("bias", lname))
                if bqv is None:
                    bqv = quantize_checked(b, bt, f"layer '{lname}' biases")
            else:
                if depthwise:
                    w = _depthwise_as_conv(w)
                wt = bt = default("weights", lname)
                wq = quantize_checked(w, wt, f"layer '{lname}' weights")
                bqv = quantize_checked(b, bt, f"layer '{lname}' biases")
            # Fold a following BatchNormalization into this layer (as hls4ml's optimizer does); float weights
            # fold before their only rounding, so the folded layer is as close to the float model as its type allows.
            if bn_follows:
                folded.add(nxt.name)
                flt = not quantized
                wq, bqv = _fold_bn(nxt, w if flt else wq, b if flt else bqv)
                wq = quantize_checked(wq, wt, f"layer '{lname}' weights after folding {nxt.name}")
                bqv = quantize_checked(bqv, bt, f"layer '{lname}' biases after folding {nxt.name}")
            w_raw = exact_raw(wq, wt, f"layer '{lname}' weights")
            b_raw = exact_raw(bqv, bt, f"layer '{lname}' biases")
            acc = accum_type_for(cur_type, wt, bt, n_terms)
            act = _quantizer(layer, "activation")
            # A result no element-wise activation requantizes takes the default precision (as hls4ml's Dense
            # result does); so does one feeding a table activation (softmax, sigmoid), which indexes its table
            # with the top bits of its input: an exact accumulator there collapses every input onto one entry.
            # Without a default (fully quantized QKeras) it stays the exact accumulator, equal to QKeras's sums.
            rtype = acc
            follower = _activation_fn(act) if _requantizes(act) else _next_activation(next_layer(lname), next_layer)
            # A BNN layer's BatchNormalization (its own scale and shift here) reads the exact sums, as Keras does.
            bnn_bn = (cls in BNN_DENSE_LAYERS and not bn_follows and nxt is not None and type(nxt).__name__ in BN_LAYERS)
            if default_precision and (follower is None or follower in TABLE_ACTIVATIONS) and not bnn_bn:
                rtype = FixedType.parse(default_precision)
            name = unique_name(lname, names)
            if is_conv:
                strides, pads = ((((1,) * len(cur_shape[:-1])), ((0, 0),) * len(cur_shape[:-1])) if separable
                                 else _conv_geometry(layer, cls, cur_shape, w.shape[:-2], pending_pads))
                ops.append(Conv(name=name, input=cur, result_type=rtype, weight=w_raw, weight_type=wt, bias=b_raw,
                                bias_type=bt, accum_type=acc, strides=strides, pads=pads,
                                groups=w_raw.shape[-2] if depthwise else 1))
            else:
                if len(cur_shape) > 1:
                    raise UnsupportedOpError(f"{cls} on a {len(cur_shape)}-D tensor {cur_shape}", lname, SUPPORTED_LAYERS,
                                             "bondflow (add a Flatten before it)")
                ops.append(Dense(name=name, input=cur, result_type=rtype, weight=w_raw, weight_type=wt,
                                 bias=b_raw, bias_type=bt, accum_type=acc))
                if cls in BNN_DENSE_LAYERS:
                    bnn_dense_ops.add(name)
            cur, cur_type = name, rtype
            cur_shape = ops[-1].out_shape(cur_shape)
            if act is not None:
                _apply_activation(act, lname + "_act", add_activation, default, add_threshold)
        elif cls in BN_LAYERS:
            act_layer = next_layer(lname)
            act_fn = _next_activation(act_layer, next_layer) if type(act_layer).__name__ == "Activation" else None
            if (lname not in folded and act_fn in BNN_ACTIVATIONS and ops and ops[-1].name == cur
                    and cur in bnn_dense_ops):  # BNN Dense, BatchNormalization, binary/ternary_tanh: exact thresholds
                dense, th = fold_bn_activation(ops[-1], layer, act_layer, act_fn)
                th = dataclasses.replace(th, name=unique_name(act_layer.name, names))
                ops[-1] = dense
                ops.append(th)
                absorbed.add(act_layer.name)
                cur, cur_type = th.name, th.result_type
            elif lname not in folded:  # not after a linear Dense/conv: its own per-channel scale and shift, as hls4ml does
                op = _bn_scale_shift(layer, unique_name(lname, names), cur, cur_type, cur_shape, default)
                if _next_activation(next_layer(lname), next_layer) in BNN_ACTIVATIONS:
                    # binary_tanh/ternary_tanh compare its exact value: a cast to the default precision would wrap
                    # large values onto the wrong side and move values near a threshold across it
                    op = dataclasses.replace(op, result_type=op.accum_type)
                ops.append(op)
                cur, cur_type = op.name, op.result_type
        elif cls in POOL_LAYERS:
            op = _pool_op(layer, cls, unique_name(lname, names), cur, cur_type, cur_shape)
            ops.append(op)
            cur, cur_type, cur_shape = op.name, op.result_type, op.out_shape(cur_shape)
        elif cls in ("UpSampling1D", "UpSampling2D"):
            op = _upsample_op(layer, cls, unique_name(lname, names), cur, cur_type, cur_shape)
            ops.append(op)
            cur, cur_shape = op.name, op.out_shape(cur_shape)
        elif cls in ("ZeroPadding1D", "ZeroPadding2D"):
            pad = layer.get_config()["padding"]
            pad = [pad] if isinstance(pad, int) or (cls == "ZeroPadding1D" and isinstance(pad[0], int)) else pad
            zp = tuple((p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in pad)
            pads_of[lname] = zp * 2 if len(zp) == 1 and cls == "ZeroPadding2D" else zp
        elif lname in absorbed:  # an activation folded into the thresholds of the BatchNormalization before it
            pass
        elif cls == "QActivation":
            _apply_activation(_activation_from_quantizer(layer), lname, add_activation, default, add_threshold)
        elif cls == "Activation":
            _apply_activation((getattr(layer.activation, "__name__", str(layer.activation)), {"dtype": _np_dtype(layer)}),
                              lname, add_activation, default, add_threshold)
        elif cls in ("ReLU", "LeakyReLU"):
            c = layer.get_config()
            if cls == "LeakyReLU":  # Keras 2 names the slope alpha, Keras 3 negative_slope
                c = {"negative_slope": c.get("negative_slope", c.get("alpha", 0.3))}
            if float(np.asarray(c.get("threshold") or 0.0)) != 0.0:
                raise UnsupportedOpError(f"ReLU threshold={float(np.asarray(c['threshold'])):g}", lname, ["ReLU(threshold=0)"])
            plain = c.get("max_value") is None and float(np.asarray(c.get("negative_slope") or 0.0)) == 0.0
            add_activation("relu" if plain else "leaky_relu", lname, default("activation", lname), c)
        elif cls == "Softmax":
            add_activation("softmax", lname, default("activation", lname))
        elif cls == "ELU":
            add_activation("elu", lname, default("activation", lname), {"alpha": layer.get_config().get("alpha", 1.0)})
        elif cls == "PReLU":  # learned slopes (shared_axes broadcast them): an exact product per element, as hls4ml's prelu
            op = prelu_op(unique_name(lname, names), cur, default("activation", lname), layer.get_weights()[0],
                          tuple(cur_shape) if cur_shape else (inp.size,), lname)
            ops.append(op)
            cur, cur_type = op.name, op.result_type
        elif cls == "Flatten" or (cls == "Reshape" and len(_reshape_target(layer, cur_shape or (inp.size,))) == 1):
            if len(cur_shape) > 1:  # a vector already is flat: nothing to do
                name = unique_name(lname, names)
                ops.append(Flatten(name=name, input=cur, result_type=cur_type))
                cur, cur_shape = name, (int(np.prod(cur_shape)),)
        elif cls == "Reshape":
            target = _reshape_target(layer, cur_shape or (inp.size,))
            if node.inputs[0] != MODEL_INPUT or len(readers.get(MODEL_INPUT, [])) != 1:
                raise UnsupportedOpError(f"Reshape {tuple(cur_shape)} -> {target}", lname, SUPPORTED_LAYERS,
                                         "bondflow (a Reshape of the model's input, or to a vector)")
            # Row-major either way: the input's values keep their order, so the model reads the same stream as an image.
            inp = TensorSpec(inp.name, inp.size, inp.type, target)
            cur_shape = target
        else:
            raise UnsupportedOpError(cls, lname, SUPPORTED_LAYERS)
        produced[lname] = (cur, cur_type, cur_shape)
    meta = {"source": str(path), "source_sha256": _sha256(path), "source_format": "keras",
            "input_precision": str(in_type)}
    if path.suffix.lower() == ".json":  # architecture JSON + weights: both are the source
        from .keras_files import find_weights
        w = find_weights(path, weights)
        meta.update(source_weights=str(w), source_weights_sha256=_sha256(w))
    if default_precision:
        meta["default_precision"] = str(FixedType.parse(default_precision))
    if nodes and nodes[-1].name in pads_of:
        raise UnsupportedOpError("ZeroPadding at the end", model.name, SUPPORTED_LAYERS, "bondflow unless a convolution follows it")
    return Graph(name=_safe(model.name), input=inp, ops=tuple(ops), meta=meta)


def _np_dtype(layer: Any) -> type:
    """The float type a layer computes in (float64 in files written with that dtype)."""
    return np.float64 if str(getattr(layer, "dtype", "float32")) == "float64" else np.float32


def _reshape_target(layer: Any, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """A Keras Reshape's per-sample target shape, its -1 resolved."""
    target = [int(d) for d in layer.get_config()["target_shape"]]
    size = int(np.prod(in_shape)) if in_shape else 0
    if -1 in target:
        rest = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = size // rest if rest else 0
    return tuple(target)


def _requantizes(act: tuple[str, dict[str, Any]] | None) -> bool:
    return act is not None and act[0] != "linear"


def _activation_fn(act: tuple[str, dict[str, Any]] | None) -> str | None:
    """The function an activation applies ('relu', 'softmax', 'quantized_relu', ...); None for linear or none."""
    return act[0] if _requantizes(act) else None


def _resolved_graph(model: Any) -> tuple[list[Any], dict[str, list[str]]]:
    """The model's layers without the ignored ones (their readers read their input instead), and each layer's readers."""
    nodes = layer_graph(model, SUPPORTED_LAYERS)
    alias: dict[str, str] = {}
    kept = []
    for n in nodes:
        srcs = tuple(alias.get(s, s) for s in n.inputs)
        if type(n.layer).__name__ in _IGNORED:
            alias[n.name] = srcs[0] if srcs else MODEL_INPUT
            continue
        kept.append(type(n)(n.layer, srcs))
    readers: dict[str, list[str]] = {}
    for n in kept:
        for s in n.inputs:
            readers.setdefault(s, []).append(n.name)
    return kept, readers


def _merge_op(layer: Any, cls: str, name: str, srcs: list[tuple[str, FixedType, tuple[int, ...]]]) -> Merge:
    """Add/Subtract/Multiply/Maximum/Minimum compute exactly (a sum gets one more integer bit, as hls4ml types an
    unquantized Add; a product every bit); Concatenate joins along its axis in a common type holding every input
    exactly. Keras computes them in float32, exactly at these widths."""
    if cls != "Concatenate":  # Add, Subtract, Multiply, Maximum, Minimum: element by element
        fn, axis = cls.lower(), 0
    else:
        fn, rank = "concatenate", len(srcs[0][2])
        axis = int(layer.get_config().get("axis", -1))
        axis = axis - 1 if axis > 0 else rank + axis
        if not 0 <= axis < rank:
            raise UnsupportedOpError(f"Concatenate axis {layer.get_config().get('axis')}", layer.name, SUPPORTED_LAYERS,
                                     f"bondflow (a per-sample axis of the rank-{rank} inputs)")
    op = Merge(name=name, inputs=tuple(s[0] for s in srcs), result_type=merge_result_type(fn, [s[1] for s in srcs]),
               function=fn, axis=axis)
    try:
        op.infer_shape([s[2] for s in srcs])
    except Exception as e:  # a shape problem, reported with the layer's name
        raise UnsupportedOpError(f"{cls} of shapes {[s[2] for s in srcs]}", layer.name, SUPPORTED_LAYERS, f"bondflow ({e})") from None
    return op


def _next_activation(layer: Any, next_layer: Any) -> str | None:
    """The function of ``layer`` (past a folded BatchNormalization) when it is an activation that sets its own type."""
    if layer is not None and type(layer).__name__ in BN_LAYERS:
        layer = next_layer(layer.name)
    if layer is None:
        return None
    cls = type(layer).__name__
    if cls == "Activation":
        return _activation_fn((getattr(layer.activation, "__name__", ""), {}))
    if cls == "QActivation":
        return _activation_fn(_activation_from_quantizer(layer))
    return {"ReLU": "relu", "LeakyReLU": "leaky_relu", "Softmax": "softmax", "ELU": "elu", "PReLU": "prelu"}.get(cls)


def _on_value_grid(q: tuple[str, dict[str, Any]]) -> bool:
    """Whether a weight quantizer's values set the type (signs, powers of two), not a declared fixed-point range."""
    return q[0] in VALUE_QUANTIZERS or is_sign_quantizer(*q)


def _apply_activation(act: tuple[str, dict[str, Any]], lname: str, add, default, add_threshold) -> None:
    fn, cfg = act
    if is_sign_quantizer(fn, cfg) or fn in BNN_ACTIVATIONS:  # binary, ternary, 1-bit quantized_bits, binary_tanh, ...
        add_threshold(fn, cfg, lname)
    elif fn in ("quantized_relu", "quantized_bits"):
        t = qkeras_type(fn, cfg, lname)
        bound = qkeras_relu_bound(cfg, t, lname) if fn == "quantized_relu" else None
        if bound is None:
            add("relu" if fn == "quantized_relu" else "linear", lname, t)
        else:
            add("leaky_relu", lname, t, {"max_value": bound})
    elif fn in RELU_MAX or fn == "leaky_relu":  # tf_keras's leaky_relu activation: slope 0.2
        add(fn, lname, default("activation", lname), {"negative_slope": 0.2} if fn == "leaky_relu" else None)
    elif fn in ("relu", "softmax", "sigmoid", "tanh", "elu", "selu"):
        add(fn, lname, default("activation", lname))
    elif fn == "quantized_tanh":  # QKeras computes tanh in float, then quantizes: hls4ml's table is another function
        raise UnsupportedOpError("activation quantized_tanh", lname, ["tanh (float, with --default-precision)"],
                                 "bondflow (no exact table for QKeras's float tanh)")
    elif fn == "linear":
        return
    else:
        raise UnsupportedOpError(f"activation {fn}", lname, ["relu", "linear", "softmax", "sigmoid", "tanh", "elu", "selu", "quantized_relu", "quantized_bits",
                                                              "binary", "ternary", *BNN_ACTIVATIONS])


def _param_relu(name: str, cur: str, rtype: FixedType, lname: str, max_value: float | None,
                cfg: dict[str, Any]) -> ParamRelu:
    """ReLU(max_value, negative_slope), LeakyReLU(alpha), relu6, relu1 as one exact op (slope typed by slope_type)."""
    m = cfg.get("max_value", max_value)
    m = None if m is None else float(np.asarray(m))  # tf_keras stores ReLU's settings as float32 arrays
    a = float(np.asarray(cfg.get("negative_slope") or 0.0))
    alpha, at = slope_type(a, lname) if a else (0.0, None)
    return ParamRelu(name=name, input=cur, result_type=rtype, max_value=m, alpha=alpha, alpha_type=at)


def _separable_depthwise(layer: Any, cls: str, name: str, cur: str, xt: FixedType, in_shape: tuple[int, ...],
                         dw: np.ndarray, pads: tuple[tuple[int, int], ...] | None, default: Any) -> Conv:
    """The depthwise half of a separable convolution: no bias, its exact accumulator as its result (QKeras and Keras
    feed the unrounded sums to the pointwise half)."""
    if cls.startswith("Q"):
        kq = _quantizer(layer, "depthwise_quantizer_internal")
        if kq is None:
            raise QuantizationError(f"layer '{layer.name}': {cls} must have a depthwise_quantizer, not none")
        dwq = np.asarray(layer.depthwise_quantizer_internal(dw))
        wt = grid_type(dwq, f"layer '{layer.name}' {kq[0]} depthwise weights") if _on_value_grid(kq) else qkeras_type(*kq, layer.name)
    else:
        wt = default("weights", layer.name)
        dwq = quantize_checked(dw, wt, f"layer '{layer.name}' depthwise weights")
    full = _depthwise_as_conv(dwq)
    acc = accum_type_for(xt, wt, wt, int(np.prod(dw.shape[:-2])))
    strides, pads_ = _conv_geometry(layer, cls, in_shape, dw.shape[:-2], pads)
    return Conv(name=name, input=cur, result_type=acc, weight=exact_raw(full, wt, f"layer '{layer.name}' depthwise weights"),
                weight_type=wt, bias=np.zeros(full.shape[-1], dtype=np.int64), bias_type=wt, accum_type=acc,
                strides=strides, pads=pads_, groups=full.shape[-2])


def _depthwise_as_conv(w: np.ndarray) -> np.ndarray:
    """A depthwise kernel (taps..., C, M) as a convolution kernel (taps..., C, C*M): output channel c*M + j reads
    input channel c alone (Keras's order), every other weight zero, so the products and sums are the same ones."""
    *taps, c, m = w.shape
    full = np.zeros((*taps, c, c * m), dtype=w.dtype)
    for ch in range(c):
        full[..., ch, ch * m:(ch + 1) * m] = w[..., ch, :]
    return full


def _conv_geometry(layer: Any, cls: str, in_shape: tuple[int, ...], kernel: tuple[int, ...],
                   extra: tuple[tuple[int, int], ...] | None) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Strides and explicit pads of a Keras convolution (channels last); unsupported options are one line."""
    cfg = layer.get_config()
    nd = len(kernel)
    if len(in_shape) != nd + 1:
        raise UnsupportedOpError(f"{cls} on a tensor of shape {in_shape}", layer.name, SUPPORTED_LAYERS,
                                 f"bondflow (it needs a {nd}-D input with channels)")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedOpError(f"{cls} data_format={cfg['data_format']}", layer.name, SUPPORTED_LAYERS, "bondflow (channels_last only)")
    for key, ok in (("dilation_rate", 1), ("groups", 1)):
        v = cfg.get(key, ok)
        if any(int(d) != ok for d in (v if isinstance(v, (list, tuple)) else [v])):
            raise UnsupportedOpError(f"{cls} {key}={v}", layer.name, SUPPORTED_LAYERS, f"bondflow ({key} must be {ok})")
    strides = tuple(int(s) for s in (cfg.get("strides") or (1,) * nd))
    padding = cfg.get("padding", "valid")
    if padding == "same":
        pads = tuple(same_pads(n, k, st) for n, k, st in zip(in_shape[:-1], kernel, strides))
    elif padding == "valid":
        pads = ((0, 0),) * nd
    else:
        raise UnsupportedOpError(f"{cls} padding={padding}", layer.name, SUPPORTED_LAYERS, "bondflow (valid or same padding only)")
    if extra is not None:
        if len(extra) != nd:
            raise UnsupportedOpError(f"ZeroPadding of {len(extra)} dims before a {nd}-D convolution", layer.name, SUPPORTED_LAYERS)
        pads = tuple((a + c, b + d) for (a, b), (c, d) in zip(extra, pads))
    return strides, pads


def _image_layer(layer: Any, cls: str, in_shape: tuple[int, ...]) -> tuple[dict[str, Any], int]:
    """A 1-D/2-D image layer's config and spatial rank, once its input is such an image, channels last."""
    cfg = layer.get_config()
    nd = 2 if "2D" in cls else 1
    if len(in_shape) != nd + 1:
        raise UnsupportedOpError(f"{cls} on a tensor of shape {in_shape}", layer.name, SUPPORTED_LAYERS)
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedOpError(f"{cls} data_format={cfg['data_format']}", layer.name, SUPPORTED_LAYERS, "bondflow (channels_last only)")
    return cfg, nd


def _pool_op(layer: Any, cls: str, name: str, cur: str, xt: FixedType, in_shape: tuple[int, ...]) -> Pool:
    """Max pooling keeps its input type (exact); an average over N = 2^k values gains k fraction bits (exact)."""
    cfg, nd = _image_layer(layer, cls, in_shape)
    fn = "max" if "Max" in cls else "average"
    if cls.startswith("Global"):
        if cfg.get("keepdims"):
            raise UnsupportedOpError(f"{cls} keepdims=True", layer.name, SUPPORTED_LAYERS)
        pool, strides, pads = (0,) * nd, (1,) * nd, ((0, 0),) * nd
    else:
        pool = tuple(int(p) for p in (cfg["pool_size"] if isinstance(cfg["pool_size"], (list, tuple)) else [cfg["pool_size"]] * nd))
        strides = tuple(int(s) for s in (cfg.get("strides") or pool))
        pads = (tuple(same_pads(n, k, st) for n, k, st in zip(in_shape[:-1], pool, strides))
                if cfg.get("padding", "valid") == "same" else ((0, 0),) * nd)
    win = tuple(n if p == 0 else p for p, n in zip(pool, in_shape[:-1]))
    n = int(np.prod(win))
    if fn == "average" and n & (n - 1):
        raise UnsupportedOpError(f"{cls} over {n} values", layer.name, SUPPORTED_LAYERS,
                                 "bondflow (an average is exact in fixed point only over a power-of-two window)")
    rt = pool_result_type(fn, xt, n)
    op = Pool(name=name, input=cur, result_type=rt, function=fn, pool=pool, strides=strides, pads=pads)
    op.out_shape(in_shape)  # a shape problem is reported here, with the layer's name
    return op


def _upsample_op(layer: Any, cls: str, name: str, cur: str, xt: FixedType, in_shape: tuple[int, ...]) -> Upsample:
    """Nearest-neighbour upsampling keeps its input type (copies are exact); bilinear is not fixed-point exact."""
    cfg, nd = _image_layer(layer, cls, in_shape)
    if cfg.get("interpolation", "nearest") != "nearest":
        raise UnsupportedOpError(f"{cls} interpolation={cfg['interpolation']}", layer.name, SUPPORTED_LAYERS,
                                 "bondflow (nearest only: other interpolations are not exact in fixed point)")
    size = cfg.get("size", 2)
    size = tuple(int(s) for s in (size if isinstance(size, (list, tuple)) else [size] * nd))
    return Upsample(name=name, input=cur, result_type=xt, size=size)


def _bn_affine(bn: Any, n: int, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BatchNormalization at inference as y = s*x + t per channel (the last axis; ``rank``: the tensor's, to check it)."""
    cfg = bn.get_config()
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if rank is not None and axis not in (-1, rank):
        raise UnsupportedOpError(f"BatchNormalization axis={axis}", bn.name, SUPPORTED_LAYERS, "bondflow (the channel axis, -1)")
    weights = bn.get_weights()
    i = 0
    gamma = weights[i] if cfg.get("scale", True) else np.ones(n)
    i += 1 if cfg.get("scale", True) else 0
    beta = weights[i] if cfg.get("center", True) else np.zeros(n)
    i += 1 if cfg.get("center", True) else 0
    mean, var = weights[i], weights[i + 1]
    # QBatchNormalization runs the same formula on its quantized gamma, beta, mean and variance (QKeras's call)
    vals = {"gamma": gamma, "beta": beta, "mean": mean, "var": var}
    used = {"gamma": cfg.get("scale", True), "beta": cfg.get("center", True), "mean": True, "var": True}
    for key, qname in (("gamma", "gamma_quantizer_internal"), ("beta", "beta_quantizer_internal"),
                       ("mean", "mean_quantizer_internal"), ("var", "variance_quantizer_internal")):
        q = getattr(bn, qname, None)
        if q is not None and used[key]:
            vals[key] = np.asarray(q(np.asarray(vals[key], dtype=np.float32)), dtype=np.float64)
    s = vals["gamma"] / np.sqrt(vals["var"] + cfg.get("epsilon", 1e-3))
    return s, vals["beta"] - vals["mean"] * s


def _fold_bn(bn: Any, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, t = _bn_affine(bn, w.shape[-1])
    return w * s, b * s + t  # s scales the output channels (the last axis), Dense or convolution


def _bn_scale_shift(bn: Any, name: str, cur: str, xt: FixedType, shape: tuple[int, ...], default: Any) -> Op:
    """A BatchNormalization no Dense/conv absorbs (after an activation, on the input): its own scale and shift."""
    wt = default("weights", bn.name)
    s, t = _bn_affine(bn, int(shape[-1]), len(shape))
    return scale_shift_op(name, cur, xt, shape, s, t, wt, f"layer '{bn.name}'")


def _sha256(path: Path) -> str:
    if path.is_dir():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _safe(name: str) -> str:
    from ..codegen.render import sanitize
    return sanitize(name)

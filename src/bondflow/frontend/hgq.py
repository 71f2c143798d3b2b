"""HGQ2 models (Keras 3 ``.keras`` files of ``hgq.layers``) read without HGQ, Keras or TensorFlow installed.

The file is a zip of ``config.json`` and ``model.weights.h5``; each HGQ fixed-point quantizer keeps its per-element
bit widths as variables there: keep-negative ``k`` (uint8), integer bits ``i`` (without the sign) and fraction bits
``f`` (KIF) or total bits ``b`` (KBI, ``f = b - i``), all rounded half to even as HGQ does at inference.

Rules (docs/frontend.md, "HGQ2"):

* Data-lane quantizers (a layer's ``iq``/``oq``, a standalone ``Quantizer`` layer) become an ``element_quant`` op:
  each feature cast to its own ``fixed<k+i+f, k+i>`` with the quantizer's rounding (TRN, RND, RND_CONV; HGQ's
  stochastic S_ modes are these at inference) and overflow (WRAP, SAT, SAT_SYM); elements of 0 bits give 0.
* Kernels and biases are constants quantized here exactly as HGQ does (float32 arithmetic), typed with the widest
  per-element type of the layer; a QDense's accumulator and result are exact (no rounding), as HGQ's float math
  is whenever its sums fit float32's 24-bit mantissa.
* The graph input is the first quantizer's widest type (rounded once there; a second cast per element is exact).
* CNNs (QConv1D/QConv2D, max and average pooling, Flatten) keep each tensor's shape: a data-lane quantizer's
  per-element widths run over every position and channel of an image, so ``element_quant`` covers the flattened
  image; a convolution's exact accumulator holds every sum for each input channel's widest range.
* Branches (functional models): ``QAdd`` quantizes each input with its own data-lane quantizer and adds exactly;
  Keras ``Add``/``Concatenate`` are exact merges (ir/merge.py).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError, QuantizationError, UnsupportedOpError, unsupported_layers
from ..ir.graph import Graph, TensorSpec
from ..ir.merge import Merge, merge_result_type
from ..ir.ops import Dense, Flatten, Op
from ..ir.tensor_ops import Conv
from ..ir.types import FixedType
from ..render_names import unique_name
from .hgq_common import (POOLS, SUPPORTED_HGQ_LAYERS, Quantizer, add_relu, conv_geometry, elem_ranges, exact_accum, hgq_quantize,
                         input_type, ints, load_or_one_line, pool_op, safe_name)
from .keras3 import end_layers

__all__ = ["is_hgq_config", "load_hgq", "SUPPORTED_HGQ_LAYERS", "hgq_quantize"]

_CONVS = ("QConv1D", "QConv2D")
_MERGES = {"Add": "add", "QAdd": "add", "Concatenate": "concatenate"}
_ACTIVATIONS = (None, "linear", "relu")


def _snake(name: str) -> str:
    from .keras3 import _snake as snake
    return snake(name)


def is_hgq_config(cfg: Any) -> bool:
    """Whether a Keras 3 config holds HGQ layers (their module is ``hgq...``)."""
    from .keras_files import config_layers
    return any(str(l.get("module", "")).startswith("hgq") or str(l.get("registered_name") or "").startswith("hgq>")
               for l in config_layers(cfg))


def _layer_vars(h5: Any, key: str, sub: str | None) -> list[np.ndarray]:
    path = f"layers/{key}/{sub}/quantizer/vars" if sub else f"layers/{key}/vars"
    grp = h5.get(path)
    return [] if grp is None else [np.asarray(grp[str(j)]) for j in range(len(grp))]


def _topology(cfg: dict[str, Any], path: Path) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The model's layers in order and, per layer name, the layers it reads (a Sequential: the one before; a
    functional model: its single call's ``inbound_nodes``; shared layers, called twice, are refused)."""
    from .keras_files import config_layers
    layers = config_layers(cfg)
    sources: dict[str, list[str]] = {}
    prev: str | None = None
    for l in layers:
        name = str(l.get("config", {}).get("name", l.get("name")))
        if cfg.get("class_name") == "Sequential":
            sources[name] = [prev] if prev is not None else []
            prev = name
            continue
        nodes = l.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise UnsupportedOpError(f"{l.get('class_name')} called {len(nodes)} times (a shared layer)", name,
                                     ["layers called once"], "bondflow's HGQ reader")
        srcs = []
        for node in nodes:
            for a in (node.get("args", []) if isinstance(node, dict) else []):
                for t in (a if isinstance(a, list) else [a]):
                    if isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":
                        srcs.append(str(t["config"]["keras_history"][0]))
        sources[name] = srcs
    return layers, sources


def _output_layer(cfg: dict[str, Any]) -> str | None:
    """A functional model's single output layer (None for a Sequential); several outputs are refused."""
    if cfg.get("class_name") == "Sequential":
        return None
    refs = end_layers(cfg, "output_layers")
    if len(refs) != 1:
        raise UnsupportedOpError(f"{len(refs)} outputs", str(cfg.get("config", {}).get("name", "model")), ["one output"],
                                 "bondflow's HGQ reader")
    return str(refs[0][0])


def load_hgq(path: Path | str, **_: Any) -> Graph:
    """A Graph equal to HGQ2's inference of the ``.keras`` model in ``path`` (supported layers, chained or branched)."""
    return load_or_one_line(_load_hgq, path, "a well-formed HGQ2 .keras model")


def _load_hgq(path: Path) -> Graph:
    import hashlib

    import h5py
    try:
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json"))
            if "model.weights.h5" not in z.namelist():
                raise ModelLoadError(f"{path} must hold model.weights.h5 (a Keras 3 .keras archive), not lack it")
            blob = z.read("model.weights.h5")
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path} must be a readable .keras archive, not corrupt ({type(e).__name__}: {e})") from None
    layers, sources = _topology(cfg, path)
    bad = []
    for l in layers:
        cls, lc = l.get("class_name", "?"), l.get("config", {})
        name = str(lc.get("name", "?"))
        ok = cls in ("InputLayer", "QDense", "QBatchNormDense", "QEinsumDense", "QSum", "QBatchNormalization", "Quantizer", "ReLU", "Dropout",
                     "Flatten", *_CONVS, *POOLS, *_MERGES) or \
            (cls == "Activation" and lc.get("activation") in ("relu", "linear"))
        if cls in ("QDense", "QBatchNormDense", "QEinsumDense", *_CONVS) and lc.get("activation") not in _ACTIVATIONS:
            bad.append((f"{cls} activation {lc.get('activation')}", name))
        elif cls == "ReLU" and any(lc.get(a) not in (None, 0, 0.0) for a in ("max_value", "negative_slope", "threshold")):
            bad.append(("ReLU with max_value/negative_slope/threshold", name))
        elif not ok:
            bad.append((cls if cls != "Activation" else f"Activation {lc.get('activation')}", name))
    if bad:
        raise unsupported_layers(bad, SUPPORTED_HGQ_LAYERS, "bondflow's HGQ reader")
    import io
    names: set[str] = set()
    ops: list[Op] = []
    in_shape: tuple[int, ...] | None = None
    seen: dict[str, int] = {}
    inp: TensorSpec | None = None
    cur, cur_type = "", FixedType(1, 1)
    shape: tuple[int, ...] = ()
    # per Keras layer, the tensor it outputs: (graph name, type, shape), or None while it is still the float input
    state: dict[str, tuple[str, FixedType, tuple[int, ...]] | None] = {}
    pending: str | None = None  # the layer whose output the loop has just built
    with h5py.File(io.BytesIO(blob), "r") as h5:
        for l in layers:
            if pending is not None:
                state[pending] = None if inp is None else (cur, cur_type, shape)
            cls, lc = l["class_name"], l.get("config", {})
            lname = str(lc.get("name", cls))
            pending = None
            if cls == "InputLayer":
                in_shape = tuple(lc.get("batch_shape") or lc.get("batch_input_shape") or (None,))[1:]
                state[lname] = None
                continue
            srcs = sources.get(lname, [])
            if any(src not in state for src in srcs):
                raise ModelLoadError(f"{path}: layer '{lname}' must read earlier layers, not {srcs}")
            if all(state[src] is None for src in srcs):  # the float input
                if inp is not None:
                    raise UnsupportedOpError("a second layer reading the float input", lname,
                                             ["one layer reading the input (put a Quantizer first and branch after it)"],
                                             "bondflow's HGQ reader")
            elif len(srcs) == 1:
                cur, cur_type, shape = state[srcs[0]]  # type: ignore[misc]
            pending = lname
            if in_shape is None and l.get("build_config"):
                in_shape = tuple(l["build_config"].get("input_shape", (None,)))[1:]
            snake = _snake(cls)
            c = seen.get(snake, 0)
            seen[snake] = c + 1
            key = snake + (f"_{c}" if c else "")
            if inp is None:
                if in_shape is None or None in in_shape or not 1 <= len(in_shape) <= 3:
                    raise UnsupportedOpError(f"input of shape {in_shape}", lname,
                                             ["a fixed-size input: (n,), (length, channels) or (height, width, channels)"],
                                             "bondflow's HGQ reader")
                shape = tuple(int(d) for d in in_shape)

            def quant(conf: Any, sub: str | None, what: str) -> Quantizer:
                return Quantizer(conf, _layer_vars(h5, key, sub), f"layer '{lname}' {what}", bool(lc.get("trainable", True)))

            def add_datalane(q: Quantizer, suffix: str) -> None:
                nonlocal cur, cur_type, inp
                if inp is None:
                    inp = TensorSpec(unique_name("input", names), int(np.prod(shape)), input_type(q, shape), shape)
                    cur, cur_type = inp.name, inp.type
                op = q.datalane(shape, unique_name(lname + suffix, names), cur, cur_type)
                ops.append(op)
                cur, cur_type = op.name, op.result_type

            def producer() -> Op | None:
                """The op computing the current tensor (its per-element ranges, when an element_quant)."""
                return next((o for o in reversed(ops) if o.name == cur), None)

            def need_quantized(what: str) -> None:
                if inp is None:
                    raise QuantizationError(f"layer '{lname}' must read quantized data (an input quantizer first), "
                                            f"not the float input: {what}")

            def emit(op: Op) -> None:
                nonlocal cur, cur_type, shape
                ops.append(op)
                shape = op.out_shape(shape)
                cur, cur_type = op.name, op.result_type

            if cls == "Quantizer":
                add_datalane(Quantizer(lc.get("config"), _standalone_vars(h5, key), f"layer '{lname}' quantizer",
                                        bool(lc.get("trainable", True))), "")
                continue
            if cls == "Dropout":
                continue
            if cls in _MERGES:
                if len(srcs) < 2:
                    raise UnsupportedOpError(f"{cls} of {len(srcs)} tensor(s)", lname, ["a merge of 2 or more tensors"],
                                             "bondflow's HGQ reader")
                if any(state[src] is None for src in srcs):
                    raise QuantizationError(f"layer '{lname}' must merge quantized tensors (a Quantizer on the input "
                                            f"first), not the float input: {cls} of {srcs}")
                confs = lc.get("iq_confs")
                confs = confs if isinstance(confs, list) else [confs] * len(srcs)
                parts = []
                for j, src in enumerate(srcs):
                    cur, cur_type, shape = state[src]  # type: ignore[misc]
                    if cls == "QAdd" and lc.get("enable_iq", True):  # one data-lane quantizer per input
                        sub = "iq/quantizers/quantizer" + (f"_{j}" if j else "")
                        add_datalane(Quantizer(confs[j], _layer_vars(h5, key, sub), f"layer '{lname}' input {j} quantizer",
                                                bool(lc.get("trainable", True))), f"_iq{j}")
                    parts.append((cur, cur_type, shape))
                fn = _MERGES[cls]
                axis = int(lc.get("axis", -1))
                axis = axis % len(shape) if axis < 0 else axis - 1  # Keras counts the batch axis
                op = Merge(name=unique_name(lname, names), inputs=tuple(p[0] for p in parts), function=fn,
                           axis=axis if fn == "concatenate" else 0, result_type=merge_result_type(fn, [p[1] for p in parts]))
                ops.append(op)
                shape = op.infer_shape([p[2] for p in parts])
                cur, cur_type = op.name, op.result_type
                if cls == "QAdd" and lc.get("enable_oq", False):
                    add_datalane(quant(lc.get("oq_conf"), "oq", "output quantizer (oq)"), "_oq")
                continue
            if cls == "Flatten":
                if len(shape) > 1:
                    need_quantized(cls)
                    emit(Flatten(name=unique_name(lname, names), input=cur, result_type=cur_type))
                continue
            if cls in ("ReLU", "Activation"):
                need_quantized(cls)
                if cls == "ReLU" or lc.get("activation") == "relu":
                    add_relu(ops, names, lname, cur, cur_type)
                    cur, cur_type = ops[-1].name, ops[-1].result_type
                continue
            if cls == "QBatchNormalization":
                if lc.get("enable_iq", True):
                    add_datalane(quant(lc.get("iq_conf"), "iq", "input quantizer (iq)"), "_iq")
                need_quantized(cls)
                emit(_batchnorm(lname, lc, _layer_vars(h5, key, None), quant(lc.get("kq_conf"), "kq", "scale quantizer (kq)"),
                                quant(lc.get("bq_conf"), "bq", "offset quantizer (bq)"), producer(), shape, cur, cur_type,
                                unique_name(lname, names)))
                if lc.get("enable_oq", False):
                    add_datalane(quant(lc.get("oq_conf"), "oq", "output quantizer (oq)"), "_oq")
                continue
            if cls == "QSum":
                if lc.get("enable_iq", True):
                    add_datalane(quant(lc.get("iq_conf"), "iq", "input quantizer (iq)"), "_iq")
                need_quantized(cls)
                for op in _qsum(lname, lc, producer(), shape, cur, cur_type, names):
                    emit(op)
                continue
            if cls in POOLS:
                if cls.startswith("Q") and lc.get("enable_iq", True):
                    add_datalane(quant(lc.get("iq_conf"), "iq", "input quantizer (iq)"), "_iq")
                need_quantized(cls)
                emit(pool_op(lname, cls, lc, shape, cur, cur_type, unique_name(lname, names)))
                if cls.startswith("Q") and lc.get("enable_oq", False):
                    add_datalane(quant(lc.get("oq_conf"), "oq", "output quantizer (oq)"), "_oq")
                continue
            # QDense, QBatchNormDense, QEinsumDense, QConv1D, QConv2D
            if lc.get("enable_iq", True):
                add_datalane(quant(lc.get("iq_conf"), "iq", "input quantizer (iq)"), "_iq")
            need_quantized(f"{cls} with enable_iq=False")
            dense_vars = _layer_vars(h5, key, None)
            use_bias = bool(lc.get("use_bias", True))
            if cls == "QEinsumDense":  # Keras's EinsumDense: read only as the dense over the last axis it can be
                use_bias = _einsum_as_dense(lname, lc, shape, np.asarray(dense_vars[0]) if dense_vars else np.zeros(0))
            if len(dense_vars) < 1 + use_bias:
                raise ModelLoadError(f"{path}: model.weights.h5 must hold layers/{key}/vars for layer '{lname}', not lack it")
            if cls == "QBatchNormDense":
                if len(shape) != 1:
                    raise UnsupportedOpError(f"QBatchNormDense on a {len(shape)}-D tensor {shape}", lname,
                                             list(SUPPORTED_HGQ_LAYERS), "bondflow's HGQ reader (add a Flatten before it)")
                dense_vars = _fused_batchnorm_dense(lname, lc, dense_vars, shape[0])
            kernel = dense_vars[0]
            is_conv = cls in _CONVS
            pointwise = not is_conv and len(shape) > 1  # a Dense on (positions, channels): Keras applies it per position
            if pointwise:
                if kernel.shape != (shape[-1], kernel.shape[-1]):
                    raise ModelLoadError(f"layer '{lname}' kernel must have shape ({shape[-1]}, units), not {kernel.shape}")
                kernel = kernel.reshape((1,) * (len(shape) - 1) + kernel.shape)
                if len(shape) > 3:
                    raise UnsupportedOpError(f"{cls} on a tensor of shape {shape}", lname, list(SUPPORTED_HGQ_LAYERS),
                                             "bondflow's HGQ reader (at most 2 spatial axes)")
            if pointwise:
                units = int(kernel.shape[-1])
                want = kernel.shape
            elif is_conv:
                nd = 1 if cls == "QConv1D" else 2
                if len(shape) != nd + 1:
                    raise UnsupportedOpError(f"{cls} on a tensor of shape {shape}", lname, list(SUPPORTED_HGQ_LAYERS),
                                             f"bondflow's HGQ reader (it needs a {nd}-D input with channels)")
                units = int(lc.get("filters", kernel.shape[-1]))
                want = tuple(int(k) for k in ints(lc.get("kernel_size"), nd)) + (shape[-1], units)
            else:
                if len(shape) != 1:
                    raise UnsupportedOpError(f"QDense on a {len(shape)}-D tensor {shape}", lname, list(SUPPORTED_HGQ_LAYERS),
                                             "bondflow's HGQ reader (add a Flatten before it)")
                units = int(lc.get("units", kernel.shape[-1]))
                want = (shape[0], units)
            if kernel.shape != want:
                raise ModelLoadError(f"layer '{lname}' kernel must have shape {want}, not {kernel.shape}")
            w_raw, w_t = quant(lc.get("kq_conf"), "kq", "kernel quantizer (kq)").constants(kernel)
            if use_bias:
                b_raw, b_t = quant(lc.get("bq_conf"), "bq", "bias quantizer (bq)").constants(dense_vars[1])
            else:
                b_raw, b_t = np.zeros(units, dtype=np.int64), FixedType(1, 1)
            lo, hi = elem_ranges(producer(), cur_type, int(np.prod(shape)))
            if is_conv or pointwise:  # every position of a channel meets every tap: the channel's widest range bounds it
                lo = lo.reshape(-1, shape[-1]).min(axis=0)
                hi = hi.reshape(-1, shape[-1]).max(axis=0)
                lo, hi = np.tile(lo, int(np.prod(w_raw.shape[:-2]))), np.tile(hi, int(np.prod(w_raw.shape[:-2])))
            acc = exact_accum(lo, hi, cur_type, w_raw.reshape(-1, units), w_t, b_raw, b_t, lname)
            dname = unique_name(lname, names)
            if is_conv or pointwise:
                strides, pads = (conv_geometry(lname, cls, lc, shape, w_raw.shape[:-2]) if is_conv
                                 else ((1,) * (len(shape) - 1), ((0, 0),) * (len(shape) - 1)))
                emit(Conv(name=dname, input=cur, result_type=acc, weight=w_raw, weight_type=w_t, bias=b_raw,
                          bias_type=b_t, accum_type=acc, strides=strides, pads=pads))
            else:
                emit(Dense(name=dname, input=cur, result_type=acc, weight=w_raw, weight_type=w_t, bias=b_raw,
                           bias_type=b_t, accum_type=acc))
            if lc.get("activation") == "relu":
                add_relu(ops, names, lname + "_relu", cur, cur_type)
                cur, cur_type = ops[-1].name, ops[-1].result_type
            if lc.get("enable_oq", False):
                add_datalane(quant(lc.get("oq_conf"), "oq", "output quantizer (oq)"), "_oq")
        if pending is not None:
            state[pending] = None if inp is None else (cur, cur_type, shape)
    if not ops:
        raise ModelLoadError(f"{path} must hold at least one HGQ layer, not none")
    out_layer = _output_layer(cfg)
    if out_layer is not None and (state.get(out_layer) or ("",))[0] != ops[-1].name:
        raise UnsupportedOpError(f"output '{out_layer}' before the model's last layer", out_layer,
                                 ["the last layer as the output"], "bondflow's HGQ reader")
    assert inp is not None
    meta = {"source": str(path), "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "source_format": "hgq2"}
    return Graph(name=safe_name(cfg.get("config", {}).get("name", "hgq_model")), input=inp, ops=tuple(ops), meta=meta)


def _standalone_vars(h5: Any, key: str) -> list[np.ndarray]:
    """A standalone Quantizer layer keeps its variables under layers/<key>/quantizer/vars."""
    grp = h5.get(f"layers/{key}/quantizer/vars")
    return [] if grp is None else [np.asarray(grp[str(j)]) for j in range(len(grp))]


def _batchnorm(lname: str, lc: dict[str, Any], vars_: list[np.ndarray], kq: Quantizer, bq: Quantizer, prev: Op,
               shape: tuple[int, ...], cur: str, xt: FixedType, name: str) -> Op:
    """HGQ's QBatchNormalization at inference, ``x * kq(s) + bq(o)`` per channel with s = gamma / sqrt(var + eps) and
    o = beta - mean * s in float32 as HGQ computes them (gamma 1 without scale; beta 1 without center, as HGQ 0.2 has
    it): a diagonal Dense (a one-group-per-channel 1x1 convolution on an image) with an exact accumulator."""
    if lc.get("axis", -1) not in (-1, len(shape), [-1], [len(shape)]):
        raise UnsupportedOpError(f"QBatchNormalization axis={lc.get('axis')}", lname, list(SUPPORTED_HGQ_LAYERS),
                                 "bondflow's HGQ reader (the channel axis, -1)")
    scale, center = bool(lc.get("scale", True)), bool(lc.get("center", True))
    need = int(scale) + int(center) + 2
    c = int(shape[-1])
    if len(vars_) < need or any(np.shape(v) != (c,) for v in vars_[:need]):
        raise ModelLoadError(f"layer '{lname}' must hold its gamma/beta/moving mean/moving variance as {need} vectors of "
                             f"{c}, not {[np.shape(v) for v in vars_[:need]]}")
    f32 = np.float32
    k = 0
    gamma = np.asarray(vars_[k], f32) if scale else f32(1)
    k += int(scale)
    beta = np.asarray(vars_[k], f32) if center else f32(1)
    k += int(center)
    mean, var = np.asarray(vars_[k], f32), np.asarray(vars_[k + 1], f32)
    eps = f32(float(lc.get("epsilon", 1e-3)))
    s = (gamma / np.sqrt((var + eps).astype(f32)).astype(f32)).astype(f32) * np.ones(c, f32)
    o = (beta - (mean * s).astype(f32)).astype(f32) * np.ones(c, f32)
    s_raw, s_t = kq.constants(s)
    o_raw, o_t = bq.constants(o)
    lo, hi = elem_ranges(prev, xt, int(np.prod(shape)))
    lo, hi = lo.reshape(-1, c).min(axis=0), hi.reshape(-1, c).max(axis=0)
    diag = np.diag(s_raw)
    acc = exact_accum(lo, hi, xt, diag, s_t, o_raw, o_t, lname)
    common = dict(name=name, input=cur, result_type=acc, weight_type=s_t, bias=o_raw, bias_type=o_t, accum_type=acc)
    if len(shape) == 1:
        return Dense(weight=diag, **common)
    nd = len(shape) - 1
    return Conv(weight=diag.reshape((1,) * nd + (c, c)), strides=(1,) * nd, pads=((0, 0),) * nd, groups=c, **common)


def _fused_batchnorm_dense(lname: str, lc: dict[str, Any], vars_: list[np.ndarray], n_in: int) -> list[np.ndarray]:
    """HGQ's QBatchNormDense at inference: its kernel and bias fused with the input's batch normalization, in float32
    as HGQ computes them before its kq/bq quantizers: ``kernel * (gamma / sqrt(var + eps))[:, None]`` and
    ``bias - mean @ kernel`` (HGQ offsets by the unscaled kernel). Variables: kernel, bias, [gamma], beta (ebops'
    scalar), ebops, moving mean, moving variance."""
    f32 = np.float32
    scale = bool(lc.get("scale", True))
    if len(vars_) < 6 + scale or any(np.shape(v) != (n_in,) for v in [*vars_[-2:], *vars_[2:2 + scale]]):
        raise ModelLoadError(f"layer '{lname}' must hold kernel, bias, {'gamma, ' if scale else ''}beta, ebops, moving "
                             f"mean and variance ({n_in} each), not {[np.shape(v) for v in vars_]}")
    kernel, bias = np.asarray(vars_[0], f32), np.asarray(vars_[1], f32)
    gamma = np.asarray(vars_[2], f32) if scale else f32(1)
    mean, var = np.asarray(vars_[-2], f32), np.asarray(vars_[-1], f32)
    eps = f32(float(lc.get("epsilon", 1e-3)))
    scaler = (gamma / np.sqrt((var + eps).astype(f32)).astype(f32)).astype(f32) * np.ones(n_in, f32)
    fused = (scaler[:, None] * kernel).astype(f32)
    offset = -(mean @ kernel).astype(f32)  # one float32 dot: a rounding boundary within an ulp would be the only risk
    return [fused, (bias + offset).astype(f32)]


def _einsum_as_dense(lname: str, lc: dict[str, Any], shape: tuple[int, ...], kernel: np.ndarray) -> bool:
    """Check that a QEinsumDense is a dense over the last axis (``...c,cd->...d``, ``bnc,cd->bnd``; bias on d or
    none) and say whether it has a bias; anything else is one line."""
    eq = str(lc.get("equation", "")).replace(" ", "")
    try:
        lhs, out = eq.split("->")
        x, k = lhs.split(",")
    except ValueError:
        x = k = out = ""
    bias = lc.get("bias_axes")
    ok = len(k) == 2 and kernel.ndim == 2 and x.endswith(k[0]) and out == x[:-1] + k[1] and k[0] not in x[:-1] \
        and k[1] not in x and (x.startswith("...") or len(x.replace("...", "")) == len(shape) + 1) \
        and bias in (None, "", k[1])
    if not ok:
        raise UnsupportedOpError(f"QEinsumDense equation {eq!r} (bias axes {bias!r})", lname, list(SUPPORTED_HGQ_LAYERS),
                                 "bondflow's HGQ reader (a dense over the last axis: '...c,cd->...d', bias on d)")
    return bool(bias)


def _qsum(lname: str, lc: dict[str, Any], prev: Op, shape: tuple[int, ...], cur: str, xt: FixedType,
          names: set[str]) -> list[Op]:
    """HGQ's QSum over every position of each channel (or over all features of a vector), times its power-of-two
    scale: a full-size depthwise convolution of ones (then a Flatten), or a Dense to one value; exact accumulator."""
    axes = lc.get("axes", -1)
    axes = sorted({(int(a) + len(shape) + 1) if int(a) < 0 else int(a) for a in (axes if isinstance(axes, list) else [axes])})
    spatial = list(range(1, len(shape))) if len(shape) > 1 else [1]
    scale = float(lc.get("scale", 1.0))
    k = int(np.round(np.log2(scale))) if scale > 0 else 0
    if axes != spatial or lc.get("keepdims", False) or scale <= 0 or 2.0 ** k != scale:
        raise UnsupportedOpError(f"QSum axes={lc.get('axes')} keepdims={lc.get('keepdims', False)} scale={scale}", lname,
                                 list(SUPPORTED_HGQ_LAYERS), "bondflow's HGQ reader (a sum over every position, or over "
                                 "a vector's features, keepdims=False, a power-of-two scale)")
    wt = FixedType(1, 1 + k, signed=False)  # raw 1 is the value 2^k
    c = shape[-1] if len(shape) > 1 else 1
    n_pos = int(np.prod(shape[:-1])) if len(shape) > 1 else int(shape[0])
    lo, hi = elem_ranges(prev, xt, int(np.prod(shape)))
    if len(shape) == 1:
        w = np.ones((n_pos, 1), dtype=np.int64)
        acc = exact_accum(lo, hi, xt, w, wt, np.zeros(1, np.int64), FixedType(1, 1), lname)
        return [Dense(name=unique_name(lname, names), input=cur, result_type=acc, weight=w, weight_type=wt,
                      bias=np.zeros(1, np.int64), bias_type=FixedType(1, 1), accum_type=acc)]
    eye = np.eye(c, dtype=np.int64)
    w = np.broadcast_to(eye, shape[:-1] + (c, c)).copy()  # (*spatial, c_in, c_out): channel c sums only itself
    acc = exact_accum(lo, hi, xt, w.reshape(-1, c), wt, np.zeros(c, np.int64), FixedType(1, 1), lname)
    conv = Conv(name=unique_name(lname, names), input=cur, result_type=acc, weight=w, weight_type=wt,
                bias=np.zeros(c, np.int64), bias_type=FixedType(1, 1), accum_type=acc, strides=(1,) * (len(shape) - 1),
                pads=((0, 0),) * (len(shape) - 1), groups=c)
    return [conv, Flatten(name=unique_name(lname + "_flat", names), input=conv.name, result_type=acc)]



"""HGQ v1 proxy models (Keras 2 ``.h5`` files of plain layers and ``FixedPointQuantizer`` layers) read with h5py alone.

HGQ v1 exports a trained model as a "proxy": plain Keras layers (Dense, Conv2D, Activation, pooling, ...) whose weights
already lie on their fixed-point grids, each followed by a ``FixedPointQuantizer`` holding per-element ``keep_negative``
(k), ``bits`` (b) and ``integers`` (I, counting the sign bit as ap_fixed does). At inference HGQ computes, per element,
``v = x * 2^(b-I)``, rounds v (TRN floor, RND floor(v + 1/2), RND_CONV half to even), bounds it to b bits (WRAP,
SAT, SAT_SYM) and returns ``v / 2^(b-I)``, or 0 where b == 0: that is ``fixed<b, I>`` (``ufixed`` when k == 0), i.e.
HGQ2's (k, i, f) = (k, I - k, b - I), so each quantizer becomes the ``element_quant`` op HGQ2's reader makes.

Rules (docs/frontend.md, "HGQ v1 proxy models"): weights are checked to lie on the layer's ``weight_t``/``bias_t``
grid (the proxy's own overrides) and held in the narrowest type on that grid; Dense/Conv accumulators are exact, as
for HGQ2; ReLU keeps the exact value; the graph input is the first quantizer's widest type.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BondflowError, ModelLoadError, QuantizationError, UnsupportedOpError, unsupported_layers
from ..ir.element_quant import ElementQuant
from ..ir.graph import Graph, TensorSpec
from ..ir.ops import Activation, Dense, Flatten, Op
from ..ir.tensor_ops import Conv
from ..ir.types import MAX_WIDTH, FixedType, Overflow, Rounding
from ..render_names import unique_name
from .hgq_common import (POOLS, Quantizer, add_relu, conv_geometry, elem_ranges, exact_accum, fit_type, input_type, ints,
                         load_or_one_line, pool_op, safe_name)

__all__ = ["PROXY_CLASSES", "SUPPORTED_PROXY_LAYERS", "is_proxy_config", "is_proxy_file", "proxy_config", "load_hgq_proxy"]

PROXY_CLASSES = ("FixedPointQuantizer", "HGQ>FixedPointQuantizer")
SUPPORTED_PROXY_LAYERS = ("InputLayer", "FixedPointQuantizer", "Dense", "Conv1D", "Conv2D", "Activation (relu, linear)",
                          "ReLU", "MaxPooling1D/2D", "AveragePooling1D/2D", "GlobalMaxPooling1D/2D",
                          "GlobalAveragePooling1D/2D", "Flatten", "Reshape (of the input, or to a vector)", "Dropout")
_WHERE = "bondflow's HGQ proxy-model reader"
#: The modes element_quant (and the RTL) implements; HGQ v1 also knows TRN_ZERO, RND_ZERO, RND_INF, SAT_ZERO, WRAP_SM.
_ROUND = {"TRN": Rounding.TRN, "RND": Rounding.RND, "RND_CONV": Rounding.RND_CONV}
_OVERFLOW = {"WRAP": Overflow.WRAP, "SAT": Overflow.SAT, "SAT_SYM": Overflow.SAT_SYM}
_POOL_LAYERS = ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalMaxPooling1D",
                "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D")
_SIMPLE = ("InputLayer", "Dense", "Conv1D", "Conv2D", "Flatten", "Reshape", "Dropout", "ReLU", *PROXY_CLASSES, *_POOL_LAYERS)
_ACTIVATIONS = ("linear", "relu")


def is_proxy_config(cfg: Any) -> bool:
    """Whether a Keras 2 model config holds HGQ's FixedPointQuantizer layers."""
    from .keras_files import config_layers
    return any(str(l.get("class_name")) in PROXY_CLASSES for l in config_layers(cfg))


def is_proxy_file(path: Path) -> bool:
    """Whether ``path`` is a Keras .h5 model whose config holds FixedPointQuantizer layers (a damaged file: False)."""
    if path.suffix.lower() not in (".h5", ".hdf5") or not path.is_file():
        return False
    try:
        from .keras_files import model_config
        return is_proxy_config(model_config(path))
    except BondflowError:
        return False


def proxy_config(path: Path) -> dict[str, Any]:
    """The proxy model's config, every layer bondflow cannot read named in one message (before anything is built)."""
    from .keras_files import config_layers, model_config
    cfg = model_config(path)
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{path} must hold a Keras model config, not {type(cfg).__name__}")
    bad = []
    for l in config_layers(cfg):
        cls, lc = str(l.get("class_name", "?")), l.get("config") if isinstance(l.get("config"), dict) else {}
        name = str(lc.get("name", "?"))
        if cls == "Activation":
            if lc.get("activation") not in _ACTIVATIONS:
                bad.append((f"Activation {lc.get('activation')}", name))
        elif cls not in _SIMPLE:
            bad.append((cls, name))
        elif cls in ("Dense", "Conv1D", "Conv2D") and lc.get("activation", "linear") not in _ACTIVATIONS:
            bad.append((f"{cls} activation {lc.get('activation')}", name))
        elif cls == "ReLU" and any(lc.get(a) not in (None, 0, 0.0) for a in ("max_value", "negative_slope", "threshold")):
            bad.append(("ReLU with max_value/negative_slope/threshold", name))
    if bad:
        raise unsupported_layers(bad, SUPPORTED_PROXY_LAYERS, _WHERE)
    return cfg


class _ProxyQuantizer(Quantizer):
    """One FixedPointQuantizer as HGQ2's quantizer object (same per-element broadcast and element_quant op)."""

    def __init__(self, lc: dict[str, Any], w: dict[str, np.ndarray], where: str) -> None:  # not super(): that parses HGQ2 configs
        rnd, ovf = str(lc.get("RND", "TRN")).upper(), str(lc.get("SAT", "WRAP")).upper()
        if rnd not in _ROUND or ovf not in _OVERFLOW:
            raise QuantizationError(f"{where} must round with one of {sorted(_ROUND)} and overflow with one of "
                                    f"{sorted(_OVERFLOW)}, not {rnd}/{ovf}")
        self.rounding, self.overflow, self.hgq_round, self.where = _ROUND[rnd], _OVERFLOW[ovf], rnd, where
        self.q_type, self.trainable, self.is_weight = "kbi", False, False
        missing = [n for n in ("keep_negative", "bits", "integers") if n not in w]
        if missing:
            raise ModelLoadError(f"{where} must hold keep_negative, bits and integers weights, not lack {', '.join(missing)}")
        k, b, I = (np.asarray(w[n]).astype(np.int64) for n in ("keep_negative", "bits", "integers"))
        if not (k.shape == b.shape == I.shape):
            raise ModelLoadError(f"{where} keep_negative, bits, integers must have one shape, not {k.shape}, {b.shape}, {I.shape}")
        if not np.all((k == 0) | (k == 1)) or np.any(b < 0):
            raise ModelLoadError(f"{where} must have keep_negative 0 or 1 and bits >= 0 per element, not keep_negative "
                                 f"{sorted(set(k.ravel().tolist()))[:4]}, bits min {int(b.min(initial=0))}")
        k, I = np.where(b == 0, 0, k), np.where(b == 0, 0, I)  # as HGQ: a 0-bit element is pruned, always 0
        self.k, self.i, self.f = k, I - k, b - I


def _h5_weights(h5: Any, lname: str) -> dict[str, np.ndarray]:
    """A layer's saved weights by short name (``kernel``, ``bias``, ``bits``, ...), from ``model_weights/<layer>``."""
    grp = h5.get(f"model_weights/{lname}")
    if grp is None:
        return {}
    out = {}
    for wn in grp.attrs.get("weight_names", []):
        wn = wn.decode() if isinstance(wn, bytes) else str(wn)
        out[wn.split("/")[-1].split(":")[0]] = np.asarray(grp[wn])
    return out


def _chain(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The layers in order; each must read the one before it (HGQ's proxies of chained models), else one line."""
    from .keras_files import config_layers
    layers = config_layers(cfg)
    if cfg.get("class_name") == "Sequential":
        return layers
    prev = None
    for l in layers:
        name = str((l.get("config") or {}).get("name", l.get("name")))
        srcs = []
        for node in l.get("inbound_nodes") or []:
            for t in node if isinstance(node, list) else (node.get("args", []) if isinstance(node, dict) else []):
                if isinstance(t, list) and t:
                    srcs.append(str(t[0]))
                elif isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":
                    srcs.append(str(t["config"]["keras_history"][0]))
        if (srcs and srcs != [prev]) or (not srcs and prev is not None) or len(l.get("inbound_nodes") or []) > 1:
            raise UnsupportedOpError(f"{l.get('class_name')} reading {srcs or 'nothing'} (a branch)", name,
                                     ["a chain of layers, each reading the one before it"], _WHERE)
        prev = name
    outs = (cfg.get("config") or {}).get("output_layers") or []
    outs = [outs] if outs and not isinstance(outs[0], list) else outs
    if outs and (len(outs) != 1 or str(outs[0][0]) != prev):
        raise UnsupportedOpError(f"outputs {[o[0] for o in outs]}", str(prev), ["the last layer as the only output"], _WHERE)
    return layers


def _on_grid(v: np.ndarray, declared: Any, what: str) -> tuple[np.ndarray, FixedType]:
    """Weights as raw integers of the narrowest type on their grid: the proxy's declared type (``weight_t``/``bias_t``)
    when it names one, every value checked to lie on it; else the coarsest grid holding them all."""
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ModelLoadError(f"{what} must be finite, not NaN/inf")
    if declared is not None:
        t = FixedType.parse(str(declared))
        frac = t.frac_bits
        raw = np.ldexp(v, frac)
        off = raw != np.round(raw)
        if off.any():
            j = tuple(int(a) for a in np.argwhere(off)[0])
            raise ModelLoadError(f"{what} must lie on the 2^-{frac} grid of its declared {t}, not {str(np.float32(v[j]))} at {j}")
        raw = raw.astype(np.int64)
        if raw.size and (raw.min() < t.min_raw or raw.max() > t.max_raw):
            raise ModelLoadError(f"{what} must fit its declared {t}, not span {str(np.float32(v.min()))}..{str(np.float32(v.max()))}")
    else:
        frac = next((f for f in range(MAX_WIDTH + 1) if np.all(np.ldexp(v, f) == np.round(np.ldexp(v, f)))), None)
        if frac is None:
            raise ModelLoadError(f"{what} must lie on a fixed-point grid of at most 2^-{MAX_WIDTH}, not be float values")
        raw = np.ldexp(v, frac).astype(np.int64)
    return raw, fit_type(int(raw.min(initial=0)), int(raw.max(initial=0)), frac, what)


def _overrides(cfg_layers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each layer's hls4ml types as the proxy's quantizers declare them (``overrides.layers``)."""
    out: dict[str, dict[str, Any]] = {}
    for l in cfg_layers:
        ov = (l.get("config") or {}).get("overrides")
        for name, conf in ((ov or {}).get("layers") or {}).items() if isinstance(ov, dict) else ():
            if isinstance(conf, dict):
                out.setdefault(str(name), {}).update(conf)
    return out


def load_hgq_proxy(path: Path | str, **_: Any) -> Graph:
    """A Graph equal to the HGQ v1 proxy model in ``path`` (a chain of supported layers and FixedPointQuantizers)."""
    return load_or_one_line(_load, path, "a well-formed HGQ proxy .h5 model")


def _load(path: Path) -> Graph:
    import h5py
    cfg = proxy_config(path)
    layers = _chain(cfg)
    declared = _overrides(layers)
    names: set[str] = set()
    ops: list[Op] = []
    inp: TensorSpec | None = None
    cur, cur_type = "", FixedType(1, 1)
    shape: tuple[int, ...] = ()
    with h5py.File(path, "r") as h5:
        for n, l in enumerate(layers):
            cls, lc = str(l["class_name"]), l.get("config") or {}
            lname = str(lc.get("name", cls))
            if n == 0 or cls == "InputLayer":
                in_shape = lc.get("batch_input_shape") or lc.get("batch_shape")
                if in_shape is not None and inp is None:
                    shape = tuple(in_shape)[1:]
                    if None in shape or not 1 <= len(shape) <= 3:
                        raise UnsupportedOpError(f"input of shape {shape}", lname, ["a fixed-size input: (n,), (length, "
                                                 "channels) or (height, width, channels)"], _WHERE)
                    shape = tuple(int(d) for d in shape)
                if cls == "InputLayer":
                    continue
            if not shape:
                raise ModelLoadError(f"{path} must declare its input shape (an InputLayer), not lack it")

            def emit(op: Op) -> None:
                nonlocal cur, cur_type, shape
                ops.append(op)
                shape = op.out_shape(shape)
                cur, cur_type = op.name, op.result_type

            if cls in PROXY_CLASSES:
                q = _ProxyQuantizer(lc, _h5_weights(h5, lname), f"layer '{lname}' ({cls})")
                if inp is None:
                    inp = TensorSpec(unique_name("input", names), int(np.prod(shape)), input_type(q, shape), shape)
                    cur, cur_type = inp.name, inp.type
                op = q.datalane(shape, unique_name(lname, names), cur, cur_type)
                ops.append(op)
                cur, cur_type = op.name, op.result_type
                continue
            if cls == "Dropout" or (cls == "Activation" and lc.get("activation") == "linear"):
                continue
            if cls == "Reshape":
                target = _reshape_target(lname, lc, shape)
                if all(isinstance(o, ElementQuant) or (isinstance(o, Activation) and o.function == "relu") for o in ops) \
                        and 1 <= len(target) <= 3:  # only element-wise ops so far: the input itself takes the shape
                    shape = target
                    if inp is not None:
                        inp = TensorSpec(inp.name, inp.size, inp.type, target)  # row-major: the same values in order
                    continue
                if len(target) != 1:
                    raise UnsupportedOpError(f"Reshape {shape} -> {target}", lname, SUPPORTED_PROXY_LAYERS, _WHERE)
                cls = "Flatten"
            if inp is None:
                raise QuantizationError(f"layer '{lname}' must read quantized data (a FixedPointQuantizer on the input "
                                        f"first), not the float input: {cls}")
            if cls == "Flatten":
                if len(shape) > 1:
                    emit(Flatten(name=unique_name(lname, names), input=cur, result_type=cur_type))
                continue
            if cls in ("ReLU", "Activation"):
                add_relu(ops, names, lname, cur, cur_type)
                cur, cur_type = ops[-1].name, ops[-1].result_type
                continue
            if cls in _POOL_LAYERS:
                emit(pool_op(lname, cls if cls in POOLS else "Q" + cls, lc, shape, cur, cur_type, unique_name(lname, names)))
                continue
            _weighted(cls, lname, lc, _h5_weights(h5, lname), declared.get(lname, {}), ops, names, shape, cur, cur_type, emit)
            cur, cur_type = ops[-1].name, ops[-1].result_type
            if lc.get("activation") == "relu":
                add_relu(ops, names, lname + "_relu", cur, cur_type)
                cur, cur_type = ops[-1].name, ops[-1].result_type
    if inp is None or not ops:
        raise ModelLoadError(f"{path} must hold at least one FixedPointQuantizer on its input, not none")
    meta = {"source": str(path), "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "source_format": "hgq_proxy"}
    return Graph(name=safe_name((cfg.get("config") or {}).get("name", "hgq_proxy")), input=inp, ops=tuple(ops), meta=meta)


def _reshape_target(lname: str, lc: dict[str, Any], shape: tuple[int, ...]) -> tuple[int, ...]:
    """A Reshape's per-sample target shape, its -1 resolved; one that does not hold the tensor is one line."""
    t = [int(d) for d in lc.get("target_shape") or ()]
    size = int(np.prod(shape))
    if t.count(-1) == 1:
        rest = int(np.prod([d for d in t if d != -1]))
        t[t.index(-1)] = size // rest if rest else 0
    if not t or int(np.prod(t)) != size or min(t) < 1:
        raise ModelLoadError(f"layer '{lname}' Reshape target {lc.get('target_shape')} must hold the {shape} tensor, not differ")
    return tuple(t)


def _weighted(cls: str, lname: str, lc: dict[str, Any], w: dict[str, np.ndarray], declared: dict[str, Any],
              ops: list[Op], names: set[str], shape: tuple[int, ...], cur: str, cur_type: FixedType, emit: Any) -> None:
    """A Dense or Conv1D/Conv2D with exactly typed constants and an exact accumulator (as HGQ2's QDense/QConv)."""
    if "kernel" not in w:
        raise ModelLoadError(f"layer '{lname}' must have its kernel in model_weights, not lack it")
    kernel = w["kernel"]
    use_bias = bool(lc.get("use_bias", True))
    is_conv = cls != "Dense"
    if is_conv:
        nd = 1 if cls == "Conv1D" else 2
        if len(shape) != nd + 1:
            raise UnsupportedOpError(f"{cls} on a tensor of shape {shape}", lname, SUPPORTED_PROXY_LAYERS,
                                     f"{_WHERE} (it needs a {nd}-D input with channels)")
        units = int(lc.get("filters", kernel.shape[-1]))
        want = tuple(ints(lc.get("kernel_size"), nd)) + (shape[-1], units)
    else:
        if len(shape) != 1:
            raise UnsupportedOpError(f"Dense on a {len(shape)}-D tensor {shape}", lname, SUPPORTED_PROXY_LAYERS,
                                     f"{_WHERE} (add a Flatten before it)")
        units = int(lc.get("units", kernel.shape[-1]))
        want = (shape[0], units)
    if kernel.shape != want:
        raise ModelLoadError(f"layer '{lname}' kernel must have shape {want}, not {kernel.shape}")
    w_raw, w_t = _on_grid(kernel, declared.get("weight_t"), f"layer '{lname}' kernel")
    if use_bias:
        if "bias" not in w or np.shape(w["bias"]) != (units,):
            raise ModelLoadError(f"layer '{lname}' must have a bias of {units} values, not {np.shape(w.get('bias'))}")
        b_raw, b_t = _on_grid(w["bias"], declared.get("bias_t"), f"layer '{lname}' bias")
    else:
        b_raw, b_t = np.zeros(units, dtype=np.int64), FixedType(1, 1)
    prod = next((o for o in reversed(ops) if o.name == cur), None)  # per-element ranges when an element_quant made x
    lo, hi = elem_ranges(prod, cur_type, int(np.prod(shape)))  # type: ignore[arg-type]
    if is_conv:  # every position of a channel meets every tap: the channel's widest range bounds it
        lo = np.tile(lo.reshape(-1, shape[-1]).min(axis=0), int(np.prod(w_raw.shape[:-2])))
        hi = np.tile(hi.reshape(-1, shape[-1]).max(axis=0), int(np.prod(w_raw.shape[:-2])))
    acc = exact_accum(lo, hi, cur_type, w_raw.reshape(-1, units), w_t, b_raw, b_t, lname)
    common = dict(name=unique_name(lname, names), input=cur, result_type=acc, weight=w_raw, weight_type=w_t, bias=b_raw,
                  bias_type=b_t, accum_type=acc)
    if is_conv:
        strides, pads = conv_geometry(lname, cls, lc, shape, w_raw.shape[:-2])
        emit(Conv(strides=strides, pads=pads, **common))
    else:
        emit(Dense(**common))

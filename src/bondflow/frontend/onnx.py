"""ONNX / QONNX frontend: qonnx cleanup, then Quant/MatMul/Gemm/Add/Relu/... chains into a Graph."""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelLoadError, QuantizationError, UnsupportedOpError
from ..ir.graph import Graph, TensorSpec
from ..ir.merge import Merge, merge_result_type
from ..ir.ops import Activation, Dense, Elu, Flatten, Op, ParamRelu, Selu, Sigmoid, Softmax, Tanh, Threshold
from ..ir.types import FixedType
from ..render_names import unique_name
from .onnx_relu import RELU_ONNX_OPS, _text, onnx_prelu, onnx_relu_params
from .onnx_tables import ACTIVATION_KINDS, MERGE_KINDS, exp_linear_kwargs, table_kwargs
from .onnx_export import ELEMENT_KEY, ELEMENT_PART_KEY, NAME_KEY, TYPE_KEY, export_order, is_copy
from .quant import DEFAULT_INPUT_PRECISION, accum_type_for, exact_raw, quantize_checked

__all__ = ["load_onnx", "SUPPORTED_ONNX_OPS", "BIPOLAR_TYPE"]

SUPPORTED_ONNX_OPS = ("Quant", "BipolarQuant", "MultiThreshold", "MatMul", "Gemm", "Add", "Add/Sub/Mul/Max/Min/Concat of two tensors", "Mul/Add/Sub/Div by a constant", "BatchNormalization",
                      "Relu", "Clip(min=0)", "LeakyRelu", "PRelu", "Elu", "Selu", "Softmax", "Sigmoid", "Tanh", "Flatten", "Reshape", "Identity", "Transpose/Unsqueeze/Squeeze of 1-sized axes")
# op_types the node loop handles (some only in certain positions; it reports those itself).
_HANDLED = {"Quant", "BipolarQuant", "MultiThreshold", "MatMul", "Gemm", "Add", "Mul", "Sub", "Div", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "PRelu", "Elu",
            "Selu", "Softmax", "Sigmoid", "Tanh", "Flatten", "Reshape", "Identity", "Transpose", "Unsqueeze", "Squeeze", "Concat", "Max", "Min"}
# Custom-op domains qonnx executes and renames during its cleanup: QKeras->QONNX and FINN write the old
# 'finn.custom_op.general' (or 'finn'), Brevitas writes 'onnx.brevitas', often without an opset import.
# qonnx's ConvertToChannelsLastAndClean (and hls4ml's *_ch_last models) write Conv/MaxPool/BatchNormalization in
# 'qonnx.custom_op.channels_last', also undeclared (onnx_cnn.py reads them as NHWC).
_QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas", "finn", "qonnx.custom_op.channels_last")
#: A bipolar value sign(x)*s is held as h = (sign - 1)/2 in {-1, 0}: floor then saturate to this type gives
#: exactly -1 for x < 0 and 0 for x >= 0; the next Dense reads s*sign = 2*s*h + s exactly (weights 2sW, bias + s*sum W).
BIPOLAR_TYPE = FixedType(1, 1, signed=True, rounding="TRN", overflow="SAT")
# qonnx's rounding modes (intquant.resolve_rounding_mode) that are ap_fixed modes; CEIL and UP are not.
_ROUNDING = {"ROUND": "RND_CONV", "HALF_EVEN": "RND_CONV", "FLOOR": "TRN", "DOWN": "TRN_ZERO",
             "HALF_UP": "RND_INF", "HALF_DOWN": "RND_ZERO"}


def _quant_type(node: Any, consts: dict[str, np.ndarray]) -> FixedType:
    """A Quant node's FixedType: exact from bondflow metadata, else from its scale/zeropt/bitwidth."""
    for p in node.metadata_props:
        if _text(p.key) == TYPE_KEY:
            return FixedType.parse(_text(p.value))
    scale, zp, bw = (_scalar(node, consts, i, what) for i, what in zip(node.input[1:4], ("scale", "zeropt", "bitwidth")))
    attrs = {a.name: a for a in node.attribute}
    signed = bool(attrs["signed"].i) if "signed" in attrs else True
    narrow = bool(attrs["narrow"].i) if "narrow" in attrs else False
    rmode = attrs["rounding_mode"].s.decode().upper() if "rounding_mode" in attrs else "ROUND"
    frac = -math.log2(scale) if scale > 0 else float("nan")
    if zp != 0 or not float(frac).is_integer() or not float(bw).is_integer():
        raise QuantizationError(f"Quant '{node.name}' must have a power-of-two scale, zero zero-point and integer bit width"
                                f" (fixed point), not scale={scale}, zeropt={zp}, bitwidth={bw}")
    if rmode not in _ROUNDING:
        raise QuantizationError(f"Quant '{node.name}' rounding_mode must be one of {sorted(_ROUNDING)}, not {rmode}")
    if not signed and narrow:
        raise QuantizationError(f"Quant '{node.name}' must not be unsigned narrow-range (max 2^b-2 is no fixed-point range), not narrow=1")
    if signed and int(bw) == 1:
        raise QuantizationError(f"Quant '{node.name}' bit width must be at least 2 when signed (qonnx makes 1 bit bipolar), not 1")
    width = int(bw)
    return FixedType(width, width - int(frac), signed=signed, rounding=_ROUNDING[rmode],
                     overflow="SAT_SYM" if narrow and signed else "SAT")


def _scalar(node: Any, consts: dict[str, np.ndarray], name: str, what: str) -> float:
    """One per-tensor constant of a quantizer (a per-channel array of different values has no single fixed-point type)."""
    if name not in consts:
        raise UnsupportedOpError(f"{node.op_type} with dynamic {what}", node.name, SUPPORTED_ONNX_OPS)
    v = np.asarray(consts[name], dtype=np.float64).reshape(-1)
    if v.size == 0 or np.any(v != v[0]):
        raise QuantizationError(f"{node.op_type} '{node.name}' {what} must be one value per tensor, not {v.size} values"
                                f" ({', '.join(f'{x:g}' for x in v[:3])}{', ...' if v.size > 3 else ''})")
    return float(v[0])


def _bipolar_scale(node: Any, consts: dict[str, np.ndarray]) -> float | None:
    """The scale s of a bipolar quantizer (sign(x)*s: BipolarQuant, or a signed 1-bit Quant, which qonnx runs as
    bipolar), None for other nodes and for bondflow's own Quant nodes (they carry their exact type)."""
    if any(_text(p.key) == TYPE_KEY for p in node.metadata_props):
        return None
    if node.op_type == "Quant":
        attrs = {a.name: a for a in node.attribute}
        if not (("signed" not in attrs or attrs["signed"].i) and _scalar(node, consts, node.input[3], "bitwidth") == 1):
            return None
        zp = _scalar(node, consts, node.input[2], "zeropt")
        if zp != 0:
            raise QuantizationError(f"Quant '{node.name}' (1-bit signed: bipolar) zeropt must be 0, not {zp}")
    elif node.op_type != "BipolarQuant":
        return None
    s = _scalar(node, consts, node.input[1], "scale")
    if not (s > 0 and float(math.log2(s)).is_integer()):
        raise QuantizationError(f"{node.op_type} '{node.name}' scale must be a power of two (bipolar values +-2^k), not {s}")
    return s


def _is_fixed_cast(node: Any, consts: dict[str, np.ndarray]) -> bool:
    """Whether a Quant/BipolarQuant is a plain fixed-point cast (power-of-two scale, zero zero-point), or one of bondflow's own."""
    if any(_text(p.key) == TYPE_KEY for p in node.metadata_props):
        return True
    s = _scalar(node, consts, node.input[1], "scale")
    po2 = s > 0 and float(math.log2(s)).is_integer()
    return po2 if node.op_type == "BipolarQuant" else po2 and _scalar(node, consts, node.input[2], "zeropt") == 0


def _scaled_levels(node: Any, consts: dict[str, np.ndarray]) -> tuple[Any, np.ndarray, np.ndarray]:
    """A Quant/BipolarQuant with any scale s and zero-point z as (k(x), ks, levels): k maps float32 inputs to integer levels
    exactly as qonnx's executor does (monotone in x), and level k is the value (k - z) * s, which must be exact in float32
    (qonnx's own product): then it is a fixed-point number and the levels are evenly spaced."""
    s32 = np.float32(_scalar(node, consts, node.input[1], "scale"))
    if not (s32 > 0 and np.isfinite(s32)):
        raise QuantizationError(f"{node.op_type} '{node.name}' scale must be a positive number, not {float(s32):g}")
    attrs = {a.name: a for a in node.attribute}
    if node.op_type == "BipolarQuant":
        z, ks = np.float32(0), np.array([-1, 1])
        kfun = lambda x: np.where(x >= 0, 1, -1)  # noqa: E731
    else:
        z = np.float32(_scalar(node, consts, node.input[2], "zeropt"))
        bw = _scalar(node, consts, node.input[3], "bitwidth")
        signed = bool(attrs["signed"].i) if "signed" in attrs else True
        narrow = bool(attrs["narrow"].i) if "narrow" in attrs else False
        rmode = _text(attrs["rounding_mode"].s).upper() if "rounding_mode" in attrs else "ROUND"
        if not float(bw).is_integer() or not 1 <= bw <= 16:
            raise QuantizationError(f"Quant '{node.name}' with scale {float(s32):g} must have an integer bit width of 1..16, not {bw:g}")
        from qonnx.custom_op.general.quant import max_int, min_int, resolve_rounding_mode
        if signed and bw == 1:  # qonnx runs it as bipolar
            ks = np.array([-1, 1])
            kfun = lambda x: np.where(x / s32 + z >= 0, 1, -1)  # noqa: E731
        else:
            lo, hi = int(min_int(signed, narrow, int(bw))), int(max_int(signed, narrow, int(bw)))
            rnd = resolve_rounding_mode(rmode)
            ks = np.arange(lo, hi + 1)
            kfun = lambda x: rnd(np.clip(x / s32 + z, np.float32(lo), np.float32(hi))).astype(np.int64)  # noqa: E731
    exact = (ks - np.float64(z)) * np.float64(s32)
    qonnx_vals = (ks.astype(np.float32) - z) * s32  # float32, as qonnx computes (y_int - zeropt) * scale
    if not np.array_equal(exact, qonnx_vals.astype(np.float64)):
        i = int(np.argmax(exact != qonnx_vals))
        raise QuantizationError(
            f"{node.op_type} '{node.name}' levels (k - zeropt) * scale must be exact in float32 to be fixed-point numbers "
            f"(a scale of at most {24 - int(np.abs(ks - z).max()).bit_length()} significant bits here), not scale {float(s32):.9g}"
            f" ({_significant_bits(float(s32))} bits): {ks[i] - float(z):g} * scale = {exact[i]:.12g}, which qonnx rounds to {float(qonnx_vals[i]):.12g}")
    return kfun, ks, exact


def _significant_bits(v: float) -> int:
    m, _ = math.frexp(abs(v))
    n = 0
    while m != int(m):
        m *= 2
        n += 1
    return max(int(m).bit_length(), 1)


def _scaled_threshold(node: Any, consts: dict[str, np.ndarray], xt: FixedType, name: str, inp: str, relu: bool) -> Threshold:
    """A Quant with a non-power-of-two scale (or a zero-point) on activations as a Threshold op: the j-th threshold is the
    smallest raw input whose level is at least the j-th, found on the input's grid by bisection of qonnx's own float32
    formula (exact: it is monotone); the levels (k - z) * s are exact fixed-point numbers, evenly spaced."""
    kfun, ks, vals = _scaled_levels(node, consts)

    def index(raw: np.ndarray) -> np.ndarray:
        r = np.maximum(raw, 0) if relu else raw  # a Relu before it: k(max(x, 0)), still monotone
        return np.searchsorted(ks, kfun(np.ldexp(r.astype(np.float64), -xt.frac_bits).astype(np.float32)))

    targets = np.arange(1, len(ks))
    lo = np.full(len(targets), xt.min_raw, dtype=np.int64)
    hi = np.full(len(targets), xt.max_raw + 1, dtype=np.int64)  # max_raw + 1: never reached
    while np.any(lo < hi):
        active, mid = lo < hi, (lo + hi) // 2
        ok = index(mid) >= targets
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid + 1, lo)
    rt = _fit_type(vals)
    if vals.min() >= 0 and rt.width > 1:  # non-negative levels: no sign bit
        rt = FixedType(rt.width - 1, rt.int_bits - 1, signed=False)
    raw = rt.quantize(vals)
    return Threshold(name=name, input=inp, result_type=rt, thresholds=lo[None, :], step=int(raw[1] - raw[0]), offset=int(raw[0]))


def _fit_type(values: np.ndarray) -> FixedType:
    """The narrowest signed FixedType (no negative fraction bits) holding every value exactly (folded constants)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    frac = 0
    while frac < 40 and np.any(np.ldexp(v, frac) != np.round(np.ldexp(v, frac))):
        frac += 1
    raw = np.ldexp(v, frac)
    if np.any(raw != np.round(raw)):
        raise QuantizationError(f"folded constants must lie on a fixed-point grid of at most 40 fraction bits, not e.g. {v[0]}")
    top = int(max(np.abs(raw).max(initial=0), 1))
    width = top.bit_length() + 1
    return FixedType(width, width - frac, signed=True)


def _affine(node: Any, data: set[str], consts: dict[str, np.ndarray], shape: list[int] | None,
            n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-feature y = a*x + b of a Mul/Add/Sub/Div by a constant or a BatchNormalization, None if not one."""
    t = node.op_type
    if t == "BatchNormalization":
        if any(i not in consts for i in node.input[1:5]):
            return None
        attrs = {a.name: a for a in node.attribute}
        eps = float(attrs["epsilon"].f) if "epsilon" in attrs else 1e-5
        # Only the channel axis (1) may be longer than 1: [N, C] or [N, C, 1] per feature, [N, 1, C] one channel.
        if not shape or len(shape) < 2 or int(np.prod(shape[1:])) != n or shape[1] not in (1, n):
            return None
        scale, bias, mean, var = (np.asarray(consts[i], dtype=np.float64).reshape(-1) for i in node.input[1:5])
        a = scale / np.sqrt(var + eps)
        return np.broadcast_to(a, n).copy(), np.broadcast_to(bias - mean * a, n).copy()
    const_in = [i for i in node.input if i not in data]
    if t not in ("Mul", "Add", "Sub", "Div") or len(const_in) != 1 or const_in[0] not in consts:
        return None
    c = np.asarray(consts[const_in[0]], dtype=np.float64)
    if c.size not in (1, n) or (c.ndim > 1 and max(c.shape[:-1], default=1) != 1):
        return None
    c = np.broadcast_to(c.reshape(-1), n).copy()
    first = node.input[0] == const_in[0]
    if t == "Mul":
        return c, np.zeros(n)
    if t == "Add":
        return np.ones(n), c
    if t == "Sub":
        return (-np.ones(n), c) if first else (np.ones(n), -c)
    return None if first or np.any(c == 0) else (1.0 / c, np.zeros(n))


def _exact_affine(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a*x + b is exact in fixed point and in qonnx's float32 alike: scales +-2^k, shifts on a short grid."""
    with np.errstate(divide="ignore"):
        k = np.log2(np.abs(a))
    if not np.all(np.isfinite(k) & (k == np.round(k))):
        return False
    return bool(np.all(np.ldexp(b, 16) == np.round(np.ldexp(b, 16))) and np.all(np.abs(b) < 2.0 ** 7))


def _annotated_type(model: Any, name: str) -> FixedType | None:
    """The exact type of a tensor FINN/qonnx annotated with an integer datatype (INT4, UINT8, BIPOLAR, ...), else None."""
    try:
        dt = model.get_tensor_datatype(name)
        if not dt.is_integer():
            return None
        lo, hi = int(dt.min()), int(dt.max())
    except Exception:  # no annotation, or one qonnx does not know
        return None
    if lo >= 0:
        w = max(hi.bit_length(), 1)
        return FixedType(w, w, signed=False)
    w = max(hi.bit_length(), (-lo - 1).bit_length()) + 1
    return FixedType(w, w, signed=True)


def _threshold_op(node: Any, consts: dict[str, np.ndarray], xt: FixedType, n: int, name: str, inp: str) -> Threshold:
    """MultiThreshold(x, T) = out_scale * #{k: x >= T[., k]} + out_bias, exactly: x is on its type's grid, so
    x >= t is raw(x) >= ceil(t * 2^frac); the levels must lie on a fixed-point grid."""
    if len(node.input) < 2 or node.input[1] not in consts:
        raise UnsupportedOpError("MultiThreshold with dynamic thresholds", node.name, SUPPORTED_ONNX_OPS)
    attrs = {a.name: a for a in node.attribute}
    layout = _text(attrs["data_layout"].s) if "data_layout" in attrs else ""
    if layout not in ("", "NC"):
        raise UnsupportedOpError(f"MultiThreshold data_layout {layout}", node.name, SUPPORTED_ONNX_OPS)
    t = np.asarray(consts[node.input[1]], dtype=np.float64)
    t = t.reshape(1, -1) if t.ndim == 1 else t
    if t.ndim != 2 or t.shape[0] not in (1, n) or not np.all(~np.isnan(t)):
        raise QuantizationError(f"MultiThreshold '{node.name}' thresholds must be [1 or {n}, K] numbers, not shape {list(t.shape)}")
    raw = np.clip(np.ceil(np.ldexp(t, xt.frac_bits)), xt.min_raw, xt.max_raw + 1).astype(np.int64)  # +-inf: never/always
    scale = float(attrs["out_scale"].f) if "out_scale" in attrs else 1.0
    bias = float(attrs["out_bias"].f) if "out_bias" in attrs else 0.0
    levels = bias + scale * np.arange(t.shape[1] + 1)
    meta = next((FixedType.parse(_text(p.value)) for p in node.metadata_props if _text(p.key) == TYPE_KEY), None)
    if meta is not None:
        rt = meta
    elif not (_exact_affine(np.array([scale]), np.array([bias])) and np.all(np.ldexp(levels, 16) == np.round(np.ldexp(levels, 16)))):
        raise QuantizationError(f"MultiThreshold '{node.name}' levels must lie on a fixed-point grid (out_scale +-2^k, "
                                f"out_bias on a 2^-16 grid), not out_scale={scale:g}, out_bias={bias:g}")
    else:
        rt = _fit_type(levels)
        if levels.min() >= 0 and rt.width > 1:  # non-negative levels: the sign bit is not needed
            rt = FixedType(rt.width - 1, rt.int_bits - 1, signed=False)
    return Threshold(name=name, input=inp, result_type=rt, thresholds=raw, step=int(np.ldexp(scale, rt.frac_bits)),
                     offset=int(np.ldexp(bias, rt.frac_bits)))


def _element_quant_op(text: str, node: Any, consts: dict[str, np.ndarray], names: set[str], inp: str) -> Op:
    """bondflow's exported element_quant (HGQ's per-element precision), exactly as its metadata states it."""
    import json
    from ..ir.element_quant import ElementQuant
    try:
        d = json.loads(text)
        rt = next(FixedType.parse(_text(p.value)) for p in node.metadata_props if _text(p.key) == TYPE_KEY)
        return ElementQuant(name=_node_name(node, names), input=inp, result_type=rt, k=d["k"], i=d["i"], f=d["f"],
                            rounding=d["rounding"], overflow=d["overflow"])
    except (ValueError, KeyError, TypeError, StopIteration) as e:
        raise ModelLoadError(f"Quant '{node.name}' must carry a well-formed {ELEMENT_KEY} record, not fail with "
                             f"{type(e).__name__}: {str(e)[:120]}") from None


def _node_name(node: Any, names: set[str]) -> str:
    """bondflow's own name for the op when the file carries it, else the ONNX node name, made unique and safe."""
    for p in node.metadata_props:
        if _text(p.key) == NAME_KEY:
            return unique_name(_text(p.value), names)
    return unique_name(node.name or node.output[0], names)


def strip_initializer_inputs(proto: Any) -> Any:
    """Drop graph inputs that are initializers (ONNX IR < 4 listed every weight as an input, as old PyTorch and
    onnxmltools exports do): they are constants, not the model's input."""
    inits = {i.name for i in proto.graph.initializer}
    keep = [i for i in proto.graph.input if i.name not in inits]
    if len(keep) != len(proto.graph.input):
        del proto.graph.input[:]
        proto.graph.input.extend(keep)
        proto.ir_version = max(proto.ir_version, 4)  # IR 4 is the first that lets initializers stay out of the inputs
    return proto


def _add_qonnx_opsets(proto: Any) -> None:
    """Declare the qonnx custom domains a file's nodes use but its opset list omits (exporters do), so the
    checker still checks everything else; nodes of any other undeclared domain still fail it."""
    have = {o.domain for o in proto.opset_import}
    std = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    for d in sorted({n.domain for n in proto.graph.node if n.domain in _QONNX_DOMAINS} - have):
        # channels-last ops are standard ops at the file's opset (qonnx's own conversion declares them so)
        proto.opset_import.add(domain=d, version=std if d == "qonnx.custom_op.channels_last" else 1)


def _check_supported(proto: Any, path: Path) -> None:
    """Every node on the data path (not constant subgraphs, which cleanup folds) of a kind bondflow reads; all
    the others in one message, by kind with their count and first names as the file names them."""
    data = {i.name for i in proto.graph.input} - {i.name for i in proto.graph.initializer}
    bad: dict[str, list[str]] = {}
    for n in proto.graph.node:
        if any(i in data for i in n.input):
            data.update(n.output)
            if n.op_type not in _HANDLED and not any(_text(p.key) == ELEMENT_PART_KEY for p in n.metadata_props):
                bad.setdefault(n.op_type, []).append(_text(n.name or n.output[0]))
    if bad:
        found = "; ".join(f"'{k}' x{len(v)} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})" for k, v in bad.items())
        err = UnsupportedOpError(next(iter(bad)), bad[next(iter(bad))][0], SUPPORTED_ONNX_OPS)
        err.args = (f"{path.name}: ONNX nodes must be of supported kinds, not {found}; supported: {', '.join(SUPPORTED_ONNX_OPS)}",)
        raise err


def load_onnx(path: Path, default_precision: str | None = None, input_precision: str | None = None, **kw: Any) -> Graph:
    """Read an ONNX/QONNX MLP (Brevitas/QONNX exports, bondflow's own export, or float ONNX with a default precision)."""
    from ..errors import BondflowError
    try:
        if logging.getLogger(__name__).isEnabledFor(logging.INFO):  # -v: let onnx/qonnx speak
            return _load_onnx(path, default_precision, input_precision)
        # Otherwise their warnings (qonnx's domain renames, ...) and prints must not precede our one line.
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return _load_onnx(path, default_precision, input_precision)
    except BondflowError:
        raise
    except Exception as e:  # a damaged file can break parsing anywhere: report it, never crash
        raise ModelLoadError(f"{path} must be a well-formed ONNX model, not fail with {type(e).__name__}: {str(e)[:160]}") from None


def _load_onnx(path: Path, default_precision: str | None, input_precision: str | None) -> Graph:
    try:
        import onnx
        from onnx import numpy_helper
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.cleanup import cleanup_model
    except ImportError as e:
        raise MissingDependencyError(e.name or "onnx/qonnx", "reading ONNX models") from None
    try:
        proto = strip_initializer_inputs(onnx.load(str(path)))
        _add_qonnx_opsets(proto)
        onnx.checker.check_model(proto)
    except Exception as e:  # protobuf DecodeError, ValidationError, ...
        raise ModelLoadError(f"{path} must be a valid ONNX model, not fail with {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}") from None
    from .onnx_cnn import has_spatial_ops, load_onnx_cnn
    cnn = has_spatial_ops(proto.graph)
    if not cnn:
        _check_supported(proto, path)
    try:
        model = cleanup_model(ModelWrapper(proto))
    except Exception as e:
        raise ModelLoadError(f"{path} must pass qonnx cleanup, not fail with {type(e).__name__}: {str(e)[:160]}") from None
    g = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    if cnn:  # convolutional graphs: their own converter, which tracks layouts (onnx_cnn.py)
        meta = {"source": str(path), "source_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(), "source_format": "onnx"}
        meta.update({_text(p.key)[14:]: _text(p.value) for p in proto.metadata_props if _text(p.key).startswith("bondflow.meta.")
                     and _text(p.key)[14:] not in ("source", "source_sha256", "source_format")})
        return load_onnx_cnn(model, proto, path, consts, _quant_type, default_precision, input_precision, meta)
    if len(g.input) != 1 or len(g.output) != 1:
        raise UnsupportedOpError("multi-input/output ONNX graph", g.name, ["single input, single output MLP"])
    in_name = g.input[0].name
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    n_in = int(np.prod([d for d in dims[1:] if d])) if len(dims) > 1 else int(dims[0])
    default = FixedType.parse(default_precision) if default_precision else None
    names: set[str] = set()
    ops: list[Op] = []
    const_q: dict[str, tuple[np.ndarray, FixedType]] = {}
    # Tensors holding values of a non-power-of-two scale (by tensor or op name -> the Quant node): a MatMul reading
    # them equals qonnx's float32 only while its sums fit float32's 24 significant bits.
    np2: dict[str, str] = {}
    for k, v in consts.items():  # FINN's integer weights: float initializers with a datatype annotation
        at = _annotated_type(model, k)
        if at is not None:
            vals = np.asarray(v, dtype=np.float64)
            exact_raw(vals, at, f"initializer '{k}' (annotated {model.get_tensor_datatype(k).name})")
            const_q[k] = (vals, at)
    # bip: the scale s when the current tensor holds bipolar values as BIPOLAR_TYPE (see there), else None.
    # aff: (a, b, node) when the current tensor is to be read as a*x + b (normalisation, BatchNormalization), not yet applied.
    state: dict[str, Any] = {"cur": None, "type": None, "dense": None, "act": None, "bip": None, "n": n_in, "aff": None, "np2": None}
    inp: TensorSpec | None = None
    data = {in_name}
    # Branches: the state above follows one ONNX tensor (``last``); a tensor read again later, or by an Add/Concat
    # of two tensors, must be a settled op by then (``settled``: ONNX tensor -> (op name, type, features)).
    readers: dict[str, int] = {}
    for node in g.node:
        for i in node.input:
            readers[i] = readers.get(i, 0) + 1
    settled: dict[str, tuple[str, FixedType, int]] = {}
    relu_params: dict[str, dict[str, Any]] = {}  # ParamRelu settings of pending Clip/LeakyRelu activations, by op name
    prelu_nodes: dict[str, Any] = {}  # the PRelu node of a pending prelu activation, by op name
    table_params: dict[str, dict[str, Any]] = {}  # table sizes and types bondflow's export recorded, by op name
    last = in_name

    def need_default(what: str, node: str) -> FixedType:
        if default is None:
            raise QuantizationError(f"node '{node}' has float {what}: a default precision must be given (--default-precision), not none")
        return default

    def weight(name: str, node: str) -> tuple[np.ndarray, FixedType]:
        if name in const_q:
            vals, t = const_q[name]
        elif name in consts:  # float: rounded once when the layer is closed, after any BatchNormalization fold
            t = need_default("weights", node)
            vals = consts[name]
        else:
            raise UnsupportedOpError("MatMul of two dynamic tensors", node, SUPPORTED_ONNX_OPS)
        return np.asarray(vals, dtype=np.float64), t

    def finish_dense(result: FixedType | None, requantized: bool = False) -> None:
        """Close a pending MatMul(+Add): its type is the Quant after it, else the exact accumulator when a Relu
        follows (it does the rounding), else the default precision when given (as hls4ml)."""
        d = state["dense"]
        if d is None:
            return
        w, wt, b, bt, name, acc_meta, is_float, bip, aff = d
        if b is None:
            bt = bt or wt
            b = np.zeros(w.shape[1])
        if aff is not None:  # the input's normalisation a*x + b_in: W' = diag(a) W, bias' = bias + b_in W
            b, w = b + aff[1] @ w, aff[0][:, None] * w
            if not is_float:  # exact (checked when the MatMul was read): constants on a grid of their own
                wt, bt = _fit_type(w), _fit_type(b)
        w = quantize_checked(w, wt, f"node '{name}' weights")  # values from Quant nodes are on the grid already
        b = quantize_checked(b, bt, f"node '{name}' biases")
        if bip is not None:  # bipolar input held as h in {-1, 0}: W @ (s*(2h+1)) + b = (2sW) @ h + (b + s*sum(W))
            w, b = 2 * bip * w, b + bip * w.sum(axis=0)
            wt, bt = _fit_type(w), _fit_type(b)
        acc = acc_meta or accum_type_for(state["type"], wt, bt, w.shape[0])
        if state["np2"] and acc.width > 25:  # sign + 24 bits: every partial sum exact in float32
            raise QuantizationError(f"MatMul '{name}' reads values of Quant '{state['np2']}' (non-power-of-two scale): its sums must fit "
                                    f"float32's 24 significant bits to equal qonnx, not need {acc} ({acc.width} bits)")
        state["np2"] = None
        if result is None and not requantized and default is not None:
            result = default
        op = Dense(name=name, input=state["cur"], result_type=result or acc,
                   weight=exact_raw(w, wt, f"node '{name}' weights"), weight_type=wt,
                   bias=exact_raw(b, bt, f"node '{name}' biases"), bias_type=bt, accum_type=acc)
        ops.append(op)
        state.update(cur=op.name, type=op.result_type, dense=None, n=op.n_out)

    def materialize_bip() -> None:
        """A bipolar tensor read by anything but a Dense becomes +-s explicitly: y = 2s*h + s, an exact Dense."""
        s = state["bip"]
        if s is None:
            return
        w, b = 2 * s * np.eye(state["n"]), np.full(state["n"], float(s))
        state.update(bip=None, dense=[w, _fit_type(w), b, _fit_type(b), unique_name(f"{state['cur']}_pm1", names), None, False, None, None])
        finish_dense(None, requantized=True)

    def materialize_aff() -> None:
        """A pending normalisation read by anything but a MatMul: a diagonal Dense (exact, or rounded once to the default)."""
        if state["aff"] is None:
            return
        a, b, nm = state["aff"]
        state["aff"] = None
        exact = _exact_affine(a, b)
        if not exact and default is None:
            raise QuantizationError(f"normalisation '{nm}' must be exact in fixed point (scales +-2^k, shifts on a 2^-16 grid) "
                                    f"or the model float with --default-precision, not scale {a[0]:g}, shift {b[0]:g}")
        w = np.diag(a)
        wt, bt = (_fit_type(w), _fit_type(b)) if exact else (default, default)
        state["dense"] = [w, wt, b, bt, unique_name(nm, names), None, not exact, None, None]

    def shape_of(tensor: str) -> list[int] | None:
        try:
            return list(model.get_tensor_shape(tensor))
        except Exception:  # qonnx could not infer it
            return None

    def finish_act(result: FixedType | None, node: str) -> None:
        kind, name = state["act"]
        rt = result or need_default("activation output", node)
        cls_args = dict(name=name, input=state["cur"], result_type=rt)
        tables = {"softmax": Softmax, "tanh": Tanh, "sigmoid": Sigmoid, "elu": Elu, "selu": Selu}
        n = state["n"]
        op: Op = (ParamRelu(**relu_params[name], **cls_args) if kind == "param_relu"
                  else onnx_prelu(prelu_nodes[name], consts, np.arange(n), (n,), name, state["cur"], rt) if kind == "prelu"
                  else Activation(function=kind, **cls_args) if kind in ("relu", "linear")
                  else tables[kind](**cls_args, **table_params.get(name, {})))
        ops.append(op)
        state.update(cur=op.name, type=rt, act=None)

    def pending() -> bool:
        return any(state[k] is not None for k in ("dense", "act", "bip", "aff"))

    def settle(node: str) -> None:
        """Emit whatever is pending, so the current tensor is an op another branch can read."""
        materialize_aff()
        finish_dense(None)
        if state["act"]:
            finish_act(None, node)
        materialize_bip()
        settled[last] = (state["cur"], state["type"], state["n"])

    def read(tensor: str, node: Any) -> tuple[str, FixedType, int]:
        if tensor not in settled:
            raise UnsupportedOpError(f"{node.op_type} reading '{tensor}' (a branch from an unsettled tensor)", node.name,
                                     SUPPORTED_ONNX_OPS, "bondflow (branch after a Quant or an activation)")
        return settled[tensor]

    # depth first, so each branch's nodes come together (qonnx's cleanup sorts breadth first: two Dense layers reading
    # the input would interleave their MatMuls and bias Adds)
    from .onnx_cnn import chains_first
    for node in chains_first(list(g.node), {i.name for i in g.input} | set(consts)):
        t = node.op_type
        if any(_text(p.key) == ELEMENT_PART_KEY for p in node.metadata_props) and inp is not None:
            # the per-element clip of bondflow's element_quant export: part of the op its Quant made (qonnx's cleanup
            # may interleave the parts of two branches' element_quants, so follow the tensor, not the node order)
            data.update(node.output)
            settled[node.output[0]] = read(node.input[0], node)
            if node.input[0] == last:
                last = node.output[0]
            continue
        element = next((_text(p.value) for p in node.metadata_props if _text(p.key) == ELEMENT_KEY), None)
        if element is not None and t == "Quant" and inp is not None and node.input[0] in data:
            settle(node.name)  # what is pending becomes an op, readable by this and later branches
            if node.input[0] != last:
                cur, ct, cn = read(node.input[0], node)
                state.update(cur=cur, type=ct, n=cn)
            op = _element_quant_op(element, node, consts, names, state["cur"])
            ops.append(op)
            data.update(node.output)
            last = node.output[0]
            state.update(cur=op.name, type=op.result_type)
            settled[last] = (state["cur"], state["type"], state["n"])
            continue
        if t in ("Quant", "BipolarQuant") and node.input[0] not in data:  # quantized constant (weights/bias)
            if node.input[0] not in consts:
                raise UnsupportedOpError(f"{t} of a computed constant", node.name, SUPPORTED_ONNX_OPS)
            if not _is_fixed_cast(node, consts):  # any scale/zero-point: qonnx's own float32 levels, exact when checked so
                kfun, ks, vals = _scaled_levels(node, consts)
                v = vals[np.searchsorted(ks, kfun(np.asarray(consts[node.input[0]], dtype=np.float32)))]
                const_q[node.output[0]] = (v, _fit_type(v))
                np2[node.output[0]] = node.name
                continue
            bip = _bipolar_scale(node, consts)
            if bip is not None:  # binary weights: exactly +-s (sign(0) = +1, as qonnx)
                vals = np.where(np.asarray(consts[node.input[0]]) >= 0, bip, -bip).astype(np.float64)
                const_q[node.output[0]] = (vals, _fit_type(vals))
            else:
                qt = _quant_type(node, consts)
                const_q[node.output[0]] = (qt.to_float(qt.quantize(consts[node.input[0]])), qt)
            continue
        if not any(i in data for i in node.input):
            raise UnsupportedOpError(t, node.name, SUPPORTED_ONNX_OPS, "bondflow's ONNX frontend (constant subgraph)")
        ins = [i for i in node.input if i in data]
        data.update(node.output)
        if is_copy(node):  # bondflow's copy of a tensor a merge reads twice: the same value
            if inp is not None and node.input[0] == last:
                settle(node.name)
            settled[node.output[0]] = read(node.input[0], node)
            continue
        merge = t in MERGE_KINDS and len(ins) >= 2
        if inp is not None and (merge or any(i != last for i in ins)):
            settle(node.name)  # a branch starts or two branches meet: the current tensor becomes a readable op
            if not merge:
                cur, ct, cn = read(ins[0], node)
                state.update(cur=cur, type=ct, n=cn)
        if merge and inp is not None:
            srcs = [read(i, node) for i in ins]
            fn, axis = MERGE_KINDS[t], next((a.i for a in node.attribute if a.name == "axis"), 1)
            if fn == "concatenate" and axis not in (1, -1):
                raise UnsupportedOpError(f"Concat axis={axis}", node.name, SUPPORTED_ONNX_OPS, "bondflow (flat tensors join on axis 1)")
            op = Merge(name=_node_name(node, names), inputs=tuple(x[0] for x in srcs),
                       result_type=merge_result_type(fn, [x[1] for x in srcs]), function=fn)
            op.infer_shape([(x[2],) for x in srcs])
            ops.append(op)
            state.update(cur=op.name, type=op.result_type, n=sum(x[2] for x in srcs) if fn == "concatenate" else srcs[0][2])
            last = node.output[0]
            settled[last] = (op.name, op.result_type, state["n"])
            continue
        if t in ("Quant", "BipolarQuant") and _is_fixed_cast(node, consts):
            bip = _bipolar_scale(node, consts)
            qt = BIPOLAR_TYPE if bip is not None else _quant_type(node, consts)
            materialize_bip()
            materialize_aff()
            if inp is None and not ops and state["dense"] is None:
                in_label = next((_text(p.value) for p in proto.metadata_props if _text(p.key) == "bondflow.input_name"), "input")
                inp = TensorSpec(unique_name(in_label, names), n_in, qt)
                state.update(cur=inp.name, type=qt)
            elif state["dense"] is not None:
                finish_dense(qt)
            elif state["act"] is not None:
                finish_act(qt, node.name)
            elif ops and isinstance(ops[-1], Flatten) and ops[-1].name == state["cur"] and qt == state["type"] and bip is None:
                pass  # the Quant bondflow's export writes after a Flatten: the same type, so no cast
            elif ops and isinstance(ops[-1], Merge) and ops[-1].name == state["cur"] and readers.get(last, 0) == 1 and bip is None:
                ops[-1] = replace(ops[-1], result_type=qt)  # a quantized Add/Concat: the cast is the merge's own
                state["type"] = qt
            else:
                state["act"] = ("linear", unique_name(node.output[0], names))
                finish_act(qt, node.name)
            state["bip"] = bip
            last = node.output[0]
            if not pending():
                settled[last] = (state["cur"], state["type"], state["n"])
            continue
        if merge:
            raise UnsupportedOpError(f"{t} of two tensors before the input is typed", node.name, SUPPORTED_ONNX_OPS)
        if inp is None:  # float ONNX: the input type comes from the user
            at = _annotated_type(model, in_name)  # an integer input (e.g. FINN's UINT8 pixels): exact, saturating
            in_t = (FixedType.parse(input_precision) if input_precision else at.with_modes("RND_CONV", "SAT") if at
                    else FixedType.parse((default_precision and str(default)) or DEFAULT_INPUT_PRECISION))
            inp = TensorSpec(unique_name("input", names), n_in, in_t)
            state.update(cur=inp.name, type=inp.type)
            settled[in_name] = (inp.name, inp.type, n_in)
        if t in ("MatMul", "Gemm"):
            finish_dense(None)
            if state["act"]:
                finish_act(None, node.name)
            attrs = {a.name: a for a in node.attribute}
            w, wt = weight(node.input[1], node.name)
            if t == "Gemm":
                if attrs.get("transA") and attrs["transA"].i:
                    raise UnsupportedOpError("Gemm transA=1", node.name, SUPPORTED_ONNX_OPS)
                if attrs.get("transB") and attrs["transB"].i:
                    w = w.T
                for a in ("alpha", "beta"):
                    if a in attrs and attrs[a].f != 1.0:
                        raise UnsupportedOpError(f"Gemm {a}={attrs[a].f}", node.name, SUPPORTED_ONNX_OPS)
            b, bt = (weight(node.input[2], node.name) if t == "Gemm" and len(node.input) > 2 else (None, None))
            acc_meta = next((FixedType.parse(_text(p.value)) for p in node.metadata_props if _text(p.key) == TYPE_KEY), None)
            is_float = node.input[1] not in const_q and (b is None or node.input[2] not in const_q)
            aff = state["aff"]
            if aff is not None and not is_float and not _exact_affine(aff[0], aff[1]):
                raise QuantizationError(f"normalisation '{aff[2]}' before quantized MatMul '{node.name}' must scale by +-2^k and "
                                        f"shift on a 2^-16 grid to fold exactly, not scale {aff[0][0]:g}, shift {aff[1][0]:g}")
            if aff is not None and aff[0].size != w.shape[0]:
                raise UnsupportedOpError(f"normalisation of {aff[0].size} values before a {w.shape[0]}-input MatMul", node.name, SUPPORTED_ONNX_OPS)
            state["dense"] = [w, wt, b, bt, _node_name(node, names), acc_meta, is_float, state["bip"], aff and aff[:2]]
            state.update(bip=None, aff=None, np2=next((np2[i] for i in [*node.input[1:], state["cur"]] if i in np2), None))
        elif t in ("Mul", "Add", "Sub", "Div", "BatchNormalization") and not (
                t == "Add" and state["dense"] is not None and state["dense"][2] is None):
            d = state["dense"]
            n = d[0].shape[1] if d is not None else state["n"]
            aff = _affine(node, data, consts, shape_of(node.input[0]), n)
            if aff is None:
                raise UnsupportedOpError(f"{t} (other than by a per-feature constant)", node.name, SUPPORTED_ONNX_OPS)
            a, c = aff
            if d is not None:  # on a MatMul's outputs: (W x + b) * a + c = (W a) x + (b a + c)
                if not d[6] and not _exact_affine(a, c):
                    raise QuantizationError(f"{t} '{node.name}' after quantized MatMul '{d[4]}' must scale by +-2^k and shift on a "
                                            f"2^-16 grid to fold exactly, not scale {a[0]:g}, shift {c[0]:g} (FINN writes such a"
                                            f" scale as MultiThreshold, which bondflow does not read)")
                b = np.zeros(d[0].shape[1]) if d[2] is None else d[2]
                d[0], d[2] = d[0] * a[None, :], b * a + c
                d[3] = d[3] or d[1]
                if not d[6]:  # quantized: the folded constants take exact types of their own
                    d[1], d[3] = _fit_type(d[0]), _fit_type(d[2])
            else:  # on the input or an activation's output: kept until a MatMul (folded) or a Quant (a diagonal Dense)
                materialize_bip()
                if state["act"]:
                    finish_act(None, node.name)
                if state["aff"] is not None:
                    a, c = a * state["aff"][0], a * state["aff"][1] + c
                state["aff"] = (a, c, (state["aff"] or (None, None, _node_name(node, names)))[2])
        elif t == "Add":
            d = state["dense"]
            const_in = [i for i in node.input if i not in data]
            if d is None or d[2] is not None or len(const_in) != 1:
                raise UnsupportedOpError("Add (other than a bias after MatMul)", node.name, SUPPORTED_ONNX_OPS)
            d[2], d[3] = weight(const_in[0], node.name)
            d[6] = d[6] and const_in[0] not in const_q
            d[2] = d[2].reshape(-1)
            for p in node.metadata_props:
                if _text(p.key) == TYPE_KEY:
                    d[5] = FixedType.parse(_text(p.value))
        elif t in ("Relu", "Softmax", "Sigmoid", "Tanh", "Identity", "Elu", "Selu", "PRelu") + RELU_ONNX_OPS:
            # Relu (and Elu, Selu: exact index, exact product) does the only rounding of an exact sum; a table
            # activation (Softmax, Sigmoid, Tanh) indexes its table with the top bits of its input, so its input takes
            # the default precision (as hls4ml).
            materialize_aff()
            finish_dense(None, requantized=t in ("Relu", "Elu", "Selu", "PRelu") + RELU_ONNX_OPS)
            if state["act"]:
                finish_act(None, node.name)
            materialize_bip()
            kind = ACTIVATION_KINDS.get(t, "param_relu")
            state["act"] = (kind, _node_name(node, names))
            if kind == "param_relu":  # Clip(0, m) / LeakyRelu: a bounded or leaky ReLU, exact like Relu
                relu_params[state["act"][1]] = onnx_relu_params(node, consts)
            elif kind == "prelu":
                prelu_nodes[state["act"][1]] = node
            elif kind in ("elu", "selu"):
                table_params[state["act"][1]] = exp_linear_kwargs(node)
            elif kind in ("softmax", "sigmoid", "tanh"):
                table_params[state["act"][1]] = table_kwargs(node)
        elif t in ("Flatten", "Reshape"):
            finish_dense(None)
            if state["act"]:
                finish_act(None, node.name)
            name = _node_name(node, names)
            ops.append(Flatten(name=name, input=state["cur"], result_type=state["type"]))
            state["cur"] = name
        elif t in ("Quant", "BipolarQuant"):  # a non-power-of-two scale or a zero-point: its levels by compares
            materialize_aff()
            finish_dense(None, requantized=True)  # the threshold reads the exact sum
            relu = False
            if state["act"] and state["act"][0] in ("relu", "linear"):  # folded: k(max(x, 0)) is still monotone in x
                relu, state["act"] = state["act"][0] == "relu", None
            elif state["act"]:
                finish_act(None, node.name)
            materialize_bip()
            op = _scaled_threshold(node, consts, state["type"], _node_name(node, names), state["cur"], relu)
            ops.append(op)
            np2[op.name] = node.name
            state.update(cur=op.name, type=op.result_type)
        elif t == "MultiThreshold":  # reads the exact value before it: no rounding in between
            materialize_aff()
            finish_dense(None, requantized=True)
            if state["act"]:
                finish_act(None, node.name)
            materialize_bip()
            op = _threshold_op(node, consts, state["type"], state["n"], _node_name(node, names), state["cur"])
            ops.append(op)
            state.update(cur=op.name, type=op.result_type)
        elif t in ("Unsqueeze", "Squeeze", "Transpose"):  # reorder nothing when only 1-sized axes move (around a BN)
            shape = shape_of(node.input[0])
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            if t == "Transpose" and (shape is None or perm is None or [p for p in perm if shape[p] != 1] != sorted(p for p in perm if shape[p] != 1)):
                raise UnsupportedOpError(f"Transpose that reorders values (perm {perm}, shape {shape})", node.name, SUPPORTED_ONNX_OPS)
        else:
            raise UnsupportedOpError(t, node.name or node.output[0], SUPPORTED_ONNX_OPS)
        last = node.output[0]
        if readers.get(last, 0) > 1 and pending():
            settle(node.name)  # read by several nodes: one op all of them read
        if not pending():
            settled[last] = (state["cur"], state["type"], state["n"])
    materialize_aff()
    finish_dense(None)
    if state["act"]:
        finish_act(None, "output")
    materialize_bip()
    if inp is None or not ops:
        raise ModelLoadError(f"{path} must contain at least one supported layer, not none")
    meta = {"source": str(path), "source_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(), "source_format": "onnx"}
    if default is not None:
        meta["default_precision"] = str(default)
    for p in proto.metadata_props:
        key = _text(p.key)
        if key.startswith("bondflow.meta.") and key[14:] not in ("source", "source_sha256", "source_format"):
            meta[key[14:]] = _text(p.value)
    name = next((_text(p.value) for p in proto.metadata_props if _text(p.key) == "bondflow.graph_name"), None) or g.name or "model"
    return Graph(name=unique_name(name, set()), input=inp, ops=tuple(export_order(proto, ops)), meta=meta)

"""ONNX / QONNX frontend: qonnx cleanup, then Quant/MatMul/Gemm/Add/Relu/... chains into a Graph."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelLoadError, QuantizationError, UnsupportedOpError
from ..ir.graph import Graph, TensorSpec
from ..ir.ops import Activation, Dense, Flatten, Op, Sigmoid, Softmax
from ..ir.types import FixedType
from ..render_names import unique_name
from .onnx_export import NAME_KEY, TYPE_KEY
from .quant import DEFAULT_INPUT_PRECISION, accum_type_for, exact_raw, quantize_checked

__all__ = ["load_onnx", "SUPPORTED_ONNX_OPS"]

SUPPORTED_ONNX_OPS = ("Quant", "MatMul", "Gemm", "Add", "Mul (a constant after a float MatMul)", "Relu", "Softmax", "Sigmoid",
                      "Flatten", "Reshape", "Identity")
# qonnx's rounding modes (intquant.resolve_rounding_mode) that are ap_fixed modes; CEIL and UP are not.
_ROUNDING = {"ROUND": "RND_CONV", "HALF_EVEN": "RND_CONV", "FLOOR": "TRN", "DOWN": "TRN_ZERO",
             "HALF_UP": "RND_INF", "HALF_DOWN": "RND_ZERO"}


def _quant_type(node: Any, consts: dict[str, np.ndarray]) -> FixedType:
    """A Quant node's FixedType: exact from bondflow metadata, else from its scale/zeropt/bitwidth."""
    for p in node.metadata_props:
        if _text(p.key) == TYPE_KEY:
            return FixedType.parse(_text(p.value))
    try:
        scale, zp, bw = (float(np.asarray(consts[i]).reshape(-1)[0]) for i in node.input[1:4])
    except KeyError:
        raise UnsupportedOpError("Quant with dynamic scale", node.name, SUPPORTED_ONNX_OPS) from None
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


def _folds_into(dense: list[Any] | None, node: Any, data: set[str], consts: dict[str, np.ndarray]) -> bool:
    """Whether ``node`` (Mul, or an Add after the bias) scales/shifts a pending float MatMul's outputs by constants."""
    if dense is None or not dense[6] or (node.op_type == "Add" and dense[2] is None):
        return False
    const_in = [i for i in node.input if i not in data]
    if len(const_in) != 1 or const_in[0] not in consts:
        return False
    c = np.asarray(consts[const_in[0]])
    return c.size in (1, dense[0].shape[1]) and c.ndim <= 2 and (c.ndim < 2 or c.shape[0] == 1)


def _node_name(node: Any, names: set[str]) -> str:
    """bondflow's own name for the op when the file carries it, else the ONNX node name, made unique and safe."""
    for p in node.metadata_props:
        if _text(p.key) == NAME_KEY:
            return unique_name(_text(p.value), names)
    return unique_name(node.name or node.output[0], names)


def _text(v: Any) -> str:
    """Protobuf string fields of a corrupt file can arrive as bytes: decode them rather than crash."""
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)


def load_onnx(path: Path, default_precision: str | None = None, input_precision: str | None = None, **kw: Any) -> Graph:
    """Read an ONNX/QONNX MLP (Brevitas/QONNX exports, bondflow's own export, or float ONNX with a default precision)."""
    from ..errors import BondflowError
    try:
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
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as e:  # protobuf DecodeError, ValidationError, ...
        raise ModelLoadError(f"{path} must be a valid ONNX model, not fail with {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}") from None
    try:
        model = cleanup_model(ModelWrapper(proto))
    except Exception as e:
        raise ModelLoadError(f"{path} must pass qonnx cleanup, not fail with {type(e).__name__}: {str(e)[:160]}") from None
    g = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    if len(g.input) != 1 or len(g.output) != 1:
        raise UnsupportedOpError("multi-input/output ONNX graph", g.name, ["single input, single output MLP"])
    in_name = g.input[0].name
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    n_in = int(np.prod([d for d in dims[1:] if d])) if len(dims) > 1 else int(dims[0])
    default = FixedType.parse(default_precision) if default_precision else None
    names: set[str] = set()
    ops: list[Op] = []
    const_q: dict[str, tuple[np.ndarray, FixedType]] = {}
    state: dict[str, Any] = {"cur": None, "type": None, "dense": None, "act": None}
    inp: TensorSpec | None = None
    data = {in_name}

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
        w, wt, b, bt, name, acc_meta, _ = d
        if b is None:
            bt = bt or wt
            b = np.zeros(w.shape[1])
        w = quantize_checked(w, wt, f"node '{name}' weights")  # values from Quant nodes are on the grid already
        b = quantize_checked(b, bt, f"node '{name}' biases")
        acc = acc_meta or accum_type_for(state["type"], wt, bt, w.shape[0])
        if result is None and not requantized and default is not None:
            result = default
        op = Dense(name=name, input=state["cur"], result_type=result or acc,
                   weight=exact_raw(w, wt, f"node '{name}' weights"), weight_type=wt,
                   bias=exact_raw(b, bt, f"node '{name}' biases"), bias_type=bt, accum_type=acc)
        ops.append(op)
        state.update(cur=op.name, type=op.result_type, dense=None)

    def finish_act(result: FixedType | None, node: str) -> None:
        kind, name = state["act"]
        rt = result or need_default("activation output", node)
        cls_args = dict(name=name, input=state["cur"], result_type=rt)
        op: Op = (Activation(function=kind, **cls_args) if kind in ("relu", "linear")
                  else Softmax(**cls_args) if kind == "softmax" else Sigmoid(**cls_args))
        ops.append(op)
        state.update(cur=op.name, type=rt, act=None)

    for node in g.node:
        t = node.op_type
        if t == "Quant" and node.input[0] not in data:  # quantized constant (weights/bias)
            qt = _quant_type(node, consts)
            if node.input[0] not in consts:
                raise UnsupportedOpError("Quant of a computed constant", node.name, SUPPORTED_ONNX_OPS)
            const_q[node.output[0]] = (qt.to_float(qt.quantize(consts[node.input[0]])), qt)
            continue
        if not any(i in data for i in node.input):
            raise UnsupportedOpError(t, node.name, SUPPORTED_ONNX_OPS, "bondflow's ONNX frontend (constant subgraph)")
        data.update(node.output)
        if t == "Quant":
            qt = _quant_type(node, consts)
            if inp is None and not ops and state["dense"] is None:
                in_label = next((_text(p.value) for p in proto.metadata_props if _text(p.key) == "bondflow.input_name"), "input")
                inp = TensorSpec(unique_name(in_label, names), n_in, qt)
                state.update(cur=inp.name, type=qt)
            elif state["dense"] is not None:
                finish_dense(qt)
            elif state["act"] is not None:
                finish_act(qt, node.name)
            else:
                state["act"] = ("linear", unique_name(node.output[0], names))
                finish_act(qt, node.name)
            continue
        if inp is None:  # float ONNX: the input type comes from the user
            inp = TensorSpec(unique_name("input", names), n_in, FixedType.parse(input_precision or (default_precision and str(default)) or DEFAULT_INPUT_PRECISION))
            state.update(cur=inp.name, type=inp.type)
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
            state["dense"] = [w, wt, b, bt, _node_name(node, names), acc_meta, is_float]
        elif t in ("Mul", "Add") and _folds_into(state["dense"], node, data, consts):
            # A per-output constant after a float MatMul (+bias): tf2onnx's BatchNormalization is Mul then Add.
            d = state["dense"]
            c = np.asarray(consts[next(i for i in node.input if i not in data)], dtype=np.float64).reshape(-1)
            b = np.zeros(d[0].shape[1]) if d[2] is None else d[2]
            if t == "Mul":
                d[0], d[2] = d[0] * c[None, :], b * c
            else:
                d[2] = b + c
            d[3] = d[3] or d[1]
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
        elif t in ("Relu", "Softmax", "Sigmoid", "Identity"):
            # Relu does the only rounding of an exact sum; a table activation (Softmax, Sigmoid) indexes its
            # table with the top bits of its input, so its input takes the default precision (as hls4ml).
            finish_dense(None, requantized=t == "Relu")
            if state["act"]:
                finish_act(None, node.name)
            kind = {"Relu": "relu", "Softmax": "softmax", "Sigmoid": "sigmoid", "Identity": "linear"}[t]
            state["act"] = (kind, _node_name(node, names))
        elif t in ("Flatten", "Reshape"):
            finish_dense(None)
            if state["act"]:
                finish_act(None, node.name)
            name = _node_name(node, names)
            ops.append(Flatten(name=name, input=state["cur"], result_type=state["type"]))
            state["cur"] = name
        else:
            raise UnsupportedOpError(t, node.name or node.output[0], SUPPORTED_ONNX_OPS)
    finish_dense(None)
    if state["act"]:
        finish_act(None, "output")
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
    return Graph(name=unique_name(name, set()), input=inp, ops=tuple(ops), meta=meta)

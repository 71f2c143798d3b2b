"""ONNX/QONNX CNNs: Conv, pooling and layout nodes (Transpose, Reshape) mapped exactly onto bondflow's channels-last tensors.

Layout is tracked with an index view: for the current data tensor, the ONNX-layout array of each value's
position in bondflow's channels-last tensor. Transposes and reshapes act on the view; a Conv or pool needs
it to read NCHW; a MatMul after a flatten in another order gets its weight rows permuted (exact).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import QuantizationError, UnsupportedOpError
from ..ir.graph import Graph, TensorSpec
from ..ir.merge import Merge, merge_result_type
from ..ir.ops import Activation, Dense, Elu, Flatten, Op, ParamRelu, Selu, Sigmoid, Softmax, Tanh
from ..ir.tensor_ops import Conv, Pool, Upsample, pool_result_type
from ..ir.types import FixedType
from ..render_names import unique_name
from .onnx_relu import RELU_ONNX_OPS, onnx_prelu, onnx_relu_params
from .onnx_tables import ACTIVATION_KINDS, MERGE_KINDS, exp_linear_kwargs, table_kwargs
from .onnx_export import ELEMENT_KEY, ELEMENT_PART_KEY, export_order, is_copy
from .quant import DEFAULT_INPUT_PRECISION, accum_type_for, exact_raw, quantize_checked, scale_shift_op

__all__ = ["has_spatial_ops", "load_onnx_cnn", "CNN_ONNX_OPS"]

#: qonnx's channels-last wrappers (``ConvertToChannelsLastAndClean``, hls4ml's ``*_ch_last`` models): the standard op's
#: attributes on NHWC data; a Conv's weight is (C_out, *kernel, C_in/group) (qonnx/custom_op/channels_last).
CHANNELS_LAST_DOMAIN = "qonnx.custom_op.channels_last"
CHANNELS_LAST_OPS = ("Conv", "MaxPool", "BatchNormalization")
SPATIAL = ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
UPSAMPLE = ("Resize", "Upsample")  # nearest neighbour by whole factors: a pixel repeat
CNN_ONNX_OPS = SPATIAL + UPSAMPLE + ("BatchNormalization", "Quant", "Relu", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "MatMul", "Gemm", "Add", "Sub", "Mul", "Max", "Min", "Softmax",
                          "Sigmoid", "Tanh", "Identity", "Concat", "Clip(min=0)", "LeakyRelu", "PRelu", "Elu", "Selu")


def _name(node: Any, names: set[str]) -> str:
    """bondflow's own op name when the file carries it (its export), else the node's name, made unique."""
    from .onnx_export import NAME_KEY
    for p in node.metadata_props:
        if p.key == NAME_KEY:
            return unique_name(p.value, names)
    return unique_name(node.name or node.output[0], names)


def has_spatial_ops(graph: Any) -> bool:
    return any(n.op_type in SPATIAL + UPSAMPLE for n in graph.node)


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _chw(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Channels-last (H, W, C) -> the ONNX NCHW order (C, H, W) of the same tensor."""
    return (len(shape) - 1,) + tuple(range(len(shape) - 1))


def load_onnx_cnn(model: Any, proto: Any, path: Any, consts: dict[str, np.ndarray], quant_type: Any,
                  default_precision: str | None, input_precision: str | None, meta: dict[str, Any]) -> Graph:
    """Convert a cleaned qonnx ModelWrapper holding a CNN; ``quant_type(node, consts)`` types a Quant node."""
    g = model.graph
    default = FixedType.parse(default_precision) if default_precision else None
    names: set[str] = set()
    ops: list[Op] = []
    in_name = g.input[0].name
    in_dims = [int(d) for d in model.get_tensor_shape(in_name)][1:]
    const_q: dict[str, tuple[np.ndarray, FixedType]] = {}
    data = {in_name}
    st: dict[str, Any] = {"cur": None, "type": None, "shape": None, "view": None, "pending": None}
    inp: TensorSpec | None = None
    # Branches: ``st`` follows one ONNX tensor (``last``); a tensor read again later, or by an Add/Concat of two
    # tensors, is a settled op by then (``settled``: ONNX tensor -> the state that reads it).
    nodes = chains_first(list(g.node), {i.name for i in g.input} | set(consts))
    reader_index = _reader_index(nodes)  # ONNX tensor -> the positions in ``nodes`` of the nodes reading it
    settled: dict[str, dict[str, Any]] = {}
    last = in_name

    def snapshot() -> dict[str, Any]:
        return {k: st[k] for k in ("cur", "type", "shape", "view")}

    def settle() -> None:
        close(None, False)  # a pending Conv/Dense read by a branch: the default precision, else its exact sum
        settled[last] = snapshot()

    def read(tensor: str, node: Any) -> dict[str, Any]:
        if tensor not in settled:
            raise UnsupportedOpError(f"{node.op_type} reading '{tensor}' (a branch from an unsettled tensor)", node.name, CNN_ONNX_OPS)
        return settled[tensor]

    def merge(node: Any, srcs: list[dict[str, Any]]) -> None:
        """Add/Sub/Mul/Max/Min (equal layouts: element-wise in any order) or Concat (along channels or a spatial axis of
        NCHW or of NHWC tensors)."""
        nhwc = False
        if node.op_type != "Concat":
            views = [np.asarray(x["view"]) for x in srcs]
            if any(v.shape != views[0].shape or not np.array_equal(v, views[0]) for v in views[1:]):
                raise UnsupportedOpError(f"{node.op_type} of tensors in different layouts", node.name, CNN_ONNX_OPS)
            fn, axis = MERGE_KINDS[node.op_type], 0
        else:
            rank = len(srcs[0]["shape"])
            nhwc = rank > 1 and all(len(x["shape"]) == rank and _is_nhwc(x) and not _is_nchw(x) for x in srcs)
            for x in srcs:
                if not nhwc and (len(x["shape"]) != rank or not (_is_nchw(x) if rank > 1 else _is_nhwc(x))):
                    raise UnsupportedOpError("Concat of tensors not all in NCHW, all in NHWC (or flat) layout", node.name, CNN_ONNX_OPS)
            onnx_axis = int(_attrs(node).get("axis", 1))
            onnx_axis = onnx_axis + rank + 1 if onnx_axis < 0 else onnx_axis
            if onnx_axis < 1 or onnx_axis > rank:
                raise UnsupportedOpError(f"Concat axis={onnx_axis}", node.name, CNN_ONNX_OPS, "bondflow (not the batch axis)")
            if nhwc:  # ONNX axis k of N, *spatial, C is our axis k - 1
                fn, axis = "concatenate", onnx_axis - 1
            else:
                fn, axis = "concatenate", (rank - 1 if onnx_axis == 1 else onnx_axis - 2) if rank > 1 else 0
        op = Merge(name=_name(node, names), inputs=tuple(x["cur"] for x in srcs), function=fn, axis=axis,
                   result_type=merge_result_type(fn, [x["type"] for x in srcs]))
        shape = op.infer_shape([x["shape"] for x in srcs])
        ops.append(op)
        view = np.asarray(srcs[0]["view"]) if fn != "concatenate" else np.arange(int(np.prod(shape))).reshape(shape)
        if fn == "concatenate" and len(shape) > 1 and not nhwc:
            view = view.transpose(_chw(shape))
        st.update(cur=op.name, type=op.result_type, shape=shape, view=view)

    def need_default(what: str, node: str) -> FixedType:
        if default is None:
            raise QuantizationError(f"node '{node}' has float {what}: a default precision must be given (--default-precision), not none")
        return default

    def weight(name: str, node: str) -> tuple[np.ndarray, FixedType, bool]:
        if name in const_q:
            v, t = const_q[name]
            return v, t, False
        if name in consts:
            return np.asarray(consts[name], dtype=np.float64), need_default("weights", node), True
        raise UnsupportedOpError("a layer with computed weights", node, CNN_ONNX_OPS)

    def emit(op: Op, nhwc: bool = False) -> None:
        ops.append(op)
        st.update(cur=op.name, type=op.result_type, shape=op.out_shape(st["shape"]))
        if getattr(op, "elementwise", False):
            return  # an element-wise op keeps the layout it read (e.g. a Relu on the NHWC graph input)
        st["view"] = np.arange(int(np.prod(st["shape"]))).reshape(st["shape"])
        if len(st["shape"]) > 1 and not nhwc:
            st["view"] = st["view"].transpose(_chw(st["shape"]))  # ONNX holds images channels first (channels_last ops: not)

    def close(result: FixedType | None, requantized: bool) -> None:
        """Emit the pending Conv/Dense: the Quant's type, the exact sum before a Relu, else the default."""
        p = st["pending"]
        if p is None:
            return
        st["pending"] = None
        kind, name, w, wt, b, bt, extra = p
        w = quantize_checked(w, wt, f"node '{name}' weights")
        b = quantize_checked(b, bt, f"node '{name}' biases")
        geometry = {k: v for k, v in extra.items() if k not in ("terms", "acc", "nhwc")}
        acc = extra.get("acc") or accum_type_for(st["type"], wt, bt, extra.get("terms", int(np.prod(w.shape[:-1]))))
        rt = result or (acc if requantized else default or acc)
        common = dict(name=name, input=st["cur"], result_type=rt, weight=exact_raw(w, wt, f"node '{name}' weights"),
                      weight_type=wt, bias=exact_raw(b, bt, f"node '{name}' biases"), bias_type=bt, accum_type=acc)
        emit(Conv(**common, **geometry) if kind == "conv" else Dense(**common), bool(extra.get("nhwc")))

    def act(kind: str, node: Any, rt: FixedType) -> None:
        name = _name(node, names)
        cls = {"relu": Activation, "linear": Activation, "softmax": Softmax, "sigmoid": Sigmoid, "tanh": Tanh, "elu": Elu, "selu": Selu}[kind]
        extra = {"function": kind} if cls is Activation else exp_linear_kwargs(node) if kind in ("elu", "selu") else table_kwargs(node)
        emit(cls(name=name, input=st["cur"], result_type=rt, **extra))

    def own_quant(i: int) -> int | None:
        """The index of the Quant that alone reads node ``i``'s output (not always the next node: a sorted graph
        with branches may interleave another branch's nodes)."""
        rd = reader_index.get(nodes[i].output[0], [])
        return rd[0] if len(rd) == 1 and nodes[rd[0]] is not _SKIP and nodes[rd[0]].op_type == "Quant" else None

    for i, node in enumerate(nodes):
        if node is _SKIP:  # a Quant already applied with the activation before it
            continue
        t = node.op_type
        if t == "Quant" and node.input[0] not in data:
            if node.input[0] not in consts:
                raise UnsupportedOpError("Quant of a computed constant", node.name, CNN_ONNX_OPS)
            qt = quant_type(node, consts)
            const_q[node.output[0]] = (qt.to_float(qt.quantize(consts[node.input[0]])), qt)
            continue
        if not any(x in data for x in node.input):
            raise UnsupportedOpError(t, node.name, CNN_ONNX_OPS, "bondflow's ONNX frontend (constant subgraph)")
        cl = node.domain == CHANNELS_LAST_DOMAIN  # the same op on NHWC data: bondflow's own layout
        if cl and t not in CHANNELS_LAST_OPS:
            raise UnsupportedOpError(f"{t} of domain {CHANNELS_LAST_DOMAIN}", node.name, CNN_ONNX_OPS,
                                     f"bondflow (channels-last {', '.join(CHANNELS_LAST_OPS)} only)")
        ins = [x for x in node.input if x in data]
        data.update(node.output)
        if inp is not None and node.input[0] == last and any(p.key == ELEMENT_PART_KEY for p in node.metadata_props):
            last = node.output[0]  # the per-element clip of bondflow's element_quant export: part of that op
            settled[last] = snapshot()
            continue
        if is_copy(node):  # bondflow's copy of a tensor a merge reads twice: the same value
            if inp is not None and node.input[0] == last:
                settle()
            settled[node.output[0]] = read(node.input[0], node)
            continue
        two = t in MERGE_KINDS and len(ins) >= 2
        if inp is not None and (two or any(x != last for x in ins)):
            settle()  # a branch starts or two branches meet: the current tensor becomes a readable op
            if not two:
                st.update(read(ins[0], node))
        if two:
            if inp is None:
                raise UnsupportedOpError(f"{t} of two tensors before the input is typed", node.name, CNN_ONNX_OPS)
            merge(node, [read(x, node) for x in ins])
            last = node.output[0]
            settled[last] = snapshot()
            continue
        if inp is None:
            if t == "Quant":
                in_t = quant_type(node, consts)
            else:
                in_t = FixedType.parse(input_precision or (default_precision and str(default)) or DEFAULT_INPUT_PRECISION)
            shape = tuple(in_dims) or (1,)  # as laid out; a one-channel NCHW input is re-read at its first Conv
            label = next((p.value for p in proto.metadata_props if p.key == "bondflow.input_name"), "input")
            inp = TensorSpec(unique_name(label, names), int(np.prod(shape)), in_t, shape if len(shape) > 1 else ())
            st.update(cur=inp.name, type=in_t, shape=inp.shape, input=inp.name,
                      view=np.arange(inp.size).reshape(in_dims) if len(in_dims) > 1 else np.arange(inp.size))
            settled[in_name] = snapshot()
            if t == "Quant":
                last = node.output[0]
                settled[last] = snapshot()
                continue
        nxt = nodes[i + 1].op_type if i + 1 < len(nodes) else None
        element = next((p.value for p in node.metadata_props if p.key == ELEMENT_KEY), None) if t == "Quant" else None
        if element is not None:  # bondflow's own export of an element_quant (HGQ's per-element precision)
            from .onnx import _element_quant_op  # onnx.py imports this module
            close(None, False)
            emit(_element_quant_op(element, node, consts, names, st["cur"]))
        elif t == "Quant":
            if st["pending"] is not None:
                close(quant_type(node, consts), False)
            elif ops and isinstance(ops[-1], Merge) and ops[-1].name == st["cur"] and len(reader_index.get(last, ())) == 1:
                ops[-1] = replace(ops[-1], result_type=quant_type(node, consts))  # a quantized Add/Concat: its own cast
                st["type"] = ops[-1].result_type
            elif ops and ops[-1].name == st["cur"] and isinstance(ops[-1], (Activation, Softmax, Sigmoid, Tanh, Pool, Upsample, Flatten)) \
                    and ops[-1].result_type == quant_type(node, consts):
                pass  # the same type again (bondflow's own export re-quantizes after every op)
            else:
                act("linear", node, quant_type(node, consts))
        elif t == "Conv":
            close(None, False)
            a = _attrs(node)
            if any(d != 1 for d in a.get("dilations", [1])):
                raise UnsupportedOpError(f"Conv dilations={a.get('dilations')}", node.name, CNN_ONNX_OPS,
                                         "bondflow (dilation must be 1)")
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise UnsupportedOpError(f"Conv auto_pad={a['auto_pad']}", node.name, CNN_ONNX_OPS, "bondflow (explicit pads only)")
            _require_layout(st, node, cl, _from_input(ops))
            w, wt, wf = weight(node.input[1], node.name)  # (c_out, c_in, *k) -> (*k, c_in, c_out)
            if cl:  # qonnx's channels-last kernel (c_out, *k, c_in): back to ONNX's order first
                w = np.moveaxis(w, -1, 1)
            terms = int(np.prod(w.shape[1:]))  # products per output: its group's inputs times the taps
            groups = int(a.get("group", 1))
            if groups != 1:
                w = _grouped_as_conv(w, groups, node.name)
            nd = w.ndim - 2
            w = w.transpose(tuple(range(2, 2 + nd)) + (1, 0))
            b, bt, bf = (weight(node.input[2], node.name) if len(node.input) > 2 and node.input[2] else (np.zeros(w.shape[-1]), wt, wf))
            pads = a.get("pads", [0] * (2 * nd))
            from .onnx_export import TYPE_KEY  # bondflow's own export records the accumulator it declared
            declared = next((FixedType.parse(p.value) for p in node.metadata_props if p.key == TYPE_KEY), None)
            extra = {"strides": tuple(a.get("strides", [1] * nd)), "pads": tuple(zip(pads[:nd], pads[nd:])), "terms": terms,
                     "groups": groups, "acc": declared, "nhwc": cl}
            st["pending"] = ("conv", _name(node, names), w, wt, np.asarray(b).reshape(-1), bt, extra)
        elif t in ("MatMul", "Gemm"):
            close(None, False)
            w, wt, _ = weight(node.input[1], node.name)
            a = _attrs(node)
            if t == "Gemm" and a.get("transB", 0):
                w = w.T
            flat = np.asarray(st["view"]).reshape(-1)
            if len(st["shape"]) > 1 or not np.array_equal(flat, np.arange(flat.size)):
                if len(st["shape"]) > 1:  # flatten channels last, then read the weights in that order
                    fl = Flatten(name=unique_name("flatten", names), input=st["cur"], result_type=st["type"])
                    ops.append(fl)
                    st.update(cur=fl.name, shape=(flat.size,))
                w = w[np.argsort(flat)]  # row k of ONNX's flatten is value flat[k] of ours
            st["view"] = np.arange(w.shape[1])
            b, bt = (weight(node.input[2], node.name)[:2] if t == "Gemm" and len(node.input) > 2 else (np.zeros(w.shape[1]), wt))
            st["pending"] = ("dense", _name(node, names), w, wt, np.asarray(b).reshape(-1), bt, {})
        elif t == "Add":
            p = st["pending"]
            const_in = [x for x in node.input if x not in data]
            if p is None or len(const_in) != 1 or not np.all(np.asarray(p[4]) == 0):
                raise UnsupportedOpError("Add (other than a bias or of two tensors)", node.name, CNN_ONNX_OPS)
            b, bt, _ = weight(const_in[0], node.name)
            from .onnx_export import TYPE_KEY  # bondflow's own export records a Dense's declared accumulator here
            declared = next((FixedType.parse(q.value) for q in node.metadata_props if q.key == TYPE_KEY), None)
            st["pending"] = p[:4] + (np.asarray(b).reshape(-1), bt, {**p[6], "acc": declared} if declared else p[6])
        elif t in ("Relu", "Softmax", "Sigmoid", "Tanh", "Identity", "Elu", "Selu", "PRelu") + RELU_ONNX_OPS:
            # Relu, Clip(0, m), LeakyRelu, Elu and Selu round an exact sum once; a table activation indexes its table
            # with the top bits of its input, so its input takes the default precision (as hls4ml)
            close(None, t in ("Relu", "Elu", "Selu", "PRelu") + RELU_ONNX_OPS)
            kind = ACTIVATION_KINDS.get(t, "param_relu")
            if t == "Softmax" and len(st["shape"]) > 1:
                raise UnsupportedOpError(f"{t} over an image", node.name, CNN_ONNX_OPS)
            qi = own_quant(i)
            rt = quant_type(nodes[qi], consts) if qi is not None else need_default("activation output", node.name)
            if kind == "param_relu":
                emit(ParamRelu(name=_name(node, names), input=st["cur"], result_type=rt, **onnx_relu_params(node, consts)))
            elif kind == "prelu":
                emit(onnx_prelu(node, consts, np.asarray(st["view"]), tuple(st["shape"]), _name(node, names), st["cur"], rt))
            else:
                act(kind, node, rt)
            if qi is not None:
                data.update(nodes[qi].output)
                node = nodes[qi]  # the tensor this op holds is the Quant's output
                nodes[qi] = _SKIP
        elif t in SPATIAL[1:]:
            close(None, False)
            _require_layout(st, node, cl, _from_input(ops))
            a = _attrs(node)
            nd = len(st["shape"]) - 1
            fn = "max" if "Max" in t else "average"
            if t.startswith("Global"):
                pool, strides, pads = (0,) * nd, (1,) * nd, ((0, 0),) * nd
            else:
                if a.get("ceil_mode", 0) or (fn == "average" and a.get("count_include_pad", 0)):
                    raise UnsupportedOpError(f"{t} ceil_mode/count_include_pad", node.name, CNN_ONNX_OPS)
                pool = tuple(a["kernel_shape"])
                strides = tuple(a.get("strides", pool))
                p = a.get("pads", [0] * (2 * nd))
                pads = tuple(zip(p[:nd], p[nd:]))
            xt = st["type"]
            win = tuple(n if q == 0 else q for q, n in zip(pool, st["shape"][:-1]))
            rt = pool_result_type(fn, xt, int(np.prod(win)))
            emit(Pool(name=_name(node, names), input=st["cur"], result_type=rt, function=fn,
                      pool=pool, strides=strides, pads=pads), cl)
            if t.startswith("Global"):  # ONNX keeps (C, 1, 1): the view must say so
                st["view"] = np.arange(st["shape"][0]).reshape((st["shape"][0],) + (1,) * nd)
        elif t == "BatchNormalization":  # a per-channel scale and shift of its own, at the default precision (hls4ml's)
            close(None, False)
            emit(_bn_scale_shift(node, _name(node, names), st, consts, need_default("BatchNormalization parameters", node.name), cl), cl)
        elif t in UPSAMPLE:
            close(None, False)
            out_dims = [int(d) for d in model.get_tensor_shape(node.output[0])]
            in_dims = [int(d) for d in model.get_tensor_shape(node.input[0])]
            # A Resize between channels-last ops reads NHWC (scales 1, f, f, 1: the last axis kept). The untouched graph
            # input is in its raw order either way, so the scales decide (an NCHW Resize scales the last axis).
            nhwc = _is_nhwc(st) and not _is_nchw(st) and len(in_dims) > 2 and out_dims[-1] == in_dims[-1]
            if not nhwc:
                _require_nchw(st, node)
            if nhwc and len(out_dims) > 2:
                out_dims = out_dims[:1] + out_dims[-1:] + out_dims[1:-1]  # as N, C, *spatial
            emit(Upsample(name=_name(node, names), input=st["cur"], result_type=st["type"],
                          size=_repeat_factors(node, st["shape"], out_dims)), nhwc)
        elif t in ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            close(None, False)
            out_dims = [int(d) for d in model.get_tensor_shape(node.output[0])][1:]
            view = _layout(node, np.asarray(st["view"]), out_dims)
            if len(out_dims) == 1 and len(st["shape"]) > 1:  # an image becomes a vector: a Flatten (its order in the view)
                ops.append(Flatten(name=_name(node, names), input=st["cur"], result_type=st["type"]))
                st.update(cur=ops[-1].name, shape=(int(out_dims[0]),))
            st["view"] = view
        else:
            raise UnsupportedOpError(t, node.name or node.output[0], CNN_ONNX_OPS)
        last = node.output[0]
        if len(reader_index.get(last, ())) > 1 and st["pending"] is not None:
            settle()  # read by several nodes: one op all of them read
        if st["pending"] is None:
            settled[last] = snapshot()
    close(None, False)
    if inp is not None and st.get("input_shape") is not None:  # a one-channel NCHW input read as (H, W, 1)
        inp = TensorSpec(inp.name, inp.size, inp.type, st["input_shape"])
    if inp is None or not ops:
        raise UnsupportedOpError("an ONNX graph without layers", str(path), CNN_ONNX_OPS)
    if default is not None:
        meta["default_precision"] = str(default)
    name = next((p.value for p in proto.metadata_props if p.key == "bondflow.graph_name"), None) or g.name or "model"
    if len(ops) and not np.array_equal(np.asarray(st["view"]).reshape(-1), np.arange(int(np.prod(st["shape"])))):
        raise UnsupportedOpError("an output in channels-first order", ops[-1].name, CNN_ONNX_OPS,
                                 "bondflow (outputs must be flat or channels last)")
    return Graph(name=unique_name(str(name), set()), input=inp, ops=tuple(export_order(proto, ops)), meta=meta)


class _Skip:
    op_type = "_skip"
    input: list[str] = []
    output: list[str] = []
    name = ""


_SKIP: Any = _Skip()


def _reader_index(nodes: list[Any]) -> dict[str, list[int]]:
    """Each tensor's readers, as positions in ``nodes`` (a tensor read twice by one node is listed twice)."""
    readers: dict[str, list[int]] = {}
    for k, n in enumerate(nodes):
        for x in n.input:
            readers.setdefault(x, []).append(k)
    return readers


def chains_first(nodes: list[Any], available: set[str]) -> list[Any]:
    """A topological order that keeps each chain together: constant nodes first, then depth first from the input,
    so an op's only reader follows it (qonnx's cleanup sorts breadth first, interleaving a graph's branches)."""
    avail = set(available)
    consts = [n for n in nodes if all(x in avail or not x for x in n.input)]
    for n in consts:
        avail.update(n.output)
    readers = _reader_index(nodes)
    done = {id(n) for n in consts}
    order = list(consts)
    stack = [k for k, n in reversed(list(enumerate(nodes))) if id(n) not in done and all(x in avail or not x for x in n.input)]
    while stack:
        k = stack.pop()
        n = nodes[k]
        if id(n) in done:
            continue
        done.add(id(n))
        order.append(n)
        avail.update(n.output)
        ready = [r for x in n.output for r in readers.get(x, [])
                 if id(nodes[r]) not in done and all(y in avail or not y for y in nodes[r].input)]
        stack.extend(reversed(ready))
    order += [n for n in nodes if id(n) not in done]  # unreachable: left for the walk to refuse in one line
    return order


def _grouped_as_conv(w: np.ndarray, groups: int, node: str) -> np.ndarray:
    """A grouped (e.g. depthwise) ONNX kernel (C_out, C_in/groups, *k) as a full one (C_out, C_in, *k): output channel
    o reads only its group's input channels, every other weight zero (the same products and sums)."""
    c_out, per = w.shape[0], w.shape[1]
    if c_out % groups:
        raise UnsupportedOpError(f"Conv group={groups} with {c_out} output channels", node, CNN_ONNX_OPS,
                                 "bondflow (output channels must divide into the groups)")
    full = np.zeros((c_out, per * groups) + w.shape[2:], dtype=w.dtype)
    for o in range(c_out):
        grp = o // (c_out // groups)
        full[o, grp * per:(grp + 1) * per] = w[o]
    return full


def _bn_scale_shift(node: Any, name: str, st: dict[str, Any], consts: dict[str, np.ndarray], default: FixedType,
                    nhwc: bool = False) -> Op:
    """ONNX BatchNormalization on the current tensor (channel axis 1) as its own per-channel scale and shift at the
    default precision (channels first: an image's view must read NCHW)."""
    if any(i not in consts for i in node.input[1:5]):
        raise UnsupportedOpError("BatchNormalization with computed statistics", node.name, CNN_ONNX_OPS)
    shape = st["shape"]
    if len(shape) > 1:
        _require_layout(st, node, nhwc)
    scale, bias, mean, var = (np.asarray(consts[i], dtype=np.float64).reshape(-1) for i in node.input[1:5])
    if scale.size != shape[-1]:
        raise UnsupportedOpError(f"BatchNormalization of {scale.size} channels on {shape[-1]}", node.name, CNN_ONNX_OPS)
    s = scale / np.sqrt(var + float(_attrs(node).get("epsilon", 1e-5)))
    return scale_shift_op(name, st["cur"], st["type"], shape, s, bias - mean * s, default, f"node '{name}'")


def _repeat_factors(node: Any, shape: tuple[int, ...], out_nchw: list[int]) -> tuple[int, ...]:
    """The whole per-axis factors of a nearest Resize/Upsample of our (H, W, C) image whose ONNX output is
    ``out_nchw`` (N, C, H, W); refused unless every output pixel copies input pixel ``x // factor`` (ONNX's
    coordinate and rounding modes decide which pixel a nearest resize reads)."""
    from fractions import Fraction
    a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in _attrs(node).items()}
    where, t = node.name or node.output[0], node.op_type
    if a.get("mode", "nearest") != "nearest":
        raise UnsupportedOpError(f"{t} mode={a['mode']}", where, CNN_ONNX_OPS,
                                 "bondflow (nearest only: other interpolations are not exact in fixed point)")
    spatial = shape[:-1]
    if len(out_nchw) != len(shape) + 1 or out_nchw[1] != shape[-1] or any(o % n for o, n in zip(out_nchw[2:], spatial)):
        raise UnsupportedOpError(f"{t} from {list(spatial)} to {out_nchw[2:]} (channels {shape[-1]} -> {out_nchw[1:2]})",
                                 where, CNN_ONNX_OPS, "bondflow (whole spatial factors, batch and channels kept)")
    factors = tuple(o // n for o, n in zip(out_nchw[2:], spatial))
    ct = a.get("coordinate_transformation_mode", "half_pixel") if t == "Resize" else "asymmetric"
    nm = a.get("nearest_mode", "round_prefer_floor") if t == "Resize" else "floor"
    for n, f in zip(spatial, factors):
        out = n * f
        for x in range(out):
            xo = {"half_pixel": Fraction(2 * x + 1, 2 * f) - Fraction(1, 2),
                  "pytorch_half_pixel": Fraction(2 * x + 1, 2 * f) - Fraction(1, 2) if out > 1 else Fraction(0),
                  "asymmetric": Fraction(x, f), "tf_half_pixel_for_nn": Fraction(2 * x + 1, 2 * f),
                  "align_corners": Fraction(x * (n - 1), out - 1) if out > 1 else Fraction(0)}.get(ct)
            if xo is None:
                raise UnsupportedOpError(f"{t} coordinate_transformation_mode={ct}", where, CNN_ONNX_OPS)
            half = Fraction(1, 2)
            rounded = {"round_prefer_floor": math.ceil(xo - half), "round_prefer_ceil": math.floor(xo + half),
                       "floor": math.floor(xo), "ceil": math.ceil(xo)}.get(nm)
            if rounded is None:
                raise UnsupportedOpError(f"{t} nearest_mode={nm}", where, CNN_ONNX_OPS)
            if min(max(int(rounded), 0), n - 1) != x // f:
                raise UnsupportedOpError(f"{t} with coordinate_transformation_mode={ct}, nearest_mode={nm}", where,
                                         CNN_ONNX_OPS, "bondflow (only modes that repeat each pixel, e.g. asymmetric + floor)")
    return factors


def _is_nchw(st: dict[str, Any]) -> bool:
    """Whether the current ONNX tensor is our (*spatial, C) tensor channels first."""
    shape, view = st["shape"], np.asarray(st["view"])
    want = np.arange(int(np.prod(shape))).reshape(shape).transpose(_chw(shape))
    return view.shape == want.shape and np.array_equal(view, want)


def _is_nhwc(st: dict[str, Any]) -> bool:
    """Whether the current ONNX tensor is our tensor in our own order (channels last, or flat)."""
    shape, view = tuple(st["shape"]), np.asarray(st["view"])
    return view.shape == shape and np.array_equal(view.reshape(-1), np.arange(view.size))


def _from_input(ops: list[Op]) -> bool:
    """Whether the current tensor is still the graph input's values in its raw order (only element-wise ops so far)."""
    return all(getattr(o, "elementwise", False) for o in ops)


def _require_layout(st: dict[str, Any], node: Any, nhwc: bool, from_input: bool = False) -> None:
    """A standard Conv/pool/BatchNormalization reads NCHW, a channels-last one NHWC: our own order, nothing to permute."""
    if not nhwc:
        _require_nchw(st, node)
        return
    shape, view = st["shape"], np.asarray(st["view"])
    if len(shape) < 2 and view.ndim < 2:
        raise UnsupportedOpError(f"channels-last {node.op_type} on a flat tensor", node.name, CNN_ONNX_OPS)
    if _is_nhwc(st):
        return
    # The graph input as ONNX laid it out (e.g. a one-channel NCHW input transposed to NHWC): read in its raw order.
    if from_input and view.ndim > 1 and np.array_equal(view.reshape(-1), np.arange(view.size)):
        st["shape"] = st["input_shape"] = tuple(view.shape)
        return
    if from_input:  # a channels-first input transposed to NHWC: the source's order is not ours
        raise UnsupportedOpError(f"channels-last {node.op_type} reading a channels-first graph input with {shape[0]} channels",
                                 node.name, CNN_ONNX_OPS, "bondflow (export the model with a channels-last [N, H, W, C] input: "
                                 "ConvertToChannelsLastAndClean(make_input_channels_last=True))")
    raise UnsupportedOpError(f"channels-last {node.op_type} reading a tensor in another layout (ONNX shape {list(view.shape)})",
                             node.name, CNN_ONNX_OPS, "bondflow (channels-last ops must read NHWC tensors)")


def _require_nchw(st: dict[str, Any], node: Any) -> None:
    """The view must be our (H, W, C) tensor read channels first, as Conv and pools read it."""
    shape = st["shape"]
    view = np.asarray(st["view"])
    if len(shape) < 2:
        raise UnsupportedOpError(f"{node.op_type} on a flat tensor", node.name, CNN_ONNX_OPS)
    want = np.arange(int(np.prod(shape))).reshape(shape).transpose(_chw(shape))
    if view.shape == want.shape and np.array_equal(view, want):
        return
    # The graph input arrives as ONNX laid it out: reinterpret our input as channels last of what the Conv reads.
    if st["cur"] == st.get("input") and view.ndim == len(shape) and int(np.prod(view.shape)) == int(np.prod(shape)):
        c, *sp = view.shape
        hwc = tuple(sp) + (c,)
        if np.array_equal(view, np.arange(view.size).reshape(hwc).transpose(_chw(hwc))):
            st["shape"] = st["input_shape"] = hwc
            return
    raise UnsupportedOpError(f"{node.op_type} reading a channels-first graph input with {view.shape[0]} channels", node.name,
                             CNN_ONNX_OPS, "bondflow (export the model with a channels-last [N, H, W, C] input, as tf2onnx does)")


def _layout(node: Any, view: np.ndarray, out_dims: list[int]) -> np.ndarray:
    """The index view after a Transpose/Reshape/Flatten (the batch axis removed)."""
    if node.op_type == "Transpose":
        perm = list(_attrs(node).get("perm", list(range(view.ndim + 1))[::-1]))
        if perm[0] != 0:
            raise UnsupportedOpError("Transpose moving the batch axis", node.name, CNN_ONNX_OPS)
        return view.transpose([p - 1 for p in perm[1:]])
    if int(np.prod(out_dims)) != view.size:
        raise UnsupportedOpError(f"{node.op_type} to {out_dims}", node.name, CNN_ONNX_OPS, "bondflow (layout changes only)")
    return view.reshape(out_dims)

"""Graph -> QONNX: Quant nodes around MatMul/Add/Relu, with each value's exact bondflow type in node metadata."""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, UnsupportedOpError
from ..ir.graph import Graph
from ..ir.element_quant import ElementQuant
from ..ir.merge import Merge
from ..ir.ops import Activation, Dense, Elu, ExpLinear, Flatten, ParamRelu, PRelu, Selu, Sigmoid, Softmax, Tanh, Threshold
from ..ir.tensor_ops import Conv, Pool, Upsample
from ..ir.types import FixedType, Overflow, Rounding

__all__ = ["graph_to_onnx", "graph_to_onnx_bytes", "export_onnx", "QONNX_DOMAIN", "TYPE_KEY", "COPY_KEY", "is_copy"]


def is_copy(node) -> bool:
    """Whether an ONNX node is bondflow's copy of a tensor a merge reads twice (see COPY_KEY)."""
    return any(p.key == COPY_KEY for p in node.metadata_props)

QONNX_DOMAIN = "qonnx.custom_op.general"
NAME_KEY = "bondflow.name"  # node metadata: the op's name in the bondflow graph
TYPE_KEY = "bondflow.type"  # node metadata: the exact FixedType (Quant cannot express WRAP or every rounding)
# node metadata of a same-type Quant that only copies a tensor a merge reads twice (qonnx's cleanup renames just the
# first of two equal node inputs, leaving the second dangling); importers read it as the tensor itself.
COPY_KEY = "bondflow.copy_of"
# node metadata of the Quant (per-element scale) that starts an element_quant: its exact (k, i, f) and modes as JSON;
# the Max and Min after it (per-element clip; always-0 elements clip to [0, 0]) carry ELEMENT_PART_KEY.
ELEMENT_KEY = "bondflow.element_quant"
ORDER_KEY = "bondflow.op_order"
ELEMENT_PART_KEY = "bondflow.element_quant_part"
# qonnx rounding modes (intquant.resolve_rounding_mode). RND (ties up) and RND_MIN_INF (ties down) have no
# qonnx mode: the nearest one differs only on ties of one sign; the exact type travels in TYPE_KEY metadata.
_ROUNDING_NAME = {Rounding.RND_CONV: "ROUND", Rounding.TRN: "FLOOR", Rounding.TRN_ZERO: "DOWN",
                  Rounding.RND_INF: "HALF_UP", Rounding.RND_ZERO: "HALF_DOWN",
                  Rounding.RND: "HALF_UP", Rounding.RND_MIN_INF: "HALF_DOWN"}


def graph_to_onnx(graph: Graph):
    """Build the ModelProto (opset 13 + the QONNX domain)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise MissingDependencyError("onnx", "ONNX export") from None
    nodes, inits = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def quant(src: str, dst: str, t: FixedType) -> None:
        # qonnx runs a signed 1-bit Quant as bipolar (+-1); raw {-1, 0} is an unsigned bit shifted by zeropt 1.
        one_bit = t.signed and t.width == 1
        s = const(f"{dst}_scale", np.array(2.0 ** -t.frac_bits))
        z = const(f"{dst}_zeropt", np.array(1.0 if one_bit else 0.0))
        b = const(f"{dst}_bitwidth", np.array(float(t.width)))
        n = helper.make_node("Quant", [src, s, z, b], [dst], name=dst, domain=QONNX_DOMAIN,
                             signed=int(t.signed and not one_bit), narrow=int(t.signed and t.overflow is Overflow.SAT_SYM and t.width > 1),
                             rounding_mode=_ROUNDING_NAME[t.rounding])
        n.metadata_props.add(key=TYPE_KEY, value=str(t))
        nodes.append(n)

    types = graph.types()
    shapes = graph.shapes()
    x0 = "global_in"
    quant(x0, graph.input.name, graph.input.type)
    # Images travel channels last (bondflow's order) into the model and are transposed once to ONNX's NCHW;
    # a Flatten transposes back first, so the flat order stays bondflow's.
    nchw: set[str] = set()  # tensors (by bondflow name) held channels first in the ONNX graph

    def src(name: str, op_name: str) -> str:
        """``name`` as an NCHW tensor, transposing the channels-last graph input once."""
        if name in nchw or len(shapes[name]) < 2:
            return name
        nd = len(shapes[name]) - 1
        out = f"{name}_nchw"
        if out not in {o for n in nodes for o in n.output}:
            nodes.append(helper.make_node("Transpose", [name], [out], name=f"{op_name}_to_nchw", perm=[0, nd + 1] + list(range(1, nd + 1))))
        return out

    for op in graph.ops:
        if isinstance(op, Conv):
            nd = len(op.kernel)
            w = op.weight_type.to_float(op.weight).transpose((nd + 1, nd) + tuple(range(nd)))  # (c_out, c_in, *k)
            if op.groups > 1:  # ONNX's grouped kernel: each output channel's own group of inputs only
                per, grp = op.c_in // op.groups, np.arange(op.c_out) // (op.c_out // op.groups)
                w = np.stack([w[o, g * per:(g + 1) * per] for o, g in enumerate(grp)])
            quant(const(f"{op.name}_W_f", w), f"{op.name}_W", op.weight_type)
            quant(const(f"{op.name}_b_f", op.bias_type.to_float(op.bias)), f"{op.name}_b", op.bias_type)
            nodes.append(helper.make_node("Conv", [src(op.input, op.name), f"{op.name}_W", f"{op.name}_b"], [f"{op.name}_acc"],
                                          name=f"{op.name}_conv", kernel_shape=list(op.kernel), strides=list(op.strides),
                                          pads=[a for a, _ in op.pads] + [b for _, b in op.pads], group=op.groups))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            nodes[-1].metadata_props.add(key=TYPE_KEY, value=str(op.accum_type))
            quant(f"{op.name}_acc", op.name, op.result_type)
            nchw.add(op.name)
        elif isinstance(op, Pool):
            nd = len(op.pool)
            if not any(op.pool):
                kind, kw = ("GlobalMaxPool" if op.function == "max" else "GlobalAveragePool"), {}
            else:
                kind = "MaxPool" if op.function == "max" else "AveragePool"
                kw = dict(kernel_shape=list(op.pool), strides=list(op.strides), pads=[a for a, _ in op.pads] + [b for _, b in op.pads])
            pre = f"{op.name}_pre"
            nodes.append(helper.make_node(kind, [src(op.input, op.name)], [pre], name=f"{op.name}_pool", **kw))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            if not any(op.pool):  # (1, C, 1, 1) -> (1, C): bondflow's global pooling is already flat
                nodes.append(helper.make_node("Flatten", [pre], [f"{op.name}_flat"], name=f"{op.name}_flatten"))
                pre = f"{op.name}_flat"
            else:
                nchw.add(op.name)
            quant(pre, op.name, op.result_type)
        elif isinstance(op, Upsample):  # ONNX's nearest Resize whose modes repeat each pixel
            scales = const(f"{op.name}_scales", np.array([1.0, 1.0, *op.size]))
            nodes.append(helper.make_node("Resize", [src(op.input, op.name), "", scales], [f"{op.name}_pre"],
                                          name=f"{op.name}_resize", mode="nearest", coordinate_transformation_mode="asymmetric",
                                          nearest_mode="floor"))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            quant(f"{op.name}_pre", op.name, op.result_type)
            nchw.add(op.name)
        elif isinstance(op, Flatten) and op.input in nchw:
            nd = len(shapes[op.input]) - 1
            nodes.append(helper.make_node("Transpose", [op.input], [f"{op.name}_nhwc"], name=f"{op.name}_to_nhwc",
                                          perm=[0] + list(range(2, nd + 2)) + [1]))
            nodes.append(helper.make_node("Flatten", [f"{op.name}_nhwc"], [f"{op.name}_pre"], name=f"{op.name}_flatten"))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            quant(f"{op.name}_pre", op.name, op.result_type)
        elif isinstance(op, (Activation, Sigmoid, Tanh, ExpLinear)) and op.input in nchw:
            kind = _onnx_activation(op)
            nodes.append(helper.make_node(kind, [op.input], [f"{op.name}_pre"], name=f"{op.name}_{kind.lower()}",
                                          **_activation_attrs(op)))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            _add_table_settings(nodes[-1], op)
            quant(f"{op.name}_pre", op.name, op.result_type)
            nchw.add(op.name)
        elif isinstance(op, ParamRelu):  # Clip(0, m) or LeakyRelu, then the cast (NCHW or flat alike: element-wise)
            from .onnx_relu import param_relu_node
            nodes.append(param_relu_node(op, f"{op.name}_pre", helper, const))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            quant(f"{op.name}_pre", op.name, op.result_type)
            if op.input in nchw:
                nchw.add(op.name)
        elif isinstance(op, PRelu):  # slopes as a float initializer (exact in float32), their type in metadata
            from .onnx_relu import prelu_node
            nodes.append(prelu_node(op, shapes[op.input], op.input in nchw, f"{op.name}_pre", helper, const))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            quant(f"{op.name}_pre", op.name, op.result_type)
            if op.input in nchw:
                nchw.add(op.name)
        elif isinstance(op, Dense):
            w = op.weight_type.to_float(op.weight)
            b = op.bias_type.to_float(op.bias)
            quant(const(f"{op.name}_W_f", w), f"{op.name}_W", op.weight_type)
            quant(const(f"{op.name}_b_f", b), f"{op.name}_b", op.bias_type)
            nodes.append(helper.make_node("MatMul", [op.input, f"{op.name}_W"], [f"{op.name}_mm"], name=f"{op.name}_mm"))
            nodes.append(helper.make_node("Add", [f"{op.name}_mm", f"{op.name}_b"], [f"{op.name}_acc"], name=f"{op.name}_add"))
            nodes[-1].metadata_props.add(key=TYPE_KEY, value=str(op.accum_type))
            nodes[-2].metadata_props.add(key=NAME_KEY, value=op.name)
            quant(f"{op.name}_acc", op.name, op.result_type)
        elif isinstance(op, (Activation, Softmax, Sigmoid, Tanh, ExpLinear, Flatten)):
            kind = _onnx_activation(op)
            nodes.append(helper.make_node(kind, [op.input], [f"{op.name}_pre"], name=f"{op.name}_{kind.lower()}",
                                          **_activation_attrs(op)))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            _add_table_settings(nodes[-1], op)
            quant(f"{op.name}_pre", op.name, op.result_type)
        elif isinstance(op, Merge):
            if op.function in ("add", "multiply") and len(op.inputs) != 2:
                raise UnsupportedOpError(f"merge {op.function} of {len(op.inputs)} tensors", op.name,
                                         [f"{op.function} of 2 tensors", "maximum/minimum/concatenate of any number"], "ONNX export")
            rank = len(shapes[op.name])
            # Images are NCHW in the ONNX graph: bondflow's channel axis (last) is ONNX's axis 1, spatial axis k is k + 2.
            axis = 1 if rank == 1 or op.axis == rank - 1 else op.axis + 2
            kind = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "maximum": "Max", "minimum": "Min"}.get(op.function, "Concat")
            kw = {"axis": axis} if kind == "Concat" else {}
            ins = [src(s, op.name) for s in op.inputs]
            for j in range(1, len(ins)):
                if ins[j] in ins[:j]:  # the same tensor again: through a copy, so qonnx's cleanup keeps both inputs
                    quant(ins[j], f"{op.name}_in{j}", types[op.inputs[j]])
                    nodes[-1].metadata_props.add(key=COPY_KEY, value=op.inputs[j])
                    ins[j] = f"{op.name}_in{j}"
            nodes.append(helper.make_node(kind, ins, [f"{op.name}_pre"], name=f"{op.name}_{kind.lower()}", **kw))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
            quant(f"{op.name}_pre", op.name, op.result_type)  # the Quant is the cast (float32 holds these sums exactly)
            if rank > 1:
                nchw.add(op.name)
        elif isinstance(op, ElementQuant):
            shape = shapes[op.input]
            _element_quant(op, nodes, const, helper, shape, op.input in nchw)
            if op.input in nchw:
                nchw.add(op.name)
        elif isinstance(op, Threshold):
            # FINN's MultiThreshold: thresholds as real values of the input's grid (exact in float32 up to 24 bits).
            xt, rt = types[op.input], op.result_type
            t = const(f"{op.name}_thresholds", xt.to_float(op.thresholds))
            dtype = f"{'INT' if rt.signed else 'UINT'}{rt.width}" if rt.frac_bits == 0 else "FLOAT32"
            nodes.append(helper.make_node("MultiThreshold", [op.input, t], [op.name], name=op.name, domain=QONNX_DOMAIN,
                                          out_dtype=dtype, out_scale=float(rt.to_float(op.step)), out_bias=float(rt.to_float(op.offset))))
            nodes[-1].metadata_props.add(key=TYPE_KEY, value=str(rt))
            nodes[-1].metadata_props.add(key=NAME_KEY, value=op.name)
        else:
            raise UnsupportedOpError(op.kind, op.name, ["dense", "activation", "softmax", "sigmoid", "tanh", "flatten", "threshold", "merge",
                                                        "element_quant"], "ONNX export")
    out = graph.ops[-1].name
    g = helper.make_graph(nodes, graph.name,
                          [helper.make_tensor_value_info(x0, TensorProto.FLOAT, [1, *graph.input.shape])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, graph.output.size])], inits)
    model = helper.make_model(g, producer_name="bondflow", opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
    model.ir_version = 8
    model.metadata_props.add(key="bondflow.graph_digest", value=graph.digest())
    model.metadata_props.add(key="bondflow.graph_name", value=graph.name)
    model.metadata_props.add(key="bondflow.input_name", value=graph.input.name)
    # qonnx's cleanup sorts nodes topologically, which may interleave branches differently: the importer restores this
    model.metadata_props.add(key=ORDER_KEY, value=json.dumps([op.name for op in graph.ops]))
    for k, v in graph.meta.items():
        if isinstance(v, str):
            model.metadata_props.add(key=f"bondflow.meta.{k}", value=v)
    onnx.checker.check_model(model)
    return model


def _onnx_activation(op: Any) -> str:
    """The ONNX op_type computing an element-wise or table op in float (its Quant follows)."""
    if isinstance(op, Activation):
        return {"relu": "Relu", "linear": "Identity"}[op.function]
    return {Softmax: "Softmax", Sigmoid: "Sigmoid", Tanh: "Tanh", Elu: "Elu", Selu: "Selu", Flatten: "Flatten"}[type(op)]


def _activation_attrs(op: Any) -> dict[str, float]:
    """ONNX attributes of the node: Elu's alpha; Selu's are ONNX's defaults, Keras's constants."""
    return {"alpha": op.alpha} if isinstance(op, Elu) else {}


def _add_table_settings(node: Any, op: Any) -> None:
    """Record a Softmax/Sigmoid/Tanh op's table size and types on its node (onnx_tables.py reads them back)."""
    from .onnx_tables import TABLE_KEY, table_settings
    settings = table_settings(op)
    if settings is not None:
        node.metadata_props.add(key=TABLE_KEY, value=settings)


def _element_quant(op: ElementQuant, nodes: list, const, helper, shape: tuple[int, ...] = (), nchw: bool = False) -> None:
    """Quant with per-element scale 2^-f (rounding; its clip wide enough for every element), then a per-element Max and
    Min (each element's range; [0, 0] for 0-bit elements): qonnx's reading saturates where the op may WRAP, and rounds
    RND ties away from zero, so the exact op travels in ELEMENT_KEY metadata (as TYPE_KEY does for casts).
    On an image the per-element arrays take its ONNX layout (``nchw``: channels first), the metadata bondflow's."""
    import json
    types = op.types()

    def laid_out(v: np.ndarray) -> np.ndarray:
        if len(shape) < 2:
            return v
        v = v.reshape((1,) + tuple(shape))
        return v.transpose((0, len(shape)) + tuple(range(1, len(shape)))) if nchw else v
    live = [t for t in types if t is not None]
    lo = np.array([0.0 if t is None else (-t.max_value if t.overflow is Overflow.SAT_SYM and t.signed and t.width > 1
                                          else t.min_value) for t in types])
    hi = np.array([0.0 if t is None else t.max_value for t in types])
    bits = max([t.width + int(not t.signed) for t in live] + [2])
    s = const(f"{op.name}_scale", laid_out(np.array([2.0 ** -(t.frac_bits if t is not None else 0) for t in types])))
    z = const(f"{op.name}_zeropt", np.array(0.0))
    b = const(f"{op.name}_bitwidth", np.array(float(bits)))
    q = helper.make_node("Quant", [op.input, s, z, b], [f"{op.name}_q"], name=f"{op.name}_q", domain=QONNX_DOMAIN,
                         signed=1, narrow=0, rounding_mode=_ROUNDING_NAME[op.rounding])
    q.metadata_props.add(key=NAME_KEY, value=op.name)
    q.metadata_props.add(key=TYPE_KEY, value=str(op.result_type))
    q.metadata_props.add(key=ELEMENT_KEY, value=json.dumps({"k": op.k.tolist(), "i": op.i.tolist(), "f": op.f.tolist(),
                                                            "rounding": op.rounding.value, "overflow": op.overflow.value}))
    mx = helper.make_node("Max", [f"{op.name}_q", const(f"{op.name}_lo", laid_out(lo))], [f"{op.name}_lo_clip"], name=f"{op.name}_max")
    mn = helper.make_node("Min", [f"{op.name}_lo_clip", const(f"{op.name}_hi", laid_out(hi))], [op.name], name=f"{op.name}_min")
    for n in (mx, mn):
        n.metadata_props.add(key=ELEMENT_PART_KEY, value=op.name)
    nodes += [q, mx, mn]


def graph_to_onnx_bytes(graph: Graph) -> bytes:
    return graph_to_onnx(graph).SerializeToString()


def export_onnx(graph: Graph, path) -> None:
    from pathlib import Path
    from ..fsutil import atomic_write_bytes
    atomic_write_bytes(Path(path), graph_to_onnx_bytes(graph))


def export_order(proto: Any, ops: list[Any]) -> list[Any]:
    """``ops`` in the order bondflow's export recorded (the graph's own order, so the digest is the same), when the
    file is bondflow's and holds exactly these ops; any other file keeps the order it was read in."""
    text = next((str(p.value) for p in proto.metadata_props if str(p.key) == ORDER_KEY), None)
    if text is None:
        return ops
    try:
        order = {name: k for k, name in enumerate(json.loads(text))}
    except ValueError:
        return ops
    if set(order) != {op.name for op in ops} or len(order) != len(ops):
        return ops
    return sorted(ops, key=lambda op: order[op.name])

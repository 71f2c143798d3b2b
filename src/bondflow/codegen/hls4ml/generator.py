"""Architecture "hls4ml": build an hls4ml project whose every precision is the Graph's, compile its C simulation."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ..._compat import alias_keras_to_tf_keras, import_tensorflow
from ...design import Design
from ...errors import ConfigError, MissingDependencyError, ToolFailedError, ToolNotFoundError, UnsupportedOpError
from ...ir.element_quant import ElementQuant
from ...ir.graph import Graph
from ...ir.reference import SOFTMAX_ACCUM_TYPE
from ...ir.merge import Merge, merge_result_type
from ...ir.ops import Activation, Dense, Elu, Flatten, LookupOp, Op, ParamRelu, PRelu, Selu, Softmax, TableActivation
from ...ir.tensor_ops import Conv, Pool, Upsample, same_pads
from ...ir.types import FixedType
from ...progress import get_reporter
from ...tools import find_tool
from ..base import register_arch

__all__ = ["generate_hls4ml", "HlsProject", "build_project", "valid_reuse_factors", "closest_valid_reuse", "per_layer_reuse", "BOARDS"]

BOARDS = ("pynq-z2", "zcu102", "alveo-u50", "alveo-u250", "alveo-u280")
INPUT_LAYER = "bondflow_input"  # hls4ml reserves the name 'input'
_TEXT_SUFFIXES = {".h", ".cpp", ".hpp", ".tcl", ".txt", ".sh", ".py", ".json", ".yml", ".cfg", ".ini", ""}


def valid_reuse_factors(n_in: int, n_out: int) -> list[int]:
    """Reuse factors hls4ml 1.3 accepts for a Dense layer (its FPGA backend's rule)."""
    out = []
    for rf in range(1, n_in * n_out + 1):
        mult_limit = -(-(n_in * n_out) // min(n_in, rf))
        ok = (mult_limit % n_out == 0 or rf >= n_in) and (rf % n_in == 0 or rf < n_in) and (n_in * n_out) % rf == 0
        if ok:
            out.append(rf)
    return out


def per_layer_reuse(graph: Graph, rf: "int | dict[str, int]") -> dict[str, int]:
    """One reuse factor for every Dense layer, or a mapping layer -> factor (missing layers get 1)."""
    if isinstance(rf, dict):
        unknown = set(rf) - {o.name for o in graph.dense_layers()}
        if unknown:
            raise ConfigError(f"reuse factors must name dense layers {[o.name for o in graph.dense_layers()]}, not {sorted(unknown)}")
        return {o.name: int(rf.get(o.name, 1)) for o in graph.dense_layers()}
    return {o.name: int(rf) for o in graph.dense_layers()}


def closest_valid_reuse(graph: Graph, target: int) -> dict[str, int]:
    """Per layer, the valid reuse factor closest to ``target`` (what hls4ml itself would pick)."""
    out = {}
    for op in graph.dense_layers():
        valid = valid_reuse_factors(op.n_in, op.n_out)
        out[op.name] = min(valid, key=lambda v: (abs(v - target), v))
    return out


def check_reuse_factor(graph: Graph, rf: "int | dict[str, int]") -> None:
    rfs = per_layer_reuse(graph, rf)
    for op in graph.dense_layers():
        valid = valid_reuse_factors(op.n_in, op.n_out)
        rf = rfs[op.name]
        if rf not in valid:
            raise ConfigError(f"reuse factor for layer '{op.name}' ({op.n_in}x{op.n_out}) must be one of "
                              f"{valid[:12]}{'...' if len(valid) > 12 else ''}, not {rf}")


def keras_model_of(graph: Graph):
    """A tf_keras model with the graph's exact (dequantized) weights; hls4ml reads it, the Graph sets precisions."""
    tfk = import_tensorflow()
    shapes = graph.shapes()
    if graph.is_chain():
        layers = [tfk.layers.InputLayer(input_shape=graph.input.shape, name=INPUT_LAYER)]
        for op in graph.ops:
            layers.extend(_keras_layers(tfk, op, shapes))
        model = tfk.Sequential(layers, name=graph.name)
    else:  # branches: a functional model, each op applied to the tensors it reads
        tensors = {graph.input.name: tfk.Input(shape=graph.input.shape, name=INPUT_LAYER)}
        for op in graph.ops:
            if isinstance(op, Merge):
                # hls4ml 1.3's merge layers take exactly two tensors: N inputs become a chain of N - 1 merges,
                # the inner ones named <merge>_<k> and typed so they change nothing (see hls_config).
                t = tensors[op.inputs[0]]
                for k, src in enumerate(op.inputs[1:], start=1):
                    name = op.name if k == len(op.inputs) - 1 else f"{op.name}_{k}"
                    layer = (tfk.layers.Concatenate(axis=op.axis + 1, name=name) if op.function == "concatenate"
                             else getattr(tfk.layers, op.function.capitalize())(name=name))
                    t = layer([t, tensors[src]])
                tensors[op.name] = t
                continue
            t = tensors[op.input]
            for layer in _keras_layers(tfk, op, shapes):
                t = layer(t)
            tensors[op.name] = t
        model = tfk.Model(tensors[graph.input.name], tensors[graph.ops[-1].name], name=graph.name)
    for op in graph.ops:
        if isinstance(op, (Dense, Conv)):
            model.get_layer(op.name).set_weights([op.weight_type.to_float(op.weight).astype(np.float64),
                                                  op.bias_type.to_float(op.bias).astype(np.float64)])
        elif isinstance(op, PRelu):  # one slope per element, shaped as the tensor (hls4ml's prelu has no shared axes)
            n = int(np.prod(shapes[op.input]))
            a = op.alpha_type.to_float(op.slopes(n)).reshape(shapes[op.input])
            model.get_layer(op.name).set_weights([a.astype(np.float64)])
        elif isinstance(op, ElementQuant):  # hls4ml's FixedPointQuantizer: keep_negative, bits, integers per element
            kbi = (op.k, op.k + op.i + op.f, op.k + op.i)
            shape = (1, *shapes[op.input])
            model.get_layer(op.name).set_weights([np.asarray(a, dtype=np.int32).reshape(shape) for a in kbi])
    return model


_FPQ: dict[int, type] = {}


def _fixed_point_quantizer(tfk: Any) -> type:
    """A tf_keras layer that hls4ml's Keras reader takes for its ``FixedPointQuantizer`` (the layer HGQ's proxy models
    carry): an identity in Keras whose per-element widths are weights; hls4ml writes one ap_fixed cast per element."""
    if id(tfk) not in _FPQ:
        class FixedPointQuantizer(tfk.layers.Layer):  # the class name is what hls4ml dispatches on
            def __init__(self, RND: str = "TRN", SAT: str = "WRAP", **kw: Any) -> None:
                kw.pop("fusible", None), kw.pop("overrides", None)
                super().__init__(**kw)
                self.RND, self.SAT = RND, SAT

            def build(self, input_shape: Any) -> None:
                shape = (1, *(int(d) for d in input_shape[1:]))  # per element, shaped as the tensor (hls4ml broadcasts)
                for w in ("keep_negative", "bits", "integers"):
                    setattr(self, w, self.add_weight(name=w, shape=shape, initializer="zeros", trainable=False, dtype="int32"))

            def call(self, x: Any) -> Any:
                return x

            def get_config(self) -> dict[str, Any]:
                return {**super().get_config(), "RND": self.RND, "SAT": self.SAT, "fusible": False, "overrides": {}}
        _FPQ[id(tfk)] = FixedPointQuantizer
    return _FPQ[id(tfk)]


def _keras_layers(tfk: Any, op: Op, shapes: dict[str, tuple[int, ...]]) -> list[Any]:
    """The tf_keras layers computing one single-input op (none for a Flatten of a flat tensor)."""
    layers: list[Any] = []
    if isinstance(op, Dense):
        layers.append(tfk.layers.Dense(op.n_out, name=op.name))
    elif isinstance(op, Conv):
        in_shape = shapes[op.input]
        same = op.pads == tuple(same_pads(n, k, s) for n, k, s in zip(in_shape[:-1], op.kernel, op.strides))
        if not same and any(a or b for a, b in op.pads):
            pad = op.pads[0] if len(op.kernel) == 1 else op.pads
            layers.append(getattr(tfk.layers, f"ZeroPadding{len(op.kernel)}D")(pad, name=f"{op.name}_pad"))
        conv = tfk.layers.Conv1D if len(op.kernel) == 1 else tfk.layers.Conv2D
        layers.append(conv(op.c_out, op.kernel, strides=op.strides, padding="same" if same and any(map(any, op.pads)) else "valid",
                           name=op.name))
    elif isinstance(op, Pool):
        nd = len(op.pool)
        if not any(op.pool):
            cls = f"Global{'Max' if op.function == 'max' else 'Average'}Pooling{nd}D"
            layers.append(getattr(tfk.layers, cls)(name=op.name))
        else:
            if any(a or b for a, b in op.pads):
                raise UnsupportedOpError("padded pooling", op.name, ["pool without padding"], "the hls4ml generator")
            cls = f"{'Max' if op.function == 'max' else 'Average'}Pooling{nd}D"
            layers.append(getattr(tfk.layers, cls)(op.pool, strides=op.strides, name=op.name))
    elif isinstance(op, Upsample):
        up = tfk.layers.UpSampling1D if len(op.size) == 1 else tfk.layers.UpSampling2D
        layers.append(up(op.size[0] if len(op.size) == 1 else op.size, name=op.name))
    elif isinstance(op, Activation):
        layers.append(tfk.layers.Activation(op.function, name=op.name))
    elif isinstance(op, ParamRelu):
        layers.append(_param_relu_keras(tfk, op))
    elif isinstance(op, TableActivation):  # sigmoid, tanh: nnet::sigmoid / nnet::tanh with the op's table
        layers.append(tfk.layers.Activation(op.kind, name=op.name))
    elif isinstance(op, PRelu):
        layers.append(tfk.layers.PReLU(name=op.name))
    elif isinstance(op, Elu):  # nnet::elu with the slope as param_t (hls4ml makes every elu an ELU layer)
        layers.append(tfk.layers.ELU(alpha=op.alpha, name=op.name))
    elif isinstance(op, Selu):
        layers.append(tfk.layers.Activation("selu", name=op.name))
    elif isinstance(op, Softmax):
        layers.append(tfk.layers.Activation("softmax", name=op.name))
    elif isinstance(op, Flatten):
        if len(shapes[op.input]) > 1:
            layers.append(tfk.layers.Flatten(name=op.name))
    elif isinstance(op, ElementQuant):  # per-element casts: io_parallel only (io_type_for picks it)
        layers.append(_fixed_point_quantizer(tfk)(RND=op.rounding.value, SAT=op.overflow.value, name=op.name))
    else:
        raise UnsupportedOpError(op.kind, op.name, ["dense", "conv", "pool", "upsample", "activation", "prelu", "sigmoid", "tanh", "elu",
                                                    "selu", "softmax", "flatten", "merge", "element_quant"], "the hls4ml generator")
    return layers


def _relu_max_bound(op: ParamRelu) -> int | None:
    """hls4ml's bounded ReLUs are relu_max<6> (relu6) and relu_max<1> (relu1); its Keras reader drops ReLU(max_value)."""
    return int(op.max_value) if op.max_value in (1.0, 6.0) and not op.alpha else None


def _param_relu_keras(tfk: Any, op: ParamRelu) -> Any:
    """The tf_keras layer hls4ml turns into nnet::leaky_relu (slope literal, param_t = alpha_type, set in hls_config)
    or into nnet::relu (renamed to relu6/relu1 after conversion: _use_relu_max)."""
    if op.alpha and op.max_value is None:
        return tfk.layers.LeakyReLU(alpha=op.alpha, name=op.name)
    if _relu_max_bound(op) is None:
        raise UnsupportedOpError(f"param_relu {op.function}", op.name, ["leaky_relu(alpha)", "relu6", "relu1"],
                                 "the hls4ml generator (hls4ml has no other bounded ReLU)")
    return tfk.layers.Activation("relu", name=op.name)


def _use_relu_max(graph: Graph, hls_model: Any) -> None:
    """Point the function calls of bounded ReLUs at hls4ml's nnet::relu6 / nnet::relu1 (relu_max): its converter has no
    Keras spelling of relu1, and the call text is rendered at conversion, so the rendered call is renamed."""
    bounds = {o.name: _relu_max_bound(o) for o in graph.ops if isinstance(o, ParamRelu) and _relu_max_bound(o)}
    for layer in hls_model.get_layers():
        if layer.name not in bounds:
            continue
        hits = [(k, v) for k, v in layer.attributes.items() if isinstance(v, str) and "nnet::relu<" in v]
        if len(hits) != 1:
            raise ToolFailedError("hls4ml", 1, None, f"layer '{layer.name}': one nnet::relu call to make relu_max, not {len(hits)}")
        layer.set_attr(hits[0][0], hits[0][1].replace("nnet::relu<", f"nnet::relu{bounds[layer.name]}<"))


def source_model_of(graph: Graph):
    """The graph's source Keras/QKeras model when its file is still there and unchanged, else None."""
    meta = graph.meta or {}
    path = Path(str(meta.get("source", "")))
    if meta.get("source_format") != "keras" or not path.is_file() or not meta.get("source_sha256"):
        return None
    if hashlib.sha256(path.read_bytes()).hexdigest() != meta["source_sha256"]:
        return None  # edited since import: the graph, not the file, is the truth
    tfk = import_tensorflow()
    try:
        from qkeras.utils import _add_supported_quantized_objects
        custom: dict[str, Any] = {}
        _add_supported_quantized_objects(custom)
        return tfk.models.load_model(str(path), custom_objects=custom, compile=False)
    except Exception:  # unreadable now: fall back to the graph's own weights
        return None


def _matches_graph(graph: Graph, hls_model: Any) -> bool:
    """Whether hls4ml's layers are exactly the graph's ops (plus its input and identity linears of Dense)."""
    if any(isinstance(o, (ParamRelu, PRelu, Elu)) for o in graph.ops):  # hls4ml reads ReLU(max_value) as relu, a slope at the
        return False                                               # default precision: the graph's own model says it exactly
    ops = {o.name for o in graph.ops if not isinstance(o, Flatten)}
    dense = {o.name for o in graph.dense_layers()}
    names = [l.name for l in hls_model.get_layers()][1:]
    # io_stream copies a tensor read twice through a clone layer (hls4ml's 'clone_<producer>')
    extra = [n for n in names if n not in ops and not (n.endswith("_linear") and n[:-7] in dense)
             and not (n.startswith("clone_") and n[6:] in ops | {graph.input.name})]
    return not extra and ops <= set(names)


def hls_config(graph: Graph, model, reuse_factor: "int | dict[str, int]", strategy: str,
               input_layer: str = INPUT_LAYER) -> dict[str, Any]:
    """hls4ml config (granularity 'name') with every precision taken from the Graph."""
    alias_keras_to_tf_keras()
    import hls4ml
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    rfs = per_layer_reuse(graph, reuse_factor)
    cfg["Model"]["ReuseFactor"] = max(rfs.values())
    cfg["Model"]["Strategy"] = strategy.capitalize()
    layers = cfg["LayerName"]
    layers.setdefault(input_layer, {})["Precision"] = {"result": graph.input.type.to_ap()}
    for op in graph.ops:
        lc = layers.setdefault(op.name, {})
        lc["ReuseFactor"] = rfs.get(op.name, 1)
        if isinstance(op, (Dense, Conv)):
            lc["Precision"] = {"weight": op.weight_type.to_ap(), "bias": op.bias_type.to_ap(),
                               "result": op.result_type.to_ap(), "accum": op.accum_type.to_ap()}
            lc["Strategy"] = strategy.capitalize()
            # Keras Dense without activation gets a linear activation layer in hls4ml: keep it an identity.
            layers.setdefault(f"{op.name}_linear", {})["Precision"] = {"result": op.result_type.to_ap()}
        elif isinstance(op, ElementQuant):  # each element cast to its own type, held exactly by the result type
            lc["Precision"] = {"result": op.result_type.to_ap()}
        elif isinstance(op, (ParamRelu, PRelu)):  # the slopes are values of alpha_type: param_t holds them exactly
            lc["Precision"] = {"result": op.result_type.to_ap()}
            if op.alpha_type is not None:
                lc["Precision"]["param"] = op.alpha_type.to_ap()
        elif isinstance(op, (Activation, Merge)):  # a merge aligns its inputs, sums or copies exactly, then casts
            lc["Precision"] = {"result": op.result_type.to_ap()}
            if isinstance(op, Merge):  # inner merges of a chain (keras_model_of): exact partial sums; a concatenation
                types = graph.types()  # casts each input to the result type, so inner ones already use it
                for k in range(1, len(op.inputs) - 1):
                    t = (op.result_type if op.function == "concatenate"
                         else merge_result_type(op.function, [types[s] for s in op.inputs[:k + 1]]))
                    layers.setdefault(f"{op.name}_{k}", {})["Precision"] = {"result": t.to_ap()}
        elif isinstance(op, Pool):  # max is exact; the average's exact sum needs the mean's bits plus log2(N) integer bits
            xt = graph.types()[op.input]
            n = int(np.prod(op.window(graph.shapes()[op.input])))
            acc = FixedType(op.result_type.width + n.bit_length(), op.result_type.int_bits + n.bit_length(), signed=xt.signed)
            lc["Precision"] = {"result": op.result_type.to_ap(), "accum": acc.to_ap()}
        elif isinstance(op, Upsample) or (isinstance(op, Flatten) and graph.is_shaped()):
            lc["Precision"] = {"result": op.result_type.to_ap()}
        elif isinstance(op, LookupOp):  # sigmoid, tanh, elu, selu
            lc["Precision"] = {"result": op.result_type.to_ap()}
            if isinstance(op, Elu):  # the slope is a value of alpha_type: param_t holds it exactly
                lc["Precision"]["param"] = op.alpha_type.to_ap()
            # hls4ml takes an activation's table type from the layer's own 'table_t' key (a 'table' precision is
            # silently ignored: its default ap_fixed<18,8> would be used) and reads the PascalCase 'TableSize'
            lc["table_t"] = op.table_type.to_ap()
            lc["TableSize"] = op.table_size
        elif isinstance(op, Softmax):
            # accum/inv_inp pinned to hls4ml's own defaults, which the golden model assumes (SOFTMAX_ACCUM_TYPE)
            lc["Precision"] = {"result": op.result_type.to_ap(), "accum": SOFTMAX_ACCUM_TYPE.to_ap()}
            # the table types as the layer's own '*_t' keys: hls4ml ignores them under 'Precision' (as table_t above)
            lc.update(exp_table_t=op.exp_table_type.to_ap(), inv_table_t=op.inv_table_type.to_ap(),
                      inv_inp_t=SOFTMAX_ACCUM_TYPE.to_ap())
            lc["TableSize"] = op.table_size
            lc["Implementation"] = op.implementation
    return cfg


class HlsProject:
    """A written and compiled hls4ml project; ``predict_raw`` runs its C simulation."""

    def __init__(self, graph: Graph, hls_model: Any, out_dir: Path, config: dict[str, Any]) -> None:
        self.graph, self.hls_model, self.out_dir, self.config = graph, hls_model, out_dir, config
        self.source = "graph"  # what hls4ml converted: "source model" (the user's Keras file) or "graph"

    def predict_raw(self, x_raw: np.ndarray) -> np.ndarray:
        """Raw inputs -> raw outputs through hls4ml's bit-accurate C++ (exact: inputs are on the input grid)."""
        x = np.ascontiguousarray(self.graph.input.type.to_float(np.asarray(x_raw)), dtype=np.float64)
        y = np.asarray(self.hls_model.predict(x), dtype=np.float64).reshape(len(x), -1)
        t = self.graph.output.type
        raw = np.ldexp(y, t.frac_bits)
        if not np.all(raw == np.round(raw)):
            raise ToolFailedError("hls4ml predict", 1, None, "outputs are not on the output type's grid")
        return raw.astype(np.int64)


def io_type_for(graph: Graph) -> str:
    """hls4ml's I/O style for the graph: MLPs fully parallel; images streamed through line buffers (io_stream), except
    when an image carries per-element casts (HGQ), which hls4ml implements for io_parallel only."""
    if not graph.is_shaped():
        return "io_parallel"
    shapes = graph.shapes()
    per_pixel = any(isinstance(op, ElementQuant) and len(shapes[op.input]) > 1 for op in graph.ops)
    return "io_parallel" if per_pixel else "io_stream"


def build_project(graph: Graph, out_dir: Path, reuse_factor: "int | dict[str, int]" = 1, strategy: str = "latency",
                  board: str | None = None, part: str = "xc7z020clg400-1", clock_period: float = 5.0,
                  use_source: bool = True) -> HlsProject:
    """Convert, write and compile (g++) the hls4ml project in ``out_dir``."""
    if strategy not in ("latency", "resource"):
        raise ConfigError(f"strategy must be 'latency' or 'resource', not {strategy!r}")
    if board is not None and board not in BOARDS:
        raise ConfigError(f"board must be one of {', '.join(BOARDS)}, not {board!r}")
    check_reuse_factor(graph, reuse_factor)
    io_type = io_type_for(graph)
    bounded = [o for o in graph.ops if isinstance(o, ParamRelu) and _relu_max_bound(o)]
    if io_type == "io_stream" and bounded:
        raise UnsupportedOpError(f"param_relu {bounded[0].function}", bounded[0].name, ["relu", "leaky_relu(alpha)"],
                                 "the hls4ml generator on a CNN (io_stream: hls4ml's streamed activations have no relu_max)")
    selu = [o for o in graph.ops if isinstance(o, Selu)]
    if io_type == "io_stream" and selu:
        raise UnsupportedOpError("selu", selu[0].name, ["relu", "elu", "leaky_relu(alpha)", "sigmoid", "tanh"],
                                 "the hls4ml generator on a CNN (io_stream: hls4ml's streamed selu scales by lambda in the "
                                 "input's type, its parallel selu in ap_ufixed<16,1>, which bondflow's model follows)")
    if find_tool("g++") is None:
        raise ToolNotFoundError("g++", "apt-get install g++")
    alias_keras_to_tf_keras()
    try:
        import hls4ml
    except ImportError:
        raise MissingDependencyError("hls4ml", "the hls4ml architecture") from None
    # bit_exact off: hls4ml would otherwise re-derive every precision itself once a FixedPointQuantizer is present
    kw: dict[str, Any] = dict(output_dir=str(out_dir), project_name="myproject", io_type=io_type,
                              clock_period=clock_period, bit_exact=False)
    if board:
        kw.update(backend="VivadoAccelerator", board=board)
    else:
        kw.update(backend="Vitis", part=part)
    hls_model = None
    source = "graph"
    model = source_model_of(graph) if use_source else None
    if model is not None:
        # The user's own Keras file, with every precision overridden by the Graph's: one quantization for all.
        try:
            cfg = hls_config(graph, model, reuse_factor, strategy, model.input_names[0])
            hls_model = hls4ml.converters.convert_from_keras_model(model, hls_config=cfg, **kw)
        except Exception:
            hls_model = None  # hls4ml cannot read it: the graph's own model below reports what fails
        if hls_model is not None and not _matches_graph(graph, hls_model):
            hls_model = None  # e.g. BatchNorm the frontend folded: the graph's own model is the faithful one
        source = "graph" if hls_model is None else "source model"
    if hls_model is None:
        model = keras_model_of(graph)
        cfg = hls_config(graph, model, reuse_factor, strategy)
        try:
            hls_model = hls4ml.converters.convert_from_keras_model(model, hls_config=cfg, **kw)
        except Exception as e:  # hls4ml raises bare Exceptions: name the layer when it says which
            raise _hls4ml_error(graph, e, out_dir) from None
    _use_relu_max(graph, hls_model)
    get_reporter().step(f"  hls4ml: compile the C simulation of the {source} (g++, tens of seconds)")
    try:
        hls_model.compile()
    except Exception as e:
        raise _hls4ml_error(graph, e, out_dir) from None
    prj = HlsProject(graph, hls_model, out_dir, cfg)
    prj.source = source
    return prj


def _hls4ml_error(graph: Graph, e: Exception, out_dir: Path) -> ToolFailedError:
    """hls4ml's exception as a ToolFailedError naming the graph layer it mentions (if any)."""
    text = f"{type(e).__name__}: {e}"
    names = sorted((o.name for o in graph.ops), key=len, reverse=True)
    layer = next((n for n in names if re.search(rf"\b{re.escape(n)}\b", str(e))), None)
    where = f"layer '{layer}': " if layer else ""
    return ToolFailedError("hls4ml", 1, out_dir, f"{where}{text}")


@register_arch("hls4ml")
def generate_hls4ml(graph: Graph, reuse_factor: "int | dict[str, int]" = 1, strategy: str = "latency", board: str | None = None,
                    synth: bool = False, vectors: int = 1000, seed: int = 0, **options: Any) -> Design:
    """The hls4ml project (text files), its config, and C-simulation outputs on the standard test vectors."""
    if options:
        raise ConfigError(f"hls4ml options must be among reuse_factor, strategy, board, synth, vectors, not {sorted(options)}")
    from ...sim.vectors import make_vectors
    hls = find_tool("vitis_hls") or find_tool("vivado_hls")
    if synth and hls is None:  # say so before minutes of conversion and compilation
        raise ToolNotFoundError("vitis_hls", "AMD Vitis HLS (vendor download); without --synth the hls4ml project "
                                "is written and can be synthesized later with `vitis_hls -f build_prj.tcl`")
    tmp = Path(tempfile.mkdtemp(prefix="bondflow-hls4ml-"))
    try:
        t0 = time.monotonic()
        prj = build_project(graph, tmp / "prj", reuse_factor, strategy, board)
        build_s = time.monotonic() - t0
        tv = make_vectors(graph, vectors, seed)
        get_reporter().step(f"  hls4ml: C simulation of {len(tv)} vectors")
        t1 = time.monotonic()
        y = prj.predict_raw(tv.inputs)
        csim_s = time.monotonic() - t1
        files = {"graph.json": graph.to_json(indent=1), "hls4ml_config.json": json.dumps(prj.config, indent=1, default=str),
                 "csim.json": json.dumps({"inputs": tv.inputs.tolist(), "outputs": y.tolist(), "seed": seed})}
        for p in sorted((tmp / "prj").rglob("*")):
            if p.is_file() and p.suffix in _TEXT_SUFFIXES and p.stat().st_size < 2_000_000:
                try:
                    files[f"hls4ml_prj/{p.relative_to(tmp / 'prj')}"] = p.read_text()
                except UnicodeDecodeError:
                    continue
        mismatches = int(np.count_nonzero(np.any(y != tv.expected, axis=1)))
        info: dict[str, Any] = {"converted_from": prj.source, "io_type": io_type_for(graph), "csim_vectors": len(tv), "csim_mismatches_vs_golden": mismatches,
                                "compile_seconds": round(build_s, 2), "csim_seconds": round(csim_s, 3),
                                "hls4ml_version": __import__("hls4ml").__version__}
        if synth:
            get_reporter().step(f"  hls4ml: vendor HLS synthesis ({Path(hls).name}, minutes to hours)")
            try:
                prj.hls_model.build(csim=False, synth=True)
            except Exception as e:
                raise _hls4ml_error(graph, e, tmp / "prj") from None
            info["hls_report"] = __import__("hls4ml").report.parse_vivado_report(str(tmp / "prj"))
        return Design(arch="hls4ml", top="myproject", language="hls-c++", files=files, interface=None,
                      graph_digest=graph.digest(), options={"reuse_factor": reuse_factor, "strategy": strategy,
                                                            "board": board}, info=info, generator_version=__version__)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

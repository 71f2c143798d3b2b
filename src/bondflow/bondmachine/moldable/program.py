"""Mapping neurons to cores, the per-core programs, the architecture JSON, and the instruction-level simulator."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from ...codegen.layers import product_shape
from ...errors import ConfigError, UnsupportedOpError
from ...ir.graph import Graph, TensorSpec
from ...ir.ops import Activation, Dense, Flatten, Sigmoid, Softmax
from ...ir.tensor_ops import Conv, Pool, Upsample
from ...ir.reference import run_raw
from ...ir.types import FixedType

__all__ = ["Instr", "Core", "Layer", "TableLayer", "Network", "map_network", "simulate_isa", "OPCODES", "LAYER_OVERHEAD",
           "TABLE_CYCLES", "AUTO_MAX_CORES", "auto_cores", "POOL_OPCODES"]

#: The instruction set; each core's decoder holds only the opcodes its program uses. With L MAC lanes an
#: instruction multiplies L inputs by L weights at once (x[a] * w stands for the sum over the lanes).
OPCODES = {
    "MAC": "acc <- acc + x[a] * w",
    "MACB": "acc <- bias[n] + x[a] * w",
    "MACO": "y[n] <- cast(acc + x[a] * w)",
    "MACBO": "y[n] <- cast(bias[n] + x[a] * w)",
    "BIASO": "y[n] <- cast(bias[n])",
}
#: Pool cores' opcodes (one lane; in a pixel loop ``x[a]`` is window element a at the current output position,
#: and a window element in the padding reads the fill: 0, or the type's minimum for max pooling).
POOL_OPCODES = {
    "LD": "acc <- x[a]",
    "LDO": "y[n] <- cast(x[a])",
    "MAX": "acc <- max(acc, x[a])",
    "MAXO": "y[n] <- cast(max(acc, x[a]))",
    "ADD": "acc <- acc + x[a]",
    "ADDO": "y[n] <- cast(acc + x[a])",
}
MAX_LANES = 16
#: ``cores="auto"`` (the default) gives a layer at most this many cores (one per neuron below it).
AUTO_MAX_CORES = 16
#: Pipeline depth of the dataflow table layers a table unit wraps (sigmoid: index, ROM; softmax: index, exp+sum+inverse, product).
TABLE_CYCLES = {"sigmoid": 2, "softmax": 3}
#: Cycles a layer adds around its longest program: start (input latched) and completion (outputs copied).
LAYER_OVERHEAD = 2


@dataclass(frozen=True)
class Instr:
    op: str
    a: tuple[int, ...]  # input index per MAC lane
    w: tuple[int, ...]  # weight (raw) per lane; 0 in a lane the instruction leaves unused
    n: int  # local output slot


@dataclass
class Core:
    name: str
    layer: int
    neurons: list[int]  # global output indices, in local slot order
    program: list[Instr] = field(default_factory=list)

    @property
    def opcodes(self) -> list[str]:
        return sorted({i.op for i in self.program}, key=[*OPCODES, *POOL_OPCODES].index)


@dataclass
class Layer:
    name: str
    dense: Dense
    act: Activation | None
    x_type: FixedType
    cores: list[Core]

    @property
    def cycles(self) -> int:
        return max(len(c.program) for c in self.cores)


@dataclass
class TableLayer:
    """A softmax or sigmoid as one table unit (the dataflow architecture's ROMs, bit-exact with the golden model)."""

    name: str
    op: Sigmoid | Softmax
    x_type: FixedType
    n: int

    @property
    def cycles(self) -> int:
        return TABLE_CYCLES[self.op.kind]

    def to_json_dict(self) -> dict[str, Any]:
        opcode = self.op.kind.upper()
        return {"name": self.name, "kind": self.op.kind, "n_in": self.n, "n_out": self.n, "x_type": str(self.x_type),
                "result_type": str(self.op.result_type), "cycles": self.cycles,
                "cores": [{"name": f"{self.name}_table", "neurons": list(range(self.n)), "opcodes": [opcode],
                           "program_length": 1, "program": [{"op": opcode, "a": [], "w": [], "n": 0}]}]}

    def run(self, x: np.ndarray) -> np.ndarray:
        """The golden model's kernel for this op on raw inputs (the RTL reads the same tables)."""
        return run_raw(Graph(self.name, TensorSpec(self.op.input, self.n, self.x_type), (self.op,)), x)


@dataclass
class Network:
    layers: list[Any]  # Layer, TableLayer or conv_program.ShapedLayer (conv and pooling over a pixel loop)
    lanes: int = 1

    def to_json_dict(self) -> dict[str, Any]:
        """The architecture description (in the spirit of bondmachine.json; documented in docs/moldable.md)."""
        shaped = any(hasattr(l, "geom") for l in self.layers)
        return {"format": "bondflow-moldable", "version": 2, "lanes": self.lanes,
                "opcodes": {**OPCODES, **POOL_OPCODES} if shaped else OPCODES, "layers": [
            l.to_json_dict() if not isinstance(l, Layer) else {"name": l.name, "n_in": l.dense.n_in, "n_out": l.dense.n_out, "x_type": str(l.x_type),
             "weight_type": str(l.dense.weight_type), "accum_type": str(l.dense.accum_type),
             "result_type": str((l.act or l.dense).result_type), "cycles": l.cycles,
             "cores": [{"name": c.name, "neurons": c.neurons, "opcodes": c.opcodes, "program_length": len(c.program),
                        "program": [asdict(i) for i in c.program]} for c in l.cores]} for l in self.layers],
            "bonds": [{"from": f"{self.layers[k].name}.out", "to": f"{self.layers[k + 1].name}.in", "protocol": "valid/ready"}
                      for k in range(len(self.layers) - 1)]}

    @property
    def latency(self) -> int:
        return sum(l.cycles + LAYER_OVERHEAD for l in self.layers)

    @property
    def ii(self) -> int:
        return max(l.cycles + 1 for l in self.layers)  # a layer restarts the cycle after it finished


def _program(d: Dense, neurons: list[int], lanes: int) -> list[Instr]:
    prog: list[Instr] = []
    zero = (0,) * lanes
    for slot, j in enumerate(neurons):
        nz = [i for i in range(d.n_in) if d.weight[i, j] != 0]  # pruned weights cost no cycle
        if not nz:
            prog.append(Instr("BIASO", zero, zero, slot))
            continue
        groups = [nz[k:k + lanes] for k in range(0, len(nz), lanes)]
        for k, grp in enumerate(groups):
            first, last = k == 0, k == len(groups) - 1
            op = "MACBO" if first and last else "MACB" if first else "MACO" if last else "MAC"
            pad = lanes - len(grp)
            prog.append(Instr(op, tuple(grp) + (0,) * pad, tuple(int(d.weight[i, j]) for i in grp) + (0,) * pad, slot))
    return prog


def _pack(d: Dense, n_cores: int, lanes: int) -> tuple[list[list[int]], int]:
    """Neurons onto ``n_cores`` cores, longest first onto the least loaded; also the longest program (cycles)."""
    load = [(max(-(-int(np.count_nonzero(d.weight[:, j])) // lanes), 1), j) for j in range(d.n_out)]
    bins: list[list[int]] = [[] for _ in range(n_cores)]
    work = [0] * n_cores
    for w, j in sorted(load, reverse=True):
        c = work.index(min(work))
        bins[c].append(j)
        work[c] += w
    return bins, max(work)


def auto_cores(graph: Graph, lanes: int = 1) -> list[int]:
    """Cores per dense, conv or pool layer sized from the model: the II is set by the slowest layer with one core
    per neuron or output channel (at most AUTO_MAX_CORES); every layer then gets the fewest cores that keep its
    cycles within that II."""
    from .conv_program import shaped_cycles  # it builds on this module's cores and programs
    shapes = graph.shapes()
    cost: list[tuple[int, Callable[[int], int]]] = []  # per layer: output units, cycles with n cores
    for o in graph.ops:
        if isinstance(o, Dense):
            cost.append((o.n_out, lambda n, o=o: _pack(o, n, lanes)[1]))
        elif isinstance(o, (Conv, Pool, Upsample)):
            units = o.c_out if isinstance(o, Conv) else shapes[o.input][-1]
            cost.append((units, lambda n, o=o: shaped_cycles(o, shapes[o.input], n, lanes)))
    target = max(f(min(u, AUTO_MAX_CORES)) for u, f in cost)
    return [next(c for c in range(1, u + 1) if f(c) <= target) for u, f in cost]


def map_network(graph: Graph, cores_per_layer: int | list[int] | str = "auto", lanes: int = 1) -> Network:
    """Split each Dense(+activation) layer's neurons over its cores, balancing multiply-accumulates.

    ``cores_per_layer``: one number (at most that many per layer), a list (one per dense layer) or ``"auto"``
    (:func:`auto_cores`). ``lanes``: multipliers per core; an instruction does that many multiply-accumulates of one neuron.
    """
    if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= MAX_LANES:
        raise ConfigError(f"MAC lanes per core must be an integer in 1..{MAX_LANES}, not {lanes!r}")
    if isinstance(cores_per_layer, str):
        if cores_per_layer != "auto":
            raise ConfigError(f"cores must be a number, a list of numbers or 'auto', not {cores_per_layer!r}")
        cores_per_layer = auto_cores(graph, lanes)
    from .conv_program import map_shaped  # it builds on this module's cores and programs
    layers: list[Any] = []
    shapes = graph.shapes()
    ops = list(graph.ops)
    cur = graph.input.type
    i = 0
    while i < len(ops):
        op = ops[i]
        if isinstance(op, Flatten) and op.result_type == cur:
            i += 1
            continue
        if isinstance(op, (Sigmoid, Softmax)):
            last = layers[-1] if layers else None
            n = graph.input.size if last is None else last.dense.n_out if isinstance(last, Layer) else last.n
            layers.append(TableLayer(op.name, op, cur, n))
            cur = op.result_type
            i += 1
            continue
        if not isinstance(op, (Dense, Conv, Pool, Upsample)):
            raise UnsupportedOpError(op.kind, op.name, ["dense (+ relu/linear)", "conv (+ relu/linear)", "pool", "upsample",
                                                        "flatten", "sigmoid", "softmax"], "the moldable generator")
        if isinstance(op, (Dense, Conv)):
            product_shape(op.as_dense() if isinstance(op, Conv) else op, cur, "the moldable generator")  # exact, wrapping accumulator
        nxt = ops[i + 1] if i + 1 < len(ops) else None
        act = nxt if isinstance(nxt, Activation) and nxt.input == op.name else None
        k = sum(not isinstance(l, TableLayer) for l in layers)  # cores are given per dense, conv or pool layer
        units = op.n_out if isinstance(op, Dense) else op.c_out if isinstance(op, Conv) else shapes[op.input][-1]
        if isinstance(cores_per_layer, list):
            if k >= len(cores_per_layer):
                raise ConfigError(f"cores per layer must list one value per dense, conv or pool layer, not only {len(cores_per_layer)}")
            n_cores = cores_per_layer[k]
        else:  # one number: at most that many cores per layer, never more than the layer's neurons
            n_cores = min(cores_per_layer, units) if isinstance(cores_per_layer, int) and cores_per_layer >= 1 else cores_per_layer
        if not isinstance(op, Dense):
            layers.append(map_shaped(op, act, cur, shapes[op.input], n_cores, k, lanes))
            cur = layers[-1].result_type
            i += 2 if act else 1
            continue
        if not isinstance(n_cores, int) or not 1 <= n_cores <= op.n_out:
            raise ConfigError(f"cores for layer '{op.name}' must be in 1..{op.n_out} (its neurons), not {n_cores}")
        bins, _ = _pack(op, n_cores, lanes)
        cores = [Core(f"l{k}c{c}", k, sorted(b)) for c, b in enumerate(bins)]
        for c in cores:
            c.program = _program(op, c.neurons, lanes)
        layers.append(Layer(op.name, op, act, cur, cores))
        cur = (act or op).result_type
        i += 2 if act else 1
    n_dense = sum(not isinstance(l, TableLayer) for l in layers)
    if cores_per_layer and isinstance(cores_per_layer, list) and len(cores_per_layer) != n_dense:
        raise ConfigError(f"cores per layer must list {n_dense} values, not {len(cores_per_layer)}")
    return Network(layers, lanes)


def simulate_isa(net: Network, x_raw: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Execute every core's program, instruction by instruction, on each sample; return outputs and cycle counts."""
    x = np.asarray(x_raw, dtype=np.int64)
    cycles = {"latency": 0, "ii": 0}
    for layer in net.layers:
        if not isinstance(layer, Layer):  # table units run the golden kernel, shaped layers their pixel loop
            x = layer.run(x)
            cycles["latency"] += layer.cycles + LAYER_OVERHEAD
            cycles["ii"] = max(cycles["ii"], layer.cycles + 1)
            continue
        d, acc_t = layer.dense, layer.dense.accum_type
        shift = acc_t.frac_bits - (layer.x_type.frac_bits + d.weight_type.frac_bits)
        bias = acc_t.requantize(d.bias, d.bias_type.frac_bits)
        y = np.zeros((len(x), d.n_out), dtype=np.int64)
        out_t = (layer.act or d).result_type
        for core in layer.cores:
            acc = np.zeros(len(x), dtype=np.int64)
            for ins in core.program:  # one instruction per cycle
                j = core.neurons[ins.n]
                prod = sum((x[:, a] * w) << shift for a, w in zip(ins.a, ins.w))
                if ins.op == "BIASO":
                    total = np.full(len(x), bias[j])
                elif ins.op in ("MACB", "MACBO"):
                    total = bias[j] + prod
                else:
                    total = acc + prod
                acc = acc_t.requantize(total, acc_t.frac_bits)  # wraps like the RTL register
                if ins.op in ("MACO", "MACBO", "BIASO"):
                    v = d.result_type.requantize(acc, acc_t.frac_bits)
                    if layer.act is not None:
                        src = d.result_type
                        v = layer.act.result_type.requantize(np.maximum(v, 0) if layer.act.function == "relu" else v, src.frac_bits)
                    y[:, j] = v
        x = y
        cycles["latency"] += layer.cycles + LAYER_OVERHEAD
        cycles["ii"] = max(cycles["ii"], layer.cycles + 1)
        _ = out_t
    return x, cycles

"""Mapping neurons to cores, the per-core programs, the architecture JSON, and the instruction-level simulator."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from ...codegen.layers import product_shape
from ...errors import ConfigError, UnsupportedOpError
from ...ir.graph import Graph
from ...ir.merge import Merge
from ...ir.ops import Activation, Dense, Flatten, Softmax, TableActivation
from ...ir.tensor_ops import Conv, Pool, Upsample
from ...ir.types import FixedType
from .units import UnitLayer, run_op

__all__ = ["Instr", "Core", "Layer", "TableLayer", "Network", "map_network", "simulate_isa", "OPCODES", "LAYER_OVERHEAD",
           "TABLE_CYCLES", "AUTO_MAX_CORES", "auto_cores", "POOL_OPCODES", "FIFO_CYCLES"]

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
TABLE_CYCLES = {"sigmoid": 2, "tanh": 2, "softmax": 3}
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
    """A softmax, sigmoid or tanh as one table unit (the dataflow architecture's ROMs, bit-exact with the golden model)."""

    name: str
    op: TableActivation | Softmax
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
        return run_op(self.op, x, self.x_type, self.n)


#: Cycles a merge input waits in its fifo (show-ahead: a word pushed in one cycle is at the head the next).
FIFO_CYCLES = 1


@dataclass
class Network:
    """The layers in graph order and their bonds: ``wiring[k]`` is (tensors layer k reads, tensor it writes); a
    tensor read by several layers forks, and a merge unit's inputs meet in fifos (``fifo_depths``)."""

    layers: list[Any]  # Layer, TableLayer, conv_program.ShapedLayer (conv and pooling over a pixel loop), units.UnitLayer
    lanes: int = 1
    wiring: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    source: str = "input"  # the network's input tensor
    sink: str = ""  # its output tensor (default: the last layer's)

    def __post_init__(self) -> None:
        if not self.wiring:  # a chain
            names = [self.source] + [l.name for l in self.layers]
            self.wiring = [((names[k],), names[k + 1]) for k in range(len(self.layers))]

    @property
    def output(self) -> str:
        return self.sink or self.wiring[-1][1]

    def merges(self, k: int) -> bool:
        """Whether layer k joins several tensors (its inputs wait in fifos)."""
        return len(self.wiring[k][0]) > 1

    def schedule(self) -> tuple[list[int], dict[str, int]]:
        """Cycle each layer accepts a sample and cycle each tensor is valid, one sample entering at cycle 0."""
        ready: dict[str, int] = {self.source: 0}
        starts: list[int] = []
        for k, (layer, (srcs, dst)) in enumerate(zip(self.layers, self.wiring)):
            starts.append(max(ready[s] for s in srcs) + (FIFO_CYCLES if self.merges(k) else 0))
            ready[dst] = starts[-1] + layer.cycles + LAYER_OVERHEAD
        return starts, ready

    def fifo_depths(self, k: int) -> list[int]:
        """Words each input fifo of merge layer k holds: a word waits there ``starts[k] - ready`` cycles (its branch's
        lead plus the fifo's own cycle) while new ones arrive every II, so ``ceil(wait / II)`` words are in it at once;
        one more lets the fork it leaves hand over the next word in the cycle the merge takes the oldest (a power of two)."""
        starts, ready = self.schedule()
        need = [-(-(starts[k] - ready[s]) // self.ii) + 1 for s in self.wiring[k][0]]
        return [1 << max(1, (n - 1).bit_length()) for n in need]

    def to_json_dict(self) -> dict[str, Any]:
        """The architecture description (in the spirit of bondmachine.json; documented in docs/moldable.md)."""
        shaped = any(hasattr(l, "geom") for l in self.layers)
        writer = {dst: l.name for l, (_, dst) in zip(self.layers, self.wiring)}
        return {"format": "bondflow-moldable", "version": 2, "lanes": self.lanes,
                "opcodes": {**OPCODES, **POOL_OPCODES} if shaped else OPCODES, "layers": [
            l.to_json_dict() if not isinstance(l, Layer) else {"name": l.name, "n_in": l.dense.n_in, "n_out": l.dense.n_out, "x_type": str(l.x_type),
             "weight_type": str(l.dense.weight_type), "accum_type": str(l.dense.accum_type),
             "result_type": str((l.act or l.dense).result_type), "cycles": l.cycles,
             "cores": [{"name": c.name, "neurons": c.neurons, "opcodes": c.opcodes, "program_length": len(c.program),
                        "program": [asdict(i) for i in c.program]} for c in l.cores]} for l in self.layers],
            "bonds": [{"from": f"{writer[s]}.out" if s in writer else "input", "to": f"{l.name}.in"
                       + (f"[{j}]" if len(srcs) > 1 else ""), "protocol": "valid/ready" + (" via fifo" if len(srcs) > 1 else "")}
                      for l, (srcs, _) in zip(self.layers, self.wiring) for j, s in enumerate(srcs)]}

    @property
    def latency(self) -> int:
        return self.schedule()[1][self.output]

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
    if not cost:  # only units (casts, merges, tables): no processors to size
        return []
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
    wiring: list[tuple[tuple[str, ...], str]] = []
    shapes, types = graph.shapes(), graph.types()
    readers: dict[str, list[Any]] = {graph.input.name: []}
    for o in graph.ops:
        readers[o.name] = []
        for src in o.inputs:
            readers[src].append(o)
    alias: dict[str, str] = {}  # a tensor that is another on the wire (a flatten of a channels-last image; a fused activation)

    def wire(t: str) -> str:
        return alias.get(t, t)

    def fused(op: Any) -> Activation | None:
        """The activation that is ``op``'s only reader: computed by ``op``'s layer."""
        rd = readers[op.name]
        return rd[0] if len(rd) == 1 and isinstance(rd[0], Activation) else None

    k = 0  # cores are given per dense, conv or pool layer
    for op in graph.ops:
        if op.name in alias:
            continue
        srcs = tuple(wire(s) for s in op.inputs)
        cur = types[op.input]
        if isinstance(op, Flatten) and op.result_type == cur:
            alias[op.name] = srcs[0]
            continue
        if isinstance(op, (TableActivation, Softmax)):
            layers.append(TableLayer(op.name, op, cur, int(np.prod(shapes[op.input]))))
            wiring.append((srcs, op.name))
            continue
        if UnitLayer.takes(op):
            act = fused(op) if isinstance(op, Merge) else None
            layers.append(UnitLayer(op.name, op, act, tuple(types[s] for s in op.inputs), tuple(shapes[s] for s in op.inputs)))
            wiring.append((srcs, act.name if act else op.name))
            if act:
                alias[act.name] = act.name
            continue
        if not isinstance(op, (Dense, Conv, Pool, Upsample)):
            raise UnsupportedOpError(op.kind, op.name, ["dense", "conv", "pool", "upsample", "flatten", "relu/linear",
                                                        "param_relu", "prelu", "sigmoid", "tanh", "elu", "selu", "softmax", "add", "concatenate", "element_quant",
                                                        "threshold"],
                                     "the moldable generator")
        if isinstance(op, (Dense, Conv)):
            product_shape(op.as_dense() if isinstance(op, Conv) else op, cur, "the moldable generator")  # exact, wrapping accumulator
        act = fused(op)
        units = op.n_out if isinstance(op, Dense) else op.c_out if isinstance(op, Conv) else shapes[op.input][-1]
        if isinstance(cores_per_layer, list):
            if k >= len(cores_per_layer):
                raise ConfigError(f"cores per layer must list one value per dense, conv or pool layer, not only {len(cores_per_layer)}")
            n_cores = cores_per_layer[k]
        else:  # one number: at most that many cores per layer, never more than the layer's neurons
            n_cores = min(cores_per_layer, units) if isinstance(cores_per_layer, int) and cores_per_layer >= 1 else cores_per_layer
        wiring.append((srcs, act.name if act else op.name))
        if act:
            alias[act.name] = act.name
        if not isinstance(op, Dense):
            layers.append(map_shaped(op, act, cur, shapes[op.input], n_cores, k, lanes))
            k += 1
            continue
        if not isinstance(n_cores, int) or not 1 <= n_cores <= op.n_out:
            raise ConfigError(f"cores for layer '{op.name}' must be in 1..{op.n_out} (its neurons), not {n_cores}")
        bins, _ = _pack(op, n_cores, lanes)
        cores = [Core(f"l{k}c{c}", k, sorted(b)) for c, b in enumerate(bins)]
        for c in cores:
            c.program = _program(op, c.neurons, lanes)
        layers.append(Layer(op.name, op, act, cur, cores))
        k += 1
    if not layers:
        raise UnsupportedOpError("identity", graph.name, ["a graph with at least one layer"], "the moldable generator")
    if cores_per_layer and isinstance(cores_per_layer, list) and len(cores_per_layer) != k:
        raise ConfigError(f"cores per layer must list {k} values, not {len(cores_per_layer)}")
    return Network(layers, lanes, wiring, graph.input.name, wire(graph.ops[-1].name))


def simulate_isa(net: Network, x_raw: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Execute every core's program, instruction by instruction, on each sample; return outputs and cycle counts."""
    values = {net.source: np.asarray(x_raw, dtype=np.int64)}
    for layer, (srcs, dst) in zip(net.layers, net.wiring):
        x = values[srcs[0]]
        if not isinstance(layer, Layer):  # units run the golden kernels, shaped layers their pixel loop
            values[dst] = layer.run([values[s] for s in srcs]) if isinstance(layer, UnitLayer) else layer.run(x)
            continue
        d, acc_t = layer.dense, layer.dense.accum_type
        shift = acc_t.frac_bits - (layer.x_type.frac_bits + d.weight_type.frac_bits)
        bias = acc_t.requantize(d.bias, d.bias_type.frac_bits)
        y = np.zeros((len(x), d.n_out), dtype=np.int64)
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
        values[dst] = y
    return values[net.output], {"latency": net.latency, "ii": net.ii}

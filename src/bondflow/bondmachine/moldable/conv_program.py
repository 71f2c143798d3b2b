"""Convolution, pooling and upsampling as moldable programs: one output position's program, repeated by a pixel loop."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError
from ...ir.ops import Activation, Dense
from ...ir.tensor_ops import Conv, Pool, Upsample
from ...ir.types import FixedType
from .program import Core, Instr, _pack, _program

__all__ = ["Geometry", "ShapedLayer", "PIPELINE_FILL", "shaped_cycles", "map_shaped"]

#: A shaped core computes its input address in a stage of its own, one cycle between fetch and execute.
PIPELINE_FILL = 1


@dataclass(frozen=True)
class Geometry:
    """Where each output position's window lies in the input image; 1-D sequences are images one row high."""

    in_hw: tuple[int, int]
    channels: int  # input channels
    out_hw: tuple[int, int]
    window: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int]  # before: top, left (the padding after only shows as positions outside the image)
    repeat: tuple[int, int] = (1, 1)  # upsampling: output rows/columns per input row/column (window 1x1, stride 1)

    @classmethod
    def of(cls, op: Conv | Pool | Upsample, in_shape: tuple[int, ...]) -> "Geometry":
        if isinstance(op, Upsample):
            size = op.size if len(op.size) == 2 else (1,) + op.size
            hw = tuple(in_shape[:-1]) if len(in_shape) == 3 else (1,) + tuple(in_shape[:-1])
            return cls(hw, int(in_shape[-1]), (hw[0] * size[0], hw[1] * size[1]), (1, 1), (1, 1), (0, 0), size)
        if isinstance(op, Conv):
            win, strides, pads = op.kernel, op.strides, op.pads
        else:
            win = op.window(in_shape)
            strides = tuple(s if p else n for s, p, n in zip(op.strides, op.pool, in_shape[:-1]))
            pads = op.pads
        out = op.out_shape(in_shape)
        out_sp = out[:-1] if len(out) == len(in_shape) else (1,) * len(win)  # global pooling: one position
        lift = (lambda t, one: tuple(t)) if len(win) == 2 else (lambda t, one: (one,) + tuple(t))
        return cls(lift(in_shape[:-1], 1), int(in_shape[-1]), lift(out_sp, 1), lift(win, 1), lift(strides, 1),
                   lift((p[0] for p in pads), 0))

    @property
    def positions(self) -> int:
        return self.out_hw[0] * self.out_hw[1]

    @property
    def padded(self) -> bool:
        """Whether some window element of some position lies outside the image."""
        return any(not self.inside(p, a) for p in range(self.positions)
                   for a in range(self.window[0] * self.window[1] * self.channels))

    def origin(self, p: int) -> tuple[int, int]:
        """Input row and column of the window's first element at output position ``p`` (row-major)."""
        oy, ox = divmod(p, self.out_hw[1])
        oy, ox = oy // self.repeat[0], ox // self.repeat[1]
        return oy * self.strides[0] - self.pads[0], ox * self.strides[1] - self.pads[1]

    def split(self, a: int) -> tuple[int, int, int]:
        """Patch index ``a`` (kernel positions, then channels: the order of ``Conv.as_dense``) -> (ky, kx, c)."""
        k, c = divmod(a, self.channels)
        ky, kx = divmod(k, self.window[1])
        return ky, kx, c

    def offset(self, a: int) -> int:
        """Flat input index of patch element ``a`` relative to the window origin's flat index."""
        ky, kx, c = self.split(a)
        return (ky * self.in_hw[1] + kx) * self.channels + c

    def inside(self, p: int, a: int) -> bool:
        (y0, x0), (ky, kx, _) = self.origin(p), self.split(a)
        return 0 <= y0 + ky < self.in_hw[0] and 0 <= x0 + kx < self.in_hw[1]

    def address(self, p: int, a: int) -> int | None:
        """Flat (channels-last, row-major) input index patch element ``a`` reads at position ``p``; None in the padding."""
        if not self.inside(p, a):
            return None
        y0, x0 = self.origin(p)
        return (y0 * self.in_hw[1] + x0) * self.channels + self.offset(a)

    def base(self, p: int) -> int:
        """Flat index of the window origin (negative or aliased in the padding; only used with ``inside``)."""
        y0, x0 = self.origin(p)
        return (y0 * self.in_hw[1] + x0) * self.channels


@dataclass
class ShapedLayer:
    """A Conv (+ activation), Pool or Upsample layer: every core runs its program once per output position."""

    name: str
    op: Conv | Pool | Upsample
    act: Activation | None
    x_type: FixedType
    geom: Geometry
    cores: list[Core]  # a core's neurons are its output channels

    @property
    def mode(self) -> str:
        """Core datapath: multiply-accumulate (conv), running maximum or exact sum (pooling)."""
        if isinstance(self.op, Conv):
            return "mac"
        if isinstance(self.op, Upsample):
            return "copy"  # a one-element window: load it, write it out
        return "max" if self.op.function == "max" else "sum"

    @property
    def dense(self) -> Dense | None:
        return self.op.as_dense() if isinstance(self.op, Conv) else None

    @property
    def channels_out(self) -> int:
        return self.op.c_out if isinstance(self.op, Conv) else self.geom.channels

    @property
    def window_values(self) -> int:
        return self.geom.window[0] * self.geom.window[1]

    @property
    def acc_type(self) -> FixedType:
        """The accumulator: the conv's own; max keeps the input type; a sum of N = 2^k values has k more bits."""
        if isinstance(self.op, Conv):
            return self.op.accum_type
        if self.mode in ("max", "copy"):
            return self.x_type
        k = self.window_values.bit_length() - 1
        return FixedType(self.x_type.width + k, self.x_type.int_bits + k, signed=self.x_type.signed)

    @property
    def acc_frac(self) -> int:
        """Fraction bits the cast reads the accumulator with (the mean of 2^k values: k more than the sum's)."""
        if self.mode == "sum":
            return self.x_type.frac_bits + self.window_values.bit_length() - 1
        return self.acc_type.frac_bits

    @property
    def result_type(self) -> FixedType:
        return (self.act or self.op).result_type

    @property
    def n(self) -> int:
        """Output values per sample (all positions, all channels)."""
        return self.geom.positions * self.channels_out

    @property
    def n_in(self) -> int:
        return self.geom.in_hw[0] * self.geom.in_hw[1] * self.geom.channels

    @property
    def program_length(self) -> int:
        return max(len(c.program) for c in self.cores)

    @property
    def cycles(self) -> int:
        return self.geom.positions * self.program_length + PIPELINE_FILL

    def to_json_dict(self) -> dict[str, Any]:
        kind = self.op.kind if self.mode in ("mac", "copy") else f"{self.op.function} pool"
        return {"name": self.name, "kind": kind,
                "n_in": self.n_in, "n_out": self.n, "x_type": str(self.x_type), "accum_type": str(self.acc_type),
                "result_type": str(self.result_type), "cycles": self.cycles,
                "pixel_loop": {"positions": self.geom.positions, "in_hw": list(self.geom.in_hw),
                               "channels": self.geom.channels, "out_hw": list(self.geom.out_hw),
                               "window": list(self.geom.window), "strides": list(self.geom.strides),
                               "pads_before": list(self.geom.pads), "repeat": list(self.geom.repeat)},
                **({"weight_type": str(self.op.weight_type)} if isinstance(self.op, Conv) else {}),
                "cores": [{"name": c.name, "neurons": c.neurons, "opcodes": c.opcodes, "program_length": len(c.program),
                           "program": [asdict(i) for i in c.program]} for c in self.cores]}

    def _cast(self, acc: np.ndarray) -> np.ndarray:
        v = self.op.result_type.requantize(acc, self.acc_frac)
        if self.act is not None:
            v = self.act.result_type.requantize(np.maximum(v, 0) if self.act.function == "relu" else v,
                                                self.op.result_type.frac_bits)
        return v

    def run(self, x: np.ndarray) -> np.ndarray:
        """Execute every core's program at every position, instruction by instruction (the ISA model)."""
        g, acc_t = self.geom, self.acc_type
        fill = self.x_type.min_raw if self.mode == "max" else 0
        y = np.zeros((len(x), self.n), dtype=np.int64)
        if self.mode == "mac":
            d = self.dense
            shift = acc_t.frac_bits - (self.x_type.frac_bits + d.weight_type.frac_bits)
            bias = acc_t.requantize(d.bias, d.bias_type.frac_bits)
        for core in self.cores:
            for p in range(g.positions):
                acc = np.zeros(len(x), dtype=np.int64)
                for ins in core.program:
                    j = core.neurons[ins.n]
                    xs = [x[:, adr] if (adr := g.address(p, a)) is not None else np.full(len(x), fill) for a in ins.a]
                    if self.mode == "mac":
                        prod = sum((xv * w) << shift for xv, w in zip(xs, ins.w))
                        total = np.full(len(x), bias[j]) if ins.op == "BIASO" else \
                            bias[j] + prod if ins.op in ("MACB", "MACBO") else acc + prod
                    elif ins.op in ("LD", "LDO"):
                        total = xs[0]
                    else:
                        total = np.maximum(acc, xs[0]) if self.mode == "max" else acc + xs[0]
                    acc = acc_t.requantize(total, acc_t.frac_bits)  # wraps like the RTL register
                    if ins.op.endswith("O"):
                        y[:, p * self.channels_out + j] = self._cast(acc)
        return y


def _pool_program(window_values: int, channels: int, neurons: list[int], mode: str) -> list[Instr]:
    """Per owned channel: load the first window element, combine the rest, cast with the last."""
    comb = "MAX" if mode == "max" else "ADD"
    prog = []
    for slot, c in enumerate(neurons):
        for k in range(window_values):
            first, last = k == 0, k == window_values - 1
            op = "LDO" if first and last else "LD" if first else f"{comb}O" if last else comb
            prog.append(Instr(op, (k * channels + c,), (1,), slot))
    return prog


def shaped_cycles(op: Conv | Pool | Upsample, in_shape: tuple[int, ...], n_cores: int, lanes: int) -> int:
    """Cycles of the layer with ``n_cores`` cores (what ``auto`` core sizing compares)."""
    g = Geometry.of(op, in_shape)
    if isinstance(op, Conv):
        longest = _pack(op.as_dense(), n_cores, lanes)[1]
    else:
        longest = -(-g.channels // n_cores) * g.window[0] * g.window[1]
    return g.positions * longest + PIPELINE_FILL


def map_shaped(op: Conv | Pool | Upsample, act: Activation | None, x_type: FixedType, in_shape: tuple[int, ...], n_cores: int,
               k: int, lanes: int) -> ShapedLayer:
    """Split the layer's output channels over ``n_cores`` cores; each core's program covers one output position.

    Conv cores run the Dense of a patch (``op.as_dense()``) for their channels, pruned weights skipped; pool cores
    have one lane and one instruction per window element and channel; upsampling cores copy one element per channel.
    """
    g = Geometry.of(op, in_shape)
    units = op.c_out if isinstance(op, Conv) else g.channels
    if not isinstance(n_cores, int) or isinstance(n_cores, bool) or not 1 <= n_cores <= units:
        raise ConfigError(f"cores for layer '{op.name}' must be in 1..{units} (its output channels), not {n_cores}")
    if isinstance(op, Conv):
        bins, _ = _pack(op.as_dense(), n_cores, lanes)
    else:  # every channel costs the same: deal them out
        bins = [list(range(c, units, n_cores)) for c in range(n_cores)]
    cores = [Core(f"l{k}c{c}", k, sorted(b)) for c, b in enumerate(bins)]
    layer = ShapedLayer(op.name, op, act, x_type, g, cores)
    for c in cores:
        c.program = _program(op.as_dense(), c.neurons, lanes) if isinstance(op, Conv) else \
            _pool_program(layer.window_values, g.channels, c.neurons, layer.mode)
    return layer

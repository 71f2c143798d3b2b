"""Golden-model kernels of the shaped ops: convolution as the Dense of every patch, exact max and power-of-two mean pooling, upsampling."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .ops import Dense, Op
from .tensor_ops import Conv, Pool, Upsample
from .types import FixedType

__all__ = ["conv_kernel", "pool_kernel", "upsample_kernel", "patches"]


def patches(x: np.ndarray, window: tuple[int, ...], strides: tuple[int, ...], pads: tuple[tuple[int, int], ...],
            fill: int = 0) -> np.ndarray:
    """[batch, *spatial, c] -> [batch, *out, *window, c]: every window position, zero (or ``fill``) padded."""
    nd = len(window)
    pad = ((0, 0),) + tuple(pads) + ((0, 0),)
    if any(a or b for a, b in pads):
        x = np.pad(x, pad, constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=tuple(range(1, nd + 1)))
    # view: [batch, *positions, c, *window]; take every stride-th position, move the window before channels.
    sl = (slice(None),) + tuple(slice(None, None, s) for s in strides)
    view = view[sl]
    order = (0,) + tuple(range(1, nd + 1)) + tuple(range(nd + 2, 2 * nd + 2)) + (nd + 1,)
    return view.transpose(order)


def conv_kernel(dense_kernel: Callable[[Dense, np.ndarray, FixedType], np.ndarray], shapes: dict[str, tuple[int, ...]]):
    """The conv kernel: patches through the Dense kernel, so both share one arithmetic (and its type rules)."""
    def run(op: Op, x: np.ndarray, xt: FixedType) -> np.ndarray:
        assert isinstance(op, Conv)
        in_shape = shapes[op.input]
        xs = x.reshape((x.shape[0],) + in_shape)
        p = patches(xs, op.kernel, op.strides, op.pads)
        out_sp = p.shape[1:1 + len(op.kernel)]
        flat = p.reshape(-1, int(np.prod(op.kernel)) * op.c_in)
        y = dense_kernel(op.as_dense(), flat, xt)
        return y.reshape((x.shape[0],) + out_sp + (op.c_out,)).reshape(x.shape[0], -1)
    return run


def pool_kernel(shapes: dict[str, tuple[int, ...]]):
    """Max: the largest raw value (padding never wins); average: exact sum, shift by log2(N), cast."""
    def run(op: Op, x: np.ndarray, xt: FixedType) -> np.ndarray:
        assert isinstance(op, Pool)
        in_shape = shapes[op.input]
        win = op.window(in_shape)
        strides = tuple(s if p else n for s, p, n in zip(op.strides, op.pool, in_shape[:-1]))
        xs = x.reshape((x.shape[0],) + in_shape)
        axes = tuple(range(1 + len(win), 1 + 2 * len(win)))
        if op.function == "max":
            p = patches(xs, win, strides, op.pads, fill=xt.min_raw)
            return op.result_type.requantize(p.max(axis=axes), xt.frac_bits).reshape(x.shape[0], -1)
        p = patches(xs, win, strides, op.pads)
        n = int(np.prod(win))
        total = p.sum(axis=axes)  # exact; the mean has log2(n) more fraction bits
        return op.result_type.requantize(total, xt.frac_bits + n.bit_length() - 1).reshape(x.shape[0], -1)
    return run


def upsample_kernel(shapes: dict[str, tuple[int, ...]]):
    """Every pixel repeated along each spatial axis (nearest neighbour), then the op's cast."""
    def run(op: Op, x: np.ndarray, xt: FixedType) -> np.ndarray:
        assert isinstance(op, Upsample)
        y = x.reshape((x.shape[0],) + shapes[op.input])
        for axis, factor in enumerate(op.size, start=1):
            y = np.repeat(y, factor, axis=axis)
        return op.result_type.requantize(y, xt.frac_bits).reshape(x.shape[0], -1)
    return run

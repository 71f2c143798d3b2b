"""Ops over tensors with a spatial shape (channels last): convolution and pooling, 1-D or 2-D."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import GraphValidationError, QuantizationError
from .ops import OP_KINDS, Dense, Op, frozen_array
from .types import FixedType

__all__ = ["Conv", "Pool", "conv_out_len", "same_pads", "pool_result_type"]


def conv_out_len(n: int, k: int, stride: int, pad: tuple[int, int]) -> int:
    return (n + pad[0] + pad[1] - k) // stride + 1


def same_pads(n: int, k: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding: the output has ceil(n / stride) positions, the extra pad at the end."""
    out = -(-n // stride)
    total = max((out - 1) * stride + k - n, 0)
    return total // 2, total - total // 2


def pool_result_type(function: str, xt: FixedType, window_values: int) -> FixedType:
    """Max keeps its input type; the mean of N = 2^k values is the exact sum with k more fraction bits."""
    if function == "max":
        return xt
    return FixedType(xt.width + window_values.bit_length() - 1, xt.int_bits, signed=xt.signed)


def _spatial_check(name: str, kind: str, in_shape: tuple[int, ...], kernel: tuple[int, ...],
                   strides: tuple[int, ...], pads: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    nd = len(kernel)
    if len(in_shape) != nd + 1:
        raise GraphValidationError(f"{kind} '{name}' expects a {nd}-D image with channels ({nd + 1} dims), not shape {in_shape}")
    if len(strides) != nd or len(pads) != nd or min(strides) < 1:
        raise GraphValidationError(f"{kind} '{name}' must have {nd} strides >= 1 and {nd} pads, not {strides} / {pads}")
    out = tuple(conv_out_len(n, k, s, p) for n, k, s, p in zip(in_shape[:-1], kernel, strides, pads))
    if min(out) < 1:
        raise GraphValidationError(f"{kind} '{name}' kernel {kernel} must fit the input {in_shape[:-1]} (with padding {pads}), not exceed it")
    return out


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """``y = requant(bias + sum_{k, c} x[pos + k, c] * W[k, c, :])`` per output position: a Dense over each patch.

    Weight raw, shape ``(*kernel, c_in, c_out)``; zero padding ``pads`` (before, after) per spatial dim; the
    sums follow the same type rules as Dense (exact accumulator unless a narrower one is declared). ``groups`` > 1
    (depthwise, grouped) keeps the full weight with every cross-group weight zero, so the arithmetic is one rule;
    it says which zeros are structural, for MACs, parameters and export.
    """

    weight: np.ndarray = field(default_factory=lambda: frozen_array(np.zeros((1, 1, 1))))
    weight_type: FixedType = FixedType(8, 1)
    bias: np.ndarray = field(default_factory=lambda: frozen_array(np.zeros(1)))
    bias_type: FixedType = FixedType(8, 1)
    accum_type: FixedType = FixedType(32, 16)
    strides: tuple[int, ...] = (1,)
    pads: tuple[tuple[int, int], ...] = ((0, 0),)
    groups: int = 1
    kind: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", frozen_array(self.weight))
        object.__setattr__(self, "bias", frozen_array(self.bias))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        object.__setattr__(self, "pads", tuple((int(a), int(b)) for a, b in self.pads))
        if self.weight.ndim not in (3, 4):
            raise GraphValidationError(f"conv '{self.name}' weight must be (*kernel, c_in, c_out) for 1-D or 2-D, not shape {self.weight.shape}")
        if self.bias.shape != (self.weight.shape[-1],):
            raise GraphValidationError(f"conv '{self.name}' bias must have shape ({self.weight.shape[-1]},), not {self.bias.shape}")
        for what, arr, t in (("weight", self.weight, self.weight_type), ("bias", self.bias, self.bias_type)):
            if arr.size and (arr.min() < t.min_raw or arr.max() > t.max_raw):
                raise QuantizationError(f"conv '{self.name}' {what}s must fit {t}, not exceed it")
        object.__setattr__(self, "groups", int(self.groups))
        if self.groups < 1 or self.c_in % self.groups or self.c_out % self.groups:
            raise GraphValidationError(f"conv '{self.name}' groups must divide its {self.c_in} input and {self.c_out} output "
                                       f"channels, not be {self.groups}")
        if self.groups > 1 and np.count_nonzero(self.weight * ~self.group_mask()):
            raise GraphValidationError(f"conv '{self.name}' with {self.groups} groups must have zero weights between groups")

    @property
    def kernel(self) -> tuple[int, ...]:
        return tuple(int(k) for k in self.weight.shape[:-2])

    @property
    def c_in(self) -> int:
        return int(self.weight.shape[-2])

    @property
    def c_out(self) -> int:
        return int(self.weight.shape[-1])

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        out = _spatial_check(self.name, "conv", in_shape, self.kernel, self.strides, self.pads)
        if in_shape[-1] != self.c_in:
            raise GraphValidationError(f"conv '{self.name}' expects {self.c_in} input channels, not {in_shape[-1]}")
        return out + (self.c_out,)

    def out_features(self, in_features: int) -> int:
        raise GraphValidationError(f"conv '{self.name}' needs a shaped input (an image), not {in_features} flat features")

    def as_dense(self) -> Dense:
        """The Dense every output position computes, over its flattened patch (kernel positions, then channels)."""
        return Dense(name=self.name, input=self.input, result_type=self.result_type,
                     weight=self.weight.reshape(-1, self.c_out), weight_type=self.weight_type, bias=self.bias,
                     bias_type=self.bias_type, accum_type=self.accum_type)

    def group_mask(self) -> np.ndarray:
        """True where a weight links an input channel to an output channel of the same group."""
        per_in, per_out = self.c_in // self.groups, self.c_out // self.groups
        same = (np.arange(self.c_in)[:, None] // per_in) == (np.arange(self.c_out)[None, :] // per_out)
        return np.broadcast_to(same, self.weight.shape)

    @property
    def weights(self) -> int:
        """Weights the layer really has (a grouped layer's cross-group zeros are not weights)."""
        return int(self.weight.size) // self.groups

    def macs_for(self, out_shape: tuple[int, ...]) -> int:
        return int(np.prod(out_shape[:-1])) * self.weights

    def nonzero(self) -> int:
        return int(np.count_nonzero(self.weight))

    def params(self) -> int:
        return self.weights + int(self.bias.size)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(weight=self.weight.tolist(), weight_type=str(self.weight_type), bias=self.bias.tolist(),
                 bias_type=str(self.bias_type), accum_type=str(self.accum_type), strides=list(self.strides),
                 pads=[list(p) for p in self.pads])
        if self.groups > 1:  # absent for ordinary convs: their digests stay as they were
            d["groups"] = self.groups
        return d


@dataclass(frozen=True, eq=False)
class Pool(Op):
    """Max or average pooling over windows (``pool``; ``(0,)*n`` = the whole image, global pooling).

    Max is exact; average divides an exact sum by a power-of-two window size (exact with log2(N) more
    fraction bits) and then casts to ``result_type``; other window sizes are not fixed point and refused.
    """

    function: str = "max"
    pool: tuple[int, ...] = (2,)
    strides: tuple[int, ...] = (2,)
    pads: tuple[tuple[int, int], ...] = ((0, 0),)
    kind: ClassVar[str] = "pool"
    FUNCTIONS: ClassVar[tuple[str, ...]] = ("max", "average")

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool", tuple(int(p) for p in self.pool))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        object.__setattr__(self, "pads", tuple((int(a), int(b)) for a, b in self.pads))
        if self.function not in self.FUNCTIONS:
            raise GraphValidationError(f"pool '{self.name}' must be one of {self.FUNCTIONS}, not {self.function!r}")

    def window(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The window, with global pooling (pool 0) resolved to the whole image."""
        return tuple(n if p == 0 else p for p, n in zip(self.pool, in_shape[:-1]))

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        win = self.window(in_shape)
        strides = tuple(s if p else n for s, p, n in zip(self.strides, self.pool, in_shape[:-1]))
        out = _spatial_check(self.name, "pool", in_shape, win, strides, self.pads)
        n = int(np.prod(win))
        if self.function == "average" and n & (n - 1):
            raise GraphValidationError(f"average pool '{self.name}' window must hold a power-of-two number of values "
                                       f"(an exact fixed-point mean), not {n} ({'x'.join(map(str, win))})")
        if self.function == "average" and any(a or b for a, b in self.pads):
            raise GraphValidationError(f"average pool '{self.name}' must not pad (padded means are not exact), not {self.pads}")
        if not any(self.pool):  # global pooling leaves one value per channel: a flat vector, as Keras gives it
            return (in_shape[-1],)
        return out + (in_shape[-1],)

    def out_features(self, in_features: int) -> int:
        raise GraphValidationError(f"pool '{self.name}' needs a shaped input (an image), not {in_features} flat features")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(function=self.function, pool=list(self.pool), strides=list(self.strides), pads=[list(p) for p in self.pads])
        return d


@dataclass(frozen=True, eq=False)
class Upsample(Op):
    """Nearest-neighbour upsampling: every pixel repeated ``size[d]`` times along spatial dimension ``d``.

    Copies only, so exact: ``result_type`` is the input's (a different one casts, as any op's result does).
    """

    size: tuple[int, ...] = (2,)
    kind: ClassVar[str] = "upsample"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        if not self.size or min(self.size) < 1:
            raise GraphValidationError(f"upsample '{self.name}' size must be one or two factors >= 1, not {self.size}")

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(in_shape) != len(self.size) + 1:
            raise GraphValidationError(f"upsample '{self.name}' with {len(self.size)} factors needs a "
                                       f"{len(self.size)}-D image with channels, not shape {tuple(in_shape)}")
        return tuple(n * s for n, s in zip(in_shape[:-1], self.size)) + (in_shape[-1],)

    def out_features(self, in_features: int) -> int:
        raise GraphValidationError(f"upsample '{self.name}' needs a shaped input (an image), not {in_features} flat features")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(size=list(self.size))
        return d


OP_KINDS.update({Conv.kind: Conv, Pool.kind: Pool, Upsample.kind: Upsample})

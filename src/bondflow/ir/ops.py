"""The IR's operations: frozen records of integer constants and the fixed-point type of every value."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import GraphValidationError, QuantizationError
from .types import FixedType

__all__ = ["Op", "Dense", "Activation", "ParamRelu", "PRelu", "Softmax", "LookupOp", "TableActivation", "Sigmoid", "Tanh", "ExpLinear", "Elu", "Selu",
           "Flatten", "Threshold", "OP_KINDS", "frozen_array"]


def frozen_array(a: Any) -> np.ndarray:
    """A read-only int64 copy, so constants held by frozen ops cannot be mutated behind their digest."""
    arr = np.array(a, dtype=np.int64, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Op:
    """Base of all ops: a named node reading one tensor and producing one tensor of ``result_type``."""

    name: str
    input: str
    result_type: FixedType
    kind: ClassVar[str] = "op"
    #: Whether the op maps each value on its own (so an image stays an image); others need a flat input.
    elementwise: ClassVar[bool] = False

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every tensor the op reads (one for all but merges)."""
        return (self.input,)

    def infer_shape(self, in_shapes: "list[tuple[int, ...]] | tuple[tuple[int, ...], ...]") -> tuple[int, ...]:
        """Per-sample output shape from the shapes of ``inputs`` (in order)."""
        return self.out_shape(tuple(in_shapes[0]))

    def out_features(self, in_features: int) -> int:
        return in_features

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape; a shaped input (image) is kept by element-wise ops, refused by the others."""
        n = self.out_features(int(np.prod(in_shape)))
        if len(in_shape) > 1:
            if self.elementwise:
                return tuple(in_shape)
            raise GraphValidationError(f"{self.kind} '{self.name}' needs a flat input (add a Flatten), not shape {tuple(in_shape)}")
        return (n,)

    def macs(self) -> int:
        return 0

    def params(self) -> int:
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "input": self.input, "result_type": str(self.result_type)}


@dataclass(frozen=True, eq=False)
class Dense(Op):
    """``y = requant(bias + x @ W)``: products exact, sums in ``accum_type`` in input order (as hls4ml)."""

    weight: np.ndarray = field(default_factory=lambda: frozen_array(np.zeros((1, 1))))  # raw, [n_in, n_out]
    weight_type: FixedType = FixedType(8, 1)
    bias: np.ndarray = field(default_factory=lambda: frozen_array(np.zeros(1)))  # raw, [n_out]
    bias_type: FixedType = FixedType(8, 1)
    accum_type: FixedType = FixedType(32, 16)
    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", frozen_array(self.weight))
        object.__setattr__(self, "bias", frozen_array(self.bias))
        if self.weight.ndim != 2:
            raise GraphValidationError(f"dense '{self.name}' weight must be 2-D [n_in, n_out], not shape {self.weight.shape}")
        if self.bias.shape != (self.weight.shape[1],):
            raise GraphValidationError(
                f"dense '{self.name}' bias must have shape ({self.weight.shape[1]},), not {self.bias.shape}")
        for what, arr, t in (("weight", self.weight, self.weight_type), ("bias", self.bias, self.bias_type)):
            if arr.size and (arr.min() < t.min_raw or arr.max() > t.max_raw):
                bad = float(t.to_float(arr.max() if arr.max() > t.max_raw else arr.min()))
                raise QuantizationError(
                    f"dense '{self.name}' {what}s must fit {t} (range {t.min_value}..{t.max_value}), not {bad}")

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[1])

    def out_features(self, in_features: int) -> int:
        if in_features != self.n_in:
            raise GraphValidationError(f"dense '{self.name}' expects {self.n_in} inputs, not {in_features}")
        return self.n_out

    @property
    def weights(self) -> int:
        return int(self.weight.size)

    def macs(self) -> int:
        return int(self.weight.size)

    def nonzero(self) -> int:
        return int(np.count_nonzero(self.weight))

    def params(self) -> int:
        return int(self.weight.size + self.bias.size)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(weight=self.weight.tolist(), weight_type=str(self.weight_type), bias=self.bias.tolist(),
                 bias_type=str(self.bias_type), accum_type=str(self.accum_type))
        return d


@dataclass(frozen=True, eq=False)
class Activation(Op):
    """Element-wise ``relu`` (``max(x, 0)``) or ``linear``, then a cast to ``result_type``."""

    function: str = "linear"
    kind: ClassVar[str] = "activation"
    elementwise: ClassVar[bool] = True
    FUNCTIONS: ClassVar[tuple[str, ...]] = ("linear", "relu")

    def __post_init__(self) -> None:
        if self.function not in self.FUNCTIONS:
            raise GraphValidationError(f"activation '{self.name}' must be one of {self.FUNCTIONS}, not {self.function!r}")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["function"] = self.function
        return d


@dataclass(frozen=True, eq=False)
class ParamRelu(Op):
    """Bounded and/or leaky ReLU, exactly: ``y = cast(x > max_value ? max_value : x >= 0 ? x : alpha * x)``.

    ``max_value`` (None: unbounded) is any finite float >= 0 (floats are dyadic, so the clamp is exact on any
    input grid: ``x > m`` is ``x_raw > floor(m * 2**frac)``; the clamped value is ``m`` cast to ``result_type``,
    as hls4ml's ``relu_max`` casts its bound). ``alpha`` must be a value of ``alpha_type`` (hls4ml's
    ``param_t``): ``alpha * x`` is the exact fixed-point product, then the one cast, as hls4ml's ``leaky_relu``.
    """

    max_value: float | None = None
    alpha: float = 0.0
    alpha_type: FixedType | None = None
    kind: ClassVar[str] = "param_relu"
    elementwise: ClassVar[bool] = True
    #: Bound on max_value: its cast to any result type then stays within int64 raw values.
    MAX_BOUND: ClassVar[float] = 2.0 ** 31

    def __post_init__(self) -> None:
        if self.max_value is not None:
            m = float(self.max_value)
            if not (0.0 <= m <= self.MAX_BOUND):  # also refuses NaN
                raise GraphValidationError(f"param_relu '{self.name}' max_value must lie in [0, 2^31], not {self.max_value!r}")
            object.__setattr__(self, "max_value", m)
        object.__setattr__(self, "alpha", float(self.alpha))
        if self.alpha != 0.0:
            t = self.alpha_type
            if t is None or t.frac_bits < 0 or not t.representable(self.alpha):
                raise QuantizationError(f"param_relu '{self.name}' alpha must be a value of its alpha_type, not {self.alpha!r} "
                                        f"in {t}")
        elif self.alpha_type is not None:
            object.__setattr__(self, "alpha_type", None)  # no slope, no type: one spelling per op (stable digests)
        if self.max_value is None and self.alpha == 0.0:
            raise GraphValidationError(f"param_relu '{self.name}' must set max_value or alpha (else use activation relu), not neither")

    @property
    def alpha_raw(self) -> int:
        return int(self.alpha_type.quantize(self.alpha)) if self.alpha_type is not None else 0

    def threshold_raw(self, xt: FixedType) -> int | None:
        """The clamp compares ``x_raw > threshold``: floor(max_value * 2**frac), None when no input exceeds it."""
        if self.max_value is None:
            return None
        thr = math.floor(math.ldexp(self.max_value, xt.frac_bits))
        return thr if thr < xt.max_raw else None

    def max_raw(self) -> int:
        """``max_value`` cast to ``result_type`` (its rounding and overflow), the clamped output."""
        return int(self.result_type.quantize(self.max_value or 0.0))

    @property
    def function(self) -> str:
        """A readable name: relu6, relu_max(1.5), leaky_relu(0.125), or both."""
        parts = []
        if self.max_value is not None:
            parts.append(f"relu{int(self.max_value)}" if self.max_value in (1.0, 6.0) else f"relu_max({self.max_value:g})")
        if self.alpha:
            parts.append(f"leaky_relu({self.alpha:g})")
        return "+".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.max_value is not None:
            d["max_value"] = self.max_value
        if self.alpha:
            d.update(alpha=self.alpha, alpha_type=str(self.alpha_type))
        return d


@dataclass(frozen=True, eq=False)
class PRelu(Op):
    """PReLU, a learned slope per element: ``y = cast(x >= 0 ? x : alpha[k] * x)``, the product exact (hls4ml's prelu).

    ``alpha`` holds raw values of ``alpha_type`` (hls4ml's ``param_t``): one per element of the input, one per channel
    of an image (its last axis, the same slope on every pixel), or one for all.
    """

    alpha: np.ndarray = field(default_factory=lambda: frozen_array([0]))  # raw, [n], [channels] or [1]
    alpha_type: FixedType = FixedType(18, 1)
    kind: ClassVar[str] = "prelu"
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", frozen_array(self.alpha))
        t = self.alpha_type
        if self.alpha.ndim != 1 or self.alpha.size < 1:
            raise GraphValidationError(f"prelu '{self.name}' slopes must be 1-D and not empty, not shape {self.alpha.shape}")
        if t.frac_bits < 0 or self.alpha.min() < t.min_raw or self.alpha.max() > t.max_raw:
            raise QuantizationError(f"prelu '{self.name}' slopes must be raw values of {t}, not {self.alpha.min()}..{self.alpha.max()}")

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        n = int(np.prod(in_shape))
        if self.alpha.size not in (1, n, in_shape[-1]):
            raise GraphValidationError(f"prelu '{self.name}' must have 1, {in_shape[-1]} (per channel) or {n} slopes, "
                                       f"not {self.alpha.size}")
        return tuple(in_shape)

    def slopes(self, n: int) -> np.ndarray:
        """The raw slope of each of ``n`` elements laid out channels last (per-channel slopes repeat every pixel)."""
        return np.resize(self.alpha, n)

    def params(self) -> int:
        return int(self.alpha.size)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(alpha=self.alpha.tolist(), alpha_type=str(self.alpha_type))
        return d


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    """hls4ml's table-based softmax (``stable`` by default, as hls4ml 1.3; or ``latency``) with its exp and inverse tables."""

    table_size: int = 1024
    exp_table_type: FixedType = FixedType(18, 8, rounding="RND", overflow="SAT")
    inv_table_type: FixedType = FixedType(18, 8, rounding="RND", overflow="SAT")
    implementation: str = "stable"
    kind: ClassVar[str] = "softmax"
    IMPLEMENTATIONS: ClassVar[tuple[str, ...]] = ("stable", "latency")

    def __post_init__(self) -> None:
        if self.implementation not in self.IMPLEMENTATIONS:
            raise GraphValidationError(
                f"softmax '{self.name}' implementation must be one of {self.IMPLEMENTATIONS}, not {self.implementation!r}")
        if self.table_size < 2 or self.table_size & (self.table_size - 1):
            raise GraphValidationError(f"softmax '{self.name}' table size must be a power of two >= 2, not {self.table_size}")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(table_size=self.table_size, exp_table_type=str(self.exp_table_type),
                 inv_table_type=str(self.inv_table_type))
        if self.implementation != "stable":  # only when set, so digests of existing graphs stay the same
            d["implementation"] = self.implementation
        return d


@dataclass(frozen=True, eq=False)
class LookupOp(Op):
    """An element-wise op reading a ``table_size`` table of ``table_type`` values (the base of the two families below)."""

    table_size: int = 1024
    table_type: FixedType = FixedType(18, 8)
    elementwise: ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(table_size=self.table_size, table_type=str(self.table_type))
        return d


@dataclass(frozen=True, eq=False)
class TableActivation(LookupOp):
    """An hls4ml element-wise table activation: inputs in [-half_range, half_range) index a ``table_size`` table
    of ``table_type`` values; outside it the first or last entry (nnet_activation.h's sigmoid and tanh)."""

    #: hls4ml's fixed table range: index = trunc(x * N / (2 * half_range)) + N / 2.
    half_range: ClassVar[int] = 8


@dataclass(frozen=True, eq=False)
class Sigmoid(TableActivation):
    """hls4ml's table-based sigmoid: inputs in [-8, 8) index a ``table_size`` table."""

    kind: ClassVar[str] = "sigmoid"
    half_range: ClassVar[int] = 8


@dataclass(frozen=True, eq=False)
class Tanh(TableActivation):
    """hls4ml's table-based tanh: inputs in [-4, 4) index a ``table_size`` table."""

    kind: ClassVar[str] = "tanh"
    half_range: ClassVar[int] = 4


@dataclass(frozen=True, eq=False)
class ExpLinear(LookupOp):
    """hls4ml's exponential linear units (nnet::elu, nnet::selu): x >= 0 takes a linear branch; x < 0 indexes a
    ``table_size`` table of ``table_type`` values at v = -8 i / N with index min(floor(-x * N / 8), N - 1)."""

    #: hls4ml's fixed table range: [-8, 0).
    RANGE: ClassVar[int] = 8

    def __post_init__(self) -> None:
        if self.table_size < 2:
            raise GraphValidationError(f"{self.kind} '{self.name}' table size must be at least 2, not {self.table_size}")


@dataclass(frozen=True, eq=False)
class Elu(ExpLinear):
    """ELU: y = cast(x) for x >= 0, else cast(alpha * table[i]) with table = e^v - 1 (exact product of the table entry
    and ``alpha``, a value of ``alpha_type``: hls4ml's param_t)."""

    alpha: float = 1.0
    alpha_type: FixedType = FixedType(2, 2)
    kind: ClassVar[str] = "elu"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "alpha", float(self.alpha))
        t = self.alpha_type
        if t.frac_bits < 0 or not t.representable(self.alpha):
            raise QuantizationError(f"elu '{self.name}' alpha must be a value of its alpha_type, not {self.alpha!r} in {t}")

    @property
    def alpha_raw(self) -> int:
        return int(self.alpha_type.quantize(self.alpha))

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(alpha=self.alpha, alpha_type=str(self.alpha_type))
        return d


@dataclass(frozen=True, eq=False)
class Selu(ExpLinear):
    """SELU with Keras's constants: y = cast(lambda * x) for x >= 0 (lambda in hls4ml's ap_ufixed<16,1>), else
    cast(table[i]) with table = lambda * alpha * (e^v - 1)."""

    kind: ClassVar[str] = "selu"
    #: hls4ml's selu_const_t and the double it is assigned (truncated: ap_ufixed's default rounding).
    LAMBDA_TYPE: ClassVar[FixedType] = FixedType(16, 1, signed=False)
    LAMBDA: ClassVar[float] = 1.0507009873554805
    ALPHA: ClassVar[float] = 1.6732632423543772

    @property
    def lambda_raw(self) -> int:
        return int(self.LAMBDA_TYPE.quantize(self.LAMBDA))


@dataclass(frozen=True, eq=False)
class Flatten(Op):
    """Reshape to one dimension; values and type unchanged (samples travel flat, channels last, already)."""

    kind: ClassVar[str] = "flatten"

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(in_shape)),)


@dataclass(frozen=True, eq=False)
class Threshold(Op):
    """FINN's MultiThreshold, in raw integers: ``y[j] = offset + step * #{k : x[j] >= thresholds[j, k]}``.

    ``thresholds`` are raw values of the input's type, one row per feature (or one row for all);
    ``step`` and ``offset`` are raw values of ``result_type``, which must hold every level exactly.
    """

    thresholds: np.ndarray = field(default_factory=lambda: frozen_array(np.zeros((1, 1))))  # raw, [n or 1, K]
    step: int = 1
    offset: int = 0
    kind: ClassVar[str] = "threshold"
    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", frozen_array(self.thresholds))
        object.__setattr__(self, "step", int(self.step))
        object.__setattr__(self, "offset", int(self.offset))
        if self.thresholds.ndim != 2 or self.thresholds.shape[1] < 1:
            raise GraphValidationError(f"threshold '{self.name}' thresholds must be 2-D [n or 1, K >= 1], not shape {self.thresholds.shape}")
        t = self.result_type
        top = self.offset + self.step * self.thresholds.shape[1]
        if not (t.min_raw <= min(self.offset, top) and max(self.offset, top) <= t.max_raw):
            raise QuantizationError(f"threshold '{self.name}' levels must fit {t}, not raw {self.offset}..{top}")

    def out_features(self, in_features: int) -> int:
        if self.thresholds.shape[0] not in (1, in_features):
            raise GraphValidationError(f"threshold '{self.name}' must have 1 or {in_features} rows of thresholds, not {self.thresholds.shape[0]}")
        return in_features

    def params(self) -> int:
        return int(self.thresholds.size)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(thresholds=self.thresholds.tolist(), step=self.step, offset=self.offset)
        return d


OP_KINDS: dict[str, type[Op]] = {c.kind: c for c in (Dense, Activation, ParamRelu, PRelu, Softmax, Sigmoid, Tanh, Elu, Selu, Flatten,
                                                      Threshold)}
_TYPE_FIELDS = ("result_type", "weight_type", "bias_type", "accum_type", "exp_table_type", "inv_table_type", "table_type", "alpha_type")


def op_from_dict(d: dict[str, Any]) -> Op:
    """Inverse of ``Op.to_dict``."""
    try:
        cls = OP_KINDS[d["kind"]]
    except KeyError:
        raise GraphValidationError(f"op kind must be one of {sorted(OP_KINDS)}, not {d.get('kind')!r}") from None
    kwargs = {k: (FixedType.parse(v) if k in _TYPE_FIELDS else v) for k, v in d.items() if k != "kind"}
    return cls(**kwargs)

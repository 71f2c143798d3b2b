"""Small graphs for RTL tests, built in Python (no model files)."""
from __future__ import annotations

import numpy as np

from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.merge import Merge, merge_result_type
from bondflow.ir.ops import Activation, Dense
from bondflow.ir.types import FixedType


def one_layer(seed: int = 0, n_in: int = 6, n_out: int = 4, relu: bool = True) -> Graph:
    rng = np.random.default_rng(seed)
    x = FixedType(8, 3, rounding="RND_CONV", overflow="SAT")
    w = FixedType(6, 1)
    acc = FixedType(8 + 6 + n_in.bit_length() + 1, 3 + 1 + n_in.bit_length() + 1)
    d = Dense(name="fc", input="x", result_type=acc, weight=rng.integers(-32, 32, (n_in, n_out)), weight_type=w,
              bias=rng.integers(-32, 32, n_out), bias_type=w, accum_type=acc)
    ops = [d]
    if relu:
        ops.append(Activation(name="act", input="fc", result_type=FixedType(8, 3, False, "RND_CONV", "SAT"), function="relu"))
    return Graph("ref", TensorSpec("x", n_in, x), tuple(ops))


def _dense(name: str, src: str, n_in: int, n_out: int, rng: np.random.Generator, out: str) -> Dense:
    w = FixedType.parse("fixed<6,1>")
    acc = FixedType(8 + 6 + n_in.bit_length() + 2, 3 + 1 + n_in.bit_length() + 2)
    return Dense(name=name, input=src, result_type=FixedType.parse(out), weight=rng.integers(w.min_raw, w.max_raw + 1, (n_in, n_out)),
                 weight_type=w, bias=rng.integers(w.min_raw, w.max_raw + 1, n_out), bias_type=w, accum_type=acc)


def branchy(seed: int = 3, end_in_merge: bool = False) -> Graph:
    """A skip from the input itself, a long and a short path into a 3-input add of mixed signedness and fraction
    bits, a concatenate that casts (rounds and saturates) each input, and a tensor read by three ops."""
    rng = np.random.default_rng(seed)
    x = TensorSpec("x", 6, FixedType.parse("fixed<8,3,RND_CONV,SAT>"))
    relu = FixedType.parse("ufixed<8,3,RND_CONV,SAT>")
    ops: list = [
        _dense("d1", "x", 6, 6, rng, "fixed<12,5>"),
        Activation(name="a1", input="d1", result_type=relu, function="relu"),
        _dense("d2", "a1", 6, 6, rng, "fixed<10,5,RND,SAT>"),
        Activation(name="a2", input="d2", result_type=FixedType.parse("ufixed<7,4,RND_CONV,SAT>"), function="relu"),
        _dense("d3", "a2", 6, 6, rng, "fixed<11,6>"),
    ]
    types = [ops[4].result_type, relu, x.type]
    ops.append(Merge(name="sum3", inputs=("d3", "a1", "x"), function="add", result_type=merge_result_type("add", types)))
    ops.append(Merge(name="cat", inputs=("sum3", "a1", "d1"), function="concatenate", result_type=FixedType.parse("fixed<9,4,RND,SAT>")))
    if not end_in_merge:
        ops.append(_dense("out", "cat", 18, 4, rng, "fixed<16,8>"))
    else:
        ops.append(_dense("d4", "cat", 18, 6, rng, "fixed<12,6>"))
        ops.append(Merge(name="out", inputs=("d4", "d1"), function="add", result_type=FixedType.parse("fixed<10,6,TRN,WRAP>")))
    return Graph("branchy", x, tuple(ops))

"""Small graphs for RTL tests, built in Python (no model files)."""
from __future__ import annotations

import numpy as np

from bondflow.ir.graph import Graph, TensorSpec
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

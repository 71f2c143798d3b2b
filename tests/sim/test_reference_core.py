"""The reference core's own template: each rounding x overflow cast, unsigned inputs, multi-beat streams, bit-exact in RTL."""
from __future__ import annotations

import numpy as np
import pytest

import bondflow
from bondflow.errors import ConfigError, UnsupportedOpError
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation, Dense
from bondflow.ir.types import FixedType
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate

from simgraphs import one_layer

pytestmark = pytest.mark.sim


def _graph(rounding: str, overflow: str, x_signed: bool = True, act: str | None = None, n_in: int = 5,
           n_out: int = 3, seed: int = 1) -> Graph:
    """A Dense whose result type is much narrower than its exact accumulator, so the cast really rounds and overflows."""
    rng = np.random.default_rng(seed)
    x = FixedType(7, 2, x_signed)
    w = FixedType(5, 1)
    acc = FixedType(7 + (0 if x_signed else 1) + 5 + 4, 2 + 1 + 4 + (0 if x_signed else 1))
    res = FixedType(6, 2, True, rounding, overflow)
    d = Dense(name="dense_1", input="x", result_type=res, weight=rng.integers(-16, 16, (n_in, n_out)), weight_type=w,
              bias=rng.integers(-16, 16, n_out), bias_type=w, accum_type=acc)
    ops: list = [d]
    if act:
        ops.append(Activation(name="act", input="dense_1", result_type=FixedType(5, 1, act != "relu", "RND", "SAT"),
                              function=act))
    return Graph("casts", TensorSpec("x", n_in, x), tuple(ops))


@pytest.mark.parametrize("rounding,overflow,x_signed,act", [
    ("TRN", "WRAP", True, None),
    ("RND", "SAT", True, "relu"),
    ("RND_CONV", "SAT", False, "linear"),
    ("TRN_ZERO", "SAT_SYM", True, None),
    ("RND_INF", "WRAP", False, "relu"),
])
def test_casts_are_bit_exact(rounding, overflow, x_signed, act, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    g = _graph(rounding, overflow, x_signed, act)
    d = bondflow.generate(g, "reference")
    assert lint(d).clean
    assert "module bondflow_reference_dense_1" in d.files["rtl/bondflow_reference_dense_1.v"]
    r = simulate(d.write(tmp_path / "d"), 600, simulator="icarus", seed=5)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 1.0


def test_multi_beat_reference_stream(tmp_path, need_tool) -> None:
    """Several beats per sample on both sides: the shell assembles and splits; II is the beat count."""
    need_tool("iverilog")
    d = bondflow.generate(one_layer(seed=6, n_in=9, n_out=5), "reference", stream_width=16)
    assert d.interface.input.beats == 5 and d.interface.output.beats == 3
    assert lint(d).clean
    r = simulate(d.write(tmp_path / "d"), 300, simulator="icarus", seed=2)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 5.0


def test_reference_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ConfigError, match="must be among"):
        bondflow.generate(one_layer(), "reference", reuse_factor=2)
    g = one_layer()
    two = Graph("two", g.input, (g.ops[0], Dense(name="fc2", input="fc", result_type=g.ops[0].result_type,
                                                 weight=np.ones((4, 2), dtype=np.int64), weight_type=FixedType(6, 1),
                                                 bias=np.zeros(2, dtype=np.int64), bias_type=FixedType(6, 1),
                                                 accum_type=FixedType(30, 14))))
    with pytest.raises(UnsupportedOpError):
        bondflow.generate(two, "reference")

"""moldable element-wise units: branches (forks, merge units fed by fifos), standalone activations and HGQ's per-element
casts; bit-exact in RTL, cycles as declared."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.bondmachine.moldable.program import map_network, simulate_isa
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.merge import Merge, merge_result_type
from bondflow.ir.ops import Activation, Dense, Flatten
from bondflow.ir.reference import run_raw
from bondflow.ir.tensor_ops import Conv, Pool
from bondflow.ir.types import FixedType
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import make_vectors
from simgraphs import branchy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T = FixedType.parse
XT = T("fixed<6,2,RND_CONV,SAT>")
WT = T("fixed<5,1>")


def _conv(name: str, inp: str, k: int, c_in: int, c_out: int, pad: int, out: str, rng: np.random.Generator) -> Conv:
    w = rng.integers(WT.min_raw, WT.max_raw + 1, (k, k, c_in, c_out))
    return Conv(name=name, input=inp, result_type=T(out), weight=w, weight_type=WT,
                bias=rng.integers(WT.min_raw, WT.max_raw + 1, c_out), bias_type=WT,
                accum_type=FixedType(20, 20 - (XT.frac_bits + WT.frac_bits)), strides=(1, 1), pads=((pad, pad), (pad, pad)))


def branchy_cnn() -> Graph:
    """A ReLU image read three times (a conv, an add of images, a concatenation along columns, which interleaves the
    two images' pixels in the word), a max pool and a dense tail."""
    rng = np.random.default_rng(11)
    relu = T("ufixed<6,2,RND_CONV,SAT>")
    ops: list = [_conv("c1", "x", 3, 2, 3, 1, "fixed<10,4,RND_CONV,SAT>", rng),
                 Activation(name="r1", input="c1", result_type=relu, function="relu"),
                 _conv("c2", "r1", 1, 3, 3, 0, "fixed<9,4,RND_CONV,SAT>", rng)]
    ops.append(Merge(name="s", inputs=("r1", "c2"), function="add", result_type=merge_result_type("add", [relu, ops[2].result_type])))
    ops.append(Merge(name="cols", inputs=("s", "r1"), function="concatenate", axis=1, result_type=T("fixed<8,3,RND,SAT>")))
    ops += [Pool(name="p", input="cols", result_type=T("fixed<8,3,RND,SAT>"), function="max", pool=(2, 2), strides=(2, 2),
                 pads=((0, 0), (0, 0))),
            Flatten(name="f", input="p", result_type=T("fixed<8,3,RND,SAT>"))]
    tail_in = 2 * 5 * 3
    ops.append(Dense(name="fc", input="f", result_type=T("fixed<14,6>"), weight=rng.integers(-15, 16, (tail_in, 3)),
                     weight_type=WT, bias=rng.integers(-15, 16, 3), bias_type=WT, accum_type=FixedType(24, 24 - 9)))
    return Graph("branchy_cnn", TensorSpec("x", 4 * 5 * 2, XT, (4, 5, 2)), tuple(ops))


def with_input_relu(g: Graph) -> Graph:
    """``branchy_cnn`` plus a standalone ReLU of the input concatenated with the pooled image along channels."""
    ops = list(g.ops)
    xr = Activation(name="xr", input="x", result_type=T("ufixed<5,2,RND_CONV,SAT>"), function="relu")
    px = Pool(name="px", input="xr", result_type=T("ufixed<5,2,RND_CONV,SAT>"), function="max", pool=(2, 1), strides=(2, 1),
              pads=((0, 0), (0, 0)))
    k = [o.name for o in ops].index("f")
    cat = Merge(name="cat", inputs=("p", "px"), function="concatenate", axis=2, result_type=T("fixed<8,3,RND,SAT>"))
    ops[k:k] = [xr, px, cat]
    ops[k + 3] = Flatten(name="f", input="cat", result_type=T("fixed<8,3,RND,SAT>"))
    rng = np.random.default_rng(5)
    n = 2 * 5 * 5
    ops[-1] = Dense(name="fc", input="f", result_type=T("fixed<14,6>"), weight=rng.integers(-15, 16, (n, 3)), weight_type=WT,
                    bias=rng.integers(-15, 16, 3), bias_type=WT, accum_type=FixedType(24, 24 - 9))
    return Graph("branchy_cnn2", g.input, tuple(ops))


GRAPHS = {"residual_mlp": lambda: bondflow.load_model(EXAMPLES / "residual_mlp" / "model.h5"),
          "branchy": branchy, "branchy_end_in_merge": lambda: branchy(seed=4, end_in_merge=True),
          "branchy_cnn": lambda: with_input_relu(branchy_cnn()),
          "hgq_digits": lambda: bondflow.load_model(EXAMPLES / "hgq_digits" / "model.keras")}


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    return {k: f() for k, f in GRAPHS.items()}


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("cores,lanes", [("auto", 1), (2, 3)])
def test_isa_model_is_bit_exact(graphs, name, cores, lanes) -> None:
    g = graphs[name]
    tv = make_vectors(g, 1000, seed=1)
    y, _ = simulate_isa(map_network(g, cores, lanes), tv.inputs)
    np.testing.assert_array_equal(y, tv.expected)
    np.testing.assert_array_equal(tv.expected, run_raw(g, tv.inputs))


# (graph, cores, lanes, vectors, simulator): Verilator carries the 1000-vector runs.
RTL_CASES = [("residual_mlp", "auto", 1, 1000, "verilator"), ("residual_mlp", 2, 3, 100, "icarus"),
             ("branchy", "auto", 2, 300, "icarus"), ("branchy_end_in_merge", 1, 1, 300, "icarus"),
             ("branchy_cnn", "auto", 1, 1000, "verilator"), ("branchy_cnn", 2, 2, 40, "icarus"),
             ("hgq_digits", "auto", 1, 1000, "verilator"), ("hgq_digits", 4, 2, 100, "icarus")]


@pytest.mark.sim
@pytest.mark.parametrize("name,cores,lanes,n,sim", RTL_CASES)
def test_rtl_matches_golden_and_declared_cycles(graphs, name, cores, lanes, n, sim, tmp_path, need_tool) -> None:
    need_tool("verilator" if sim == "verilator" else "iverilog")
    g = graphs[name]
    d = bondflow.generate(g, "moldable", cores=cores, lanes=lanes)
    r = simulate(d.write(tmp_path / "m"), make_vectors(g, n, seed=9), simulator=sim, seed=9)
    assert r.passed and r.vectors == n and r.backpressure, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles, r.summary()


@pytest.mark.sim
def test_concatenation_order_is_checked(graphs, tmp_path, need_tool) -> None:
    """Two rows of the interleaving concatenation swapped in the RTL: the harness reports mismatches."""
    need_tool("iverilog")
    d = bondflow.generate(graphs["branchy_cnn"], "moldable")
    out = d.write(tmp_path / "m")
    f = out / "rtl" / "bondflow_moldable_cols.v"
    lines = f.read_text().splitlines()
    k = [i for i, line in enumerate(lines) if line.strip().startswith("assign yo[")]
    assert len(k) == 4 * 10 * 3
    a, b = k[0], k[5 * 3]  # the first element of output row 0 (from one image) and of its sixth pixel (from the other)
    lines[a], lines[b] = lines[a].split("=")[0] + "=" + lines[b].split("=")[1], lines[b].split("=")[0] + "=" + lines[a].split("=")[1]
    f.write_text("\n".join(lines) + "\n")
    r = simulate(out, 30, simulator="icarus", seed=2)
    assert not r.passed and r.mismatches > 0, r.summary()


def test_fifos_cover_the_shorter_branch(graphs) -> None:
    """A merge's fifo on the short path holds the samples that path runs ahead by at the network's II; the critical
    input needs 2 words (show-ahead fifo: one cycle of latency on every merge input). Smaller fifos would stall the
    fork, which the RTL tests' II check catches."""
    net = map_network(graphs["residual_mlp"], "auto", 1)
    starts, ready = net.schedule()
    k = [l.name for l in net.layers].index("concat")
    short = [-(-(starts[k] - ready[s]) // net.ii) + 1 for s in net.wiring[k][0]]
    assert net.fifo_depths(k) == [1 << max(1, (n - 1).bit_length()) for n in short]
    assert min(net.fifo_depths(k)) == 2 and max(net.fifo_depths(k)) >= 4
    doc = net.to_json_dict()
    assert {"from": "fc1.out", "to": "concat.in[1]", "protocol": "valid/ready via fifo"} in doc["bonds"]


def test_unsupported_op_still_named(graphs) -> None:
    """What has no moldable unit (a flatten that also casts) is refused in one line naming the layer."""
    from bondflow.errors import UnsupportedOpError
    g = graphs["branchy"]
    cast = Flatten(name="fl", input="out", result_type=T("fixed<6,3,RND,SAT>"))
    bad = Graph("bad", g.input, g.ops + (cast,))
    with pytest.raises(UnsupportedOpError, match="layer 'fl' of type 'flatten' is not supported by the moldable generator") as e:
        map_network(bad)
    assert "\n" not in str(e.value)


@pytest.mark.sim
def test_short_fifos_would_cost_throughput(graphs, tmp_path, need_tool, monkeypatch) -> None:
    """With every merge fifo at 2 words the fork stalls the longer branch: still bit-exact, but the measured II
    exceeds the declared one, so the sized fifos above are what keeps the declared II."""
    need_tool("iverilog")
    from bondflow.bondmachine.moldable.program import Network
    g = graphs["residual_mlp"]
    net = map_network(g)
    assert any(max(net.fifo_depths(k)) > 2 for k in range(len(net.layers)) if net.merges(k))
    monkeypatch.setattr(Network, "fifo_depths", lambda self, k: [2] * len(self.wiring[k][0]))
    d = bondflow.generate(g, "moldable")
    r = simulate(d.write(tmp_path / "m"), make_vectors(g, 70, seed=3), simulator="icarus", seed=3)
    assert r.vectors == 70 and r.mismatches == 0 and r.ii_cycles > d.ii_cycles, r.summary()


def test_cores_per_layer_in_network_order(graphs) -> None:
    """design.info lists the processor layers' core counts in the order of the network (pools between convs and
    the dense tail), skipping units, as `cores` lists take them."""
    g = graphs["branchy_cnn"]
    d = bondflow.generate(g, "moldable", cores=[3, 2, 1, 2, 3])
    net = map_network(g, [3, 2, 1, 2, 3])
    assert [l.name for l in net.layers if hasattr(l, "cores")] == ["c1", "c2", "p", "px", "fc"]
    assert d.info["cores_per_layer"] == [3, 2, 1, 2, 3]

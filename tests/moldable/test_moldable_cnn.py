"""moldable CNNs: pixel-loop conv and pool programs bit-exact with the golden model in RTL, cycles as declared."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.bondmachine.moldable.program import map_network, simulate_isa
from bondflow.errors import ConfigError, UnsupportedOpError
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation, Dense, Flatten
from bondflow.ir.tensor_ops import Conv, Pool, same_pads
from bondflow.ir.types import FixedType
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import make_vectors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T = FixedType.parse
XT = T("fixed<6,2,RND_CONV,SAT>")
WT = T("fixed<5,1>")

# (example, cores, lanes, RTL images, simulator). Verilator carries the 1000-image run (one build of the digits
# CNN is most of this file's time); Icarus builds at once but runs the wide image words slowly, so it gets few images.
RTL_CASES = [("digits_cnn", "auto", 4, 1000, "verilator"), ("digits_cnn", 16, 8, 8, "icarus"),
             ("conv1d", "auto", 1, 40, "icarus"), ("conv1d", 2, 3, 40, "icarus")]


def _conv(name: str, inp: str, kernel: tuple[int, ...], c_in: int, c_out: int, strides: tuple[int, ...],
          pads: tuple[tuple[int, int], ...], rng: np.random.Generator) -> Conv:
    w = rng.integers(WT.min_raw, WT.max_raw + 1, kernel + (c_in, c_out))
    w[rng.random(w.shape) < 0.2] = 0  # pruned weights cost no instruction
    acc = FixedType(20, 20 - (XT.frac_bits + WT.frac_bits))
    return Conv(name=name, input=inp, result_type=T("fixed<10,4,RND_CONV,SAT>"), weight=w, weight_type=WT,
                bias=rng.integers(WT.min_raw, WT.max_raw + 1, c_out), bias_type=WT, accum_type=acc,
                strides=strides, pads=pads)


def odd_cnn() -> Graph:
    """Every address-generator branch: padding on all sides, a signed max pool padded with the type's minimum,
    a stride-2 'same' conv, global average pooling with a ReLU fused after it, a dense tail."""
    rng = np.random.default_rng(20)
    lin = T("fixed<8,4,RND_CONV,SAT>")
    ops = (_conv("c1", "x", (2, 2), 2, 3, (1, 1), ((1, 1), (1, 1)), rng),
           Activation(name="a1", input="c1", result_type=lin, function="linear"),
           Pool(name="p1", input="a1", result_type=lin, function="max", pool=(2, 2), strides=(2, 2), pads=((0, 0), (0, 1))),
           _conv2(rng, lin),
           Pool(name="gp", input="c2", result_type=T("fixed<12,4>"), function="average", pool=(0, 0), strides=(1, 1),
                pads=((0, 0), (0, 0))),
           Activation(name="r2", input="gp", result_type=XT, function="relu"),
           Dense(name="fc", input="r2", result_type=T("fixed<12,5,RND_CONV,SAT>"), weight=rng.integers(-15, 16, (4, 3)),
                 weight_type=WT, bias=rng.integers(-15, 16, 3), bias_type=WT, accum_type=FixedType(24, 24 - 8)))
    return Graph("odd_cnn", TensorSpec("x", 5 * 6 * 2, XT, (5, 6, 2)), ops)


def _conv2(rng: np.random.Generator, xt: FixedType) -> Conv:
    """3x3 'same' stride 2 on the 3x4 pooled image (uneven padding), over signed inputs of type ``xt``."""
    w = rng.integers(WT.min_raw, WT.max_raw + 1, (3, 3, 3, 4))
    return Conv(name="c2", input="p1", result_type=T("fixed<10,4,RND_CONV,SAT>"), weight=w, weight_type=WT,
                bias=rng.integers(WT.min_raw, WT.max_raw + 1, 4), bias_type=WT,
                accum_type=FixedType(22, 22 - (xt.frac_bits + WT.frac_bits)), strides=(2, 2),
                pads=(same_pads(3, 3, 2), same_pads(4, 3, 2)))


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    return {n: bondflow.load_model(EXAMPLES / n / "model.h5") for n in ("digits_cnn", "conv1d")} | {"odd_cnn": odd_cnn()}


@pytest.mark.parametrize("example,cores,lanes", [("digits_cnn", 1, 1), ("digits_cnn", "auto", 4),
                                                  ("conv1d", 2, 3), ("conv1d", "auto", 1), ("odd_cnn", 1, 1), ("odd_cnn", 2, 3)])
def test_isa_simulator_is_bit_exact(graphs, example, cores, lanes) -> None:
    """The instruction-level model (every program at every position) equals the golden model."""
    g = graphs[example]
    tv = make_vectors(g, 300, seed=2)
    y, cyc = simulate_isa(map_network(g, cores, lanes), tv.inputs)
    assert np.array_equal(y, tv.expected)
    d = bondflow.generate(g, "moldable", cores=cores, lanes=lanes)
    assert d.latency_cycles == cyc["latency"] + 2 and d.ii_cycles == cyc["ii"]


@pytest.mark.sim
@pytest.mark.parametrize("example,cores,lanes,n,sim", RTL_CASES)
def test_rtl_matches_golden_and_declared_cycles(graphs, example, cores, lanes, n, sim, tmp_path, need_tool) -> None:
    need_tool("iverilog" if sim == "icarus" else "verilator")
    d = bondflow.generate(graphs[example], "moldable", cores=cores, lanes=lanes)
    lint(d)
    r = simulate(d.write(tmp_path / "m"), n, simulator=sim, seed=7)
    assert r.passed and r.vectors == n and r.backpressure, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles, r.summary()


@pytest.mark.sim
def test_padding_strides_and_pool_fill_in_rtl(graphs, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(graphs["odd_cnn"], "moldable", cores=2, lanes=2)
    lint(d)
    r = simulate(d.write(tmp_path / "m"), 100, simulator="icarus", seed=3)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles


@pytest.mark.sim
def test_corrupted_weight_rom_constant_is_caught(graphs, tmp_path, need_tool) -> None:
    """The harness can fail: one weight immediate changed in a conv core's program ROM gives mismatches."""
    need_tool("iverilog")
    out = bondflow.generate(graphs["conv1d"], "moldable", cores=2, lanes=3).write(tmp_path / "bad")
    core = out / "rtl" / "bondflow_moldable_conv2_c0.v"
    text = core.read_text()
    m = re.search(r"w0 = \$signed\((\d+)'h([0-9a-f]+)\)", text)
    assert m, "the conv core's ROM holds weight immediates"
    width, value = int(m.group(1)), int(m.group(2), 16)
    core.write_text(text[:m.start(2)] + f"{(value + 1) % (1 << width):x}" + text[m.end(2):])
    r = simulate(out, 20, simulator="icarus", seed=4)
    assert not r.passed and r.mismatches > 0, r.summary()


def test_more_cores_and_lanes_fewer_cycles(graphs) -> None:
    g = graphs["digits_cnn"]
    one, many, wide = map_network(g, 1), map_network(g, 16), map_network(g, 16, 4)
    assert many.ii < one.ii and wide.ii < many.ii and wide.latency < many.latency < one.latency
    conv1 = many.layers[0]
    # 8x8 positions, one output channel per core: the program is that channel's non-zero 3x3 weights, + 1 fill cycle
    assert conv1.geom.positions == 64 and conv1.cycles == 64 * conv1.program_length + 1
    assert conv1.program_length == max(int(np.count_nonzero(g.op("conv1").weight[..., j])) for j in range(8))


def test_weights_are_stored_once_per_image(graphs) -> None:
    """A conv core's ROM holds one position's program: its length does not grow with the image."""
    d = bondflow.generate(graphs["digits_cnn"], "moldable", cores=1)
    conv2 = d.files["rtl/bondflow_moldable_conv2_c0.v"]
    assert len(re.findall(r"// MAC", conv2)) == int(np.count_nonzero(graphs["digits_cnn"].op("conv2").weight))


def test_bad_input_is_refused_in_one_line(graphs) -> None:
    g = graphs["digits_cnn"]
    with pytest.raises(ConfigError, match=r"cores for layer 'conv1' must be in 1\.\.8 \(its output channels\), not 9"):
        bondflow.generate(g, "moldable", cores=[9, 1, 1, 1, 1])
    with pytest.raises(ConfigError, match="cores per layer must list 5 values, not 6"):
        bondflow.generate(g, "moldable", cores=[1] * 6)
    conv = g.op("conv1")
    sat = Conv(**{k: getattr(conv, k) for k in ("name", "input", "result_type", "weight", "weight_type", "bias",
                                                  "bias_type", "strides", "pads")}, accum_type=T("fixed<19,8,TRN,SAT>"))
    bad = Graph("sat", g.input, (sat,) + g.ops[1:])
    with pytest.raises(UnsupportedOpError, match="layer 'conv1'.*not supported by the moldable generator"):
        bondflow.generate(bad, "moldable")


def upsampling_chain() -> Graph:
    """Conv, max pool, nearest upsampling by (2, 3) back past the input size, conv, dense: a U-Net-like chain."""
    from bondflow.ir.tensor_ops import Upsample
    rng = np.random.default_rng(21)
    xt = FixedType.parse("fixed<6,2,RND_CONV,SAT>")
    relu = lambda name, inp: Activation(name=name, input=inp, result_type=xt, function="relu")  # noqa: E731
    ops = (_conv("c1", "x", (3, 3), 2, 3, (1, 1), (same_pads(4, 3, 1), same_pads(4, 3, 1)), rng), relu("r1", "c1"),
           Pool(name="p1", input="r1", result_type=xt, function="max", pool=(2, 2), strides=(2, 2), pads=((0, 0), (0, 0))),
           Upsample(name="up", input="p1", result_type=xt, size=(2, 3)),
           _conv("c2", "up", (3, 3), 3, 2, (1, 1), (same_pads(4, 3, 1), same_pads(6, 3, 1)), rng), relu("r2", "c2"),
           Flatten(name="f", input="r2", result_type=xt))
    fc = Dense(name="fc", input="f", result_type=FixedType.parse("fixed<12,5,RND_CONV,SAT>"),
               weight=rng.integers(-15, 16, (4 * 6 * 2, 3)), weight_type=FixedType.parse("fixed<5,1>"),
               bias=rng.integers(-15, 16, 3), bias_type=FixedType.parse("fixed<5,1>"), accum_type=FixedType(24, 16))
    return Graph("up_chain", TensorSpec("x", 4 * 4 * 2, xt, (4, 4, 2)), ops + (fc,))


@pytest.mark.sim
def test_upsampling_copies_in_the_pixel_loop(tmp_path, need_tool) -> None:
    """Upsampling cores copy one element per channel and position, reading input pixel (y // 2, x // 3): the ISA
    model (one core and auto) and the RTL equal the golden model, lint-clean, with the declared cycles."""
    need_tool("iverilog")
    g = upsampling_chain()
    tv = make_vectors(g, 40, seed=4)
    assert len(np.unique(tv.expected, axis=0)) > 30
    for cores in (1, "auto"):
        net = map_network(g, cores)
        up = next(l for l in net.layers if l.name == "up")
        assert up.mode == "copy" and up.geom.repeat == (2, 3) and up.geom.positions == 4 * 6
        assert {i.op for c in up.cores for i in c.program} == {"LDO"}
        got, _ = simulate_isa(net, tv.inputs)
        assert np.array_equal(got, tv.expected), cores
    d = bondflow.generate(g, "moldable")
    assert lint(d).clean
    r = simulate(d.write(tmp_path / "d"), tv, simulator="icarus", seed=2)
    assert r.passed and (r.latency_cycles, r.ii_cycles) == (d.latency_cycles, d.ii_cycles), r.summary()

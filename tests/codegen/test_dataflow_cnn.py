"""Streaming CNN RTL (dataflow): window stages bit-exact with the golden model, latency and II as the cycle model declares."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.codegen.dataflow.reuse import live_multipliers
from bondflow.codegen.hls4ml.generator import valid_reuse_factors
from bondflow.errors import ConfigError, UnsupportedOpError
from bondflow.ir.graph import Graph, TensorSpec
from bondflow.ir.ops import Activation, Dense, Flatten
from bondflow.ir.tensor_ops import Conv, Pool, same_pads
from bondflow.ir.types import FixedType
from bondflow.sim.runner import simulate
from bondflow.sim.vectors import make_vectors

T = FixedType.parse
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
XT = T("fixed<6,2,RND_CONV,SAT>")
WT = T("fixed<5,1>")


def _conv(name: str, inp: str, kernel: tuple[int, ...], c_in: int, c_out: int, strides: tuple[int, ...],
          pads: tuple[tuple[int, int], ...], rng: np.random.Generator) -> Conv:
    w = rng.integers(WT.min_raw, WT.max_raw + 1, kernel + (c_in, c_out))
    w[rng.random(w.shape) < 0.2] = 0
    acc = FixedType(20, 20 - (XT.frac_bits + WT.frac_bits))
    return Conv(name=name, input=inp, result_type=T("fixed<10,4,RND_CONV,SAT>"), weight=w, weight_type=WT,
                bias=rng.integers(WT.min_raw, WT.max_raw + 1, c_out), bias_type=WT, accum_type=acc,
                strides=strides, pads=pads)


def small_cnn(which: str) -> Graph:
    """Small images that put every window branch to work: padding overlap and not, strides, max-pool fill, 1-D."""
    rng = np.random.default_rng(len(which))
    relu = lambda name, inp: Activation(name=name, input=inp, result_type=XT, function="relu")  # noqa: E731
    if which == "same_even":  # 2x2 kernel padded a row above and below: the tail (W shifts) exceeds d0 (1), no overlap
        x = TensorSpec("x", 5 * 6 * 2, XT, (5, 6, 2))
        ops = (_conv("c1", "x", (2, 2), 2, 3, (1, 1), ((1, 1), (0, 0)), rng), relu("r1", "c1"),
               Pool(name="p1", input="r1", result_type=XT, function="max", pool=(2, 2), strides=(2, 2), pads=((0, 0), (0, 1))),
               Flatten(name="f", input="p1", result_type=XT))
        n = 3 * 3 * 3
    elif which == "stride2":  # 3x3 'same' stride 2 on 7x7, then global average pooling and a standalone ReLU
        x = TensorSpec("x", 7 * 7 * 1, XT, (7, 7, 1))
        ops = (_conv("c1", "x", (3, 3), 1, 4, (2, 2), (same_pads(7, 3, 2), same_pads(7, 3, 2)), rng),
               Activation(name="r1", input="c1", result_type=T("fixed<8,4,RND_CONV,SAT>"), function="linear"),
               Pool(name="gp", input="r1", result_type=T("fixed<12,4>"), function="average", pool=(4, 4), strides=(4, 4),
                    pads=((0, 0), (0, 0))),
               relu("r2", "gp"), Flatten(name="f", input="r2", result_type=XT))
        n = 4
    else:  # 1-D: valid conv, stride-2 conv, no dense tail (the image is the output)
        x = TensorSpec("x", 12 * 2, XT, (12, 2))
        ops = (_conv("c1", "x", (3,), 2, 4, (1,), ((0, 0),), rng), relu("r1", "c1"),
               _conv("c2", "r1", (2,), 4, 2, (2,), ((0, 0),), rng), relu("r2", "c2"))
        return Graph(which, x, ops)
    rt = T("fixed<12,5,RND_CONV,SAT>")
    fc = Dense(name="fc", input="f", result_type=rt, weight=rng.integers(-15, 16, (n, 3)), weight_type=WT,
               bias=rng.integers(-15, 16, 3), bias_type=WT, accum_type=FixedType(24, 24 - 8))
    return Graph(which, x, ops + (fc,))


@pytest.mark.sim
@pytest.mark.parametrize("which,parallelism", [("same_even", None), ("same_even", 1), ("stride2", None), ("stride2", 2),
                                               ("conv1d_tail_free", None), ("conv1d_tail_free", 2)])
def test_small_cnns_bit_exact(which, parallelism, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    g = small_cnn(which)
    d = bondflow.generate(g, "dataflow", parallelism=parallelism)
    tv = make_vectors(g, 120, seed=3)
    assert len(np.unique(tv.expected, axis=0)) > 15  # outputs really vary
    r = simulate(d.write(tmp_path / "d"), tv, simulator="icarus", seed=5)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.info["ii_model"], r.summary()


@pytest.mark.sim
def test_two_pixels_per_beat_and_batch_tlast(tmp_path, need_tool) -> None:
    """A wider stream (the serializer) and one TLAST per batch keep results and timing."""
    need_tool("iverilog")
    g = small_cnn("same_even")
    d = bondflow.generate(g, "dataflow", stream_width=2 * 2 * 8, tlast_mode=1)
    assert d.info["pixels_per_beat"] == 2 and d.interface.input.beats == 15
    r = simulate(d.write(tmp_path / "d"), make_vectors(g, 120, seed=1), simulator="icarus")
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles


def _example(name: str) -> Graph:
    return bondflow.load_model(EXAMPLES / name / "model.h5")


@pytest.mark.sim
@pytest.mark.parametrize("parallelism", [None, 2, "auto"])
def test_conv1d_example(parallelism, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    g = _example("conv1d")
    d = bondflow.generate(g, "dataflow", parallelism=parallelism)
    r = simulate(d.write(tmp_path / "d"), 150, simulator="icarus")
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles
    # one input sample per cycle at full parallelism; sharing multipliers costs cycles per window, except where the
    # stream leaves them idle anyway: auto shares conv2's (6 outputs per 32-sample sequence) over 4 cycles, same II
    assert (d.ii_cycles > 32) if parallelism == 2 else (d.ii_cycles == 32)
    if parallelism == "auto":
        assert d.info["parallelism"] == {"conv1": 4, "conv2": 2} and d.info["stages"][2]["cycles_per_window"] == 4
        # the dense tail gets one vector per sequence: its multipliers serve 24 cycles each (hls4ml's largest valid
        # reuse factor within the II of 32), in a chain of handshake layers
        assert d.info["tail_reuse_factor"] == {"logits": 24}
        assert "bondflow_dataflow_logits_rf24" in (tmp_path / "d" / "rtl" / "bondflow_dataflow_tail.v").read_text()
    else:
        assert "tail_reuse_factor" not in d.info


@pytest.mark.sim
def test_reuse_factor_shares_the_dense_tail(tmp_path, need_tool) -> None:
    """A CNN at explicit parallelism takes hls4ml's reuse factor for its dense tail: the Conv1D example's logits share
    their multipliers over 24 cycles within the sequence II (unchanged), bit-exact; a factor above the II sets the II."""
    need_tool("iverilog")
    g = _example("conv1d")
    d = bondflow.generate(g, "dataflow", parallelism=2, reuse_factor=24)
    full = bondflow.generate(g, "dataflow", parallelism=2)
    assert d.info["tail_reuse_factor"] == {"logits": 24} and d.ii_cycles == full.ii_cycles
    assert d.info["multipliers"] < full.info["multipliers"]
    r = simulate(d.write(tmp_path / "d"), 150, simulator="icarus")
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles
    slow = bondflow.generate(g, "dataflow", reuse_factor=max(valid_reuse_factors(*_tail_shape(g))))
    assert slow.ii_cycles >= max(valid_reuse_factors(*_tail_shape(g)))


def _tail_shape(g: Graph) -> tuple[int, int]:
    fc = g.dense_layers()[-1]
    return fc.n_in, fc.n_out


@pytest.mark.sim
@pytest.mark.slow
def test_digits_cnn_verilator_1000_images(tmp_path, need_tool) -> None:
    """The issue's check: 1000 images with back-pressure, one pixel per cycle (II = 64 input pixels)."""
    need_tool("verilator")
    g = _example("digits_cnn")
    d = bondflow.generate(g, "dataflow")
    r = simulate(d.write(tmp_path / "d"), 1000, simulator="verilator")
    assert r.passed and r.vectors == 1000, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles == 64


@pytest.mark.sim
@pytest.mark.slow
def test_digits_cnn_shared_multipliers_icarus(tmp_path, need_tool) -> None:
    """parallelism and multipliers auto: conv2 (16 pixels per image after the pool) shares its multipliers over 4
    cycles at the full design's II of 64, 220 of them on the xc7z020's DSPs and the rest shift-and-add."""
    need_tool("iverilog")
    g = _example("digits_cnn")
    d = bondflow.generate(g, "dataflow", parallelism="auto", multipliers="auto")
    assert d.info["parallelism"] == {"conv1": 8, "conv2": 4} and d.info["stages"][2]["cycles_per_window"] == 4
    # the tail (dense 64 -> 10, one vector per image) shares its multipliers over the II: 10 of them, shift-and-add
    # (the DSPs went to conv2's)
    assert d.info["tail_reuse_factor"] == {"logits": 64}
    assert d.ii_cycles == 64 and d.info["shared_dsp"] == {"conv2": 220, "logits": 0} and d.info["dsp_estimate"] == 220
    r = simulate(d.write(tmp_path / "d"), 64, simulator="icarus")
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles


@pytest.mark.sim
def test_corrupted_line_buffer_constant_is_caught(tmp_path, need_tool) -> None:
    """The harness can fail: one wrong mask bound in a window generator gives mismatches."""
    need_tool("iverilog")
    g = small_cnn("stride2")
    path = bondflow.generate(g, "dataflow").write(tmp_path / "d")
    win = path / "rtl" / "bondflow_dataflow_c1_window.v"
    text = win.read_text()
    # the due-position step from one output row to the next: the windows of every later row slide by one pixel
    bad, n = re.subn(r"(due <= due \+ \d+'d)(\d+)", lambda m: f"{m.group(1)}{int(m.group(2)) + 1}", text, count=1)
    assert n == 1
    win.write_text(bad)
    # wrong windows give wrong values, or windows that never complete: a hang the harness reports as an error
    try:
        r = simulate(path, 100, simulator="icarus", timeout_cycles=5000)
    except bondflow.errors.SimulationError as e:
        assert "must finish within 5000 cycles" in str(e)
    else:
        assert not r.passed and r.mismatches > 0, r.summary()


def test_bad_options() -> None:
    g = small_cnn("stride2")
    with pytest.raises(ConfigError, match=r"parallelism of conv 'c1' must divide its 4 output channels \(\[1, 2, 4\]\), not 3"):
        bondflow.generate(g, "dataflow", parallelism=3)
    with pytest.raises(ConfigError, match=r"reuse factor for layer 'fc' \(4x3\) must be one of \[1, 2, 4, 12\], not 5"):
        bondflow.generate(g, "dataflow", reuse_factor=5)  # the dense tail's reuse factor: hls4ml's valid set
    with pytest.raises(ConfigError, match="has none: use parallelism, not reuse_factor 2"):
        bondflow.generate(small_cnn("conv1d"), "dataflow", reuse_factor=2)
    with pytest.raises(ConfigError, match="whole pixels"):
        bondflow.generate(small_cnn("same_even"), "dataflow", stream_width=24)  # 2-channel pixels: 16 bits


def test_padding_wider_than_kernel_is_refused() -> None:
    rng = np.random.default_rng(0)
    g = Graph("pad", TensorSpec("x", 16, XT, (4, 4, 1)), (_conv("c1", "x", (2, 2), 1, 1, (1, 1), ((2, 0), (0, 0)), rng),))
    with pytest.raises(UnsupportedOpError, match="c1"):
        bondflow.generate(g, "dataflow")
    wide = Graph("wide", TensorSpec("x", 16, XT, (4, 4, 1)), (_conv("c1", "x", (2, 2), 1, 1, (1, 1), ((0, 0), (1, 1)), rng),))
    with pytest.raises(UnsupportedOpError, match="left \\+ right padding below the kernel width"):
        bondflow.generate(wide, "dataflow")


@pytest.mark.sim
def test_multiplier_free_convolutions(tmp_path, need_tool) -> None:
    """multipliers=lut builds every window's products from shifts and adds (codegen/cmvm.py), still bit-exact."""
    need_tool("iverilog")
    g = small_cnn("same_even")
    d = bondflow.generate(g, "dataflow", multipliers="lut", stage_adders=3)
    assert d.info["layer_multipliers"] == {"c1": "lut", "fc": "lut"} and d.info["dsp_estimate"] == 0
    assert not any("*" in line for line in d.files["rtl/bondflow_dataflow_c1.v"].splitlines() if "assign" in line)
    r = simulate(d.write(tmp_path / "d"), make_vectors(g, 120, seed=2), simulator="icarus")
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.info["ii_model"]


@pytest.mark.sim
def test_shared_multipliers_split_between_dsp_and_luts(tmp_path, need_tool) -> None:
    """A conv sharing its multipliers writes as many as the DSP budget allows as products, the rest as
    shift-and-add (never a DSP), and stays bit-exact in every split; the dense tail gets what is left."""
    need_tool("iverilog")
    g = small_cnn("same_even")
    n = len(live_multipliers(g.ops[0].as_dense(), 3))  # c1: 8 shared (2x2 window x 2 channels), one output per cycle
    assert 6 <= n <= 8
    for mode, budget, want in (("lut", None, 0), ("auto", 5, 5), ("dsp", None, n)):
        d = bondflow.generate(g, "dataflow", multipliers=mode, parallelism=1,
                              **({"dsp_budget": budget} if budget is not None else {}))
        text = d.files["rtl/bondflow_dataflow_c1_rf3.v"]
        products = [l for l in text.splitlines() if "assign p_" in l and " * " in l]
        assert len(products) == want and d.info["shared_dsp"] == {"c1": want}, (mode, len(products))
        if mode == "auto":
            assert d.info["layer_multipliers"] == {"fc": "lut"} and d.info["dsp_estimate"] == 5
        r = simulate(d.write(tmp_path / mode), make_vectors(g, 150, seed=4), simulator="icarus")
        assert r.passed, (mode, r.summary())


def test_cli_parallelism(tmp_path, capsys) -> None:
    from bondflow.cli.main import main
    from bondflow.design import load_design
    g = small_cnn("stride2")
    g.save(tmp_path / "g.json")
    assert main(["generate", str(tmp_path / "g.json"), "--arch", "dataflow", "--parallelism", "c1=2", "--no-lint",
                 "-o", str(tmp_path / "d")]) == 0
    d = load_design(tmp_path / "d")
    assert d.options["parallelism"] == {"c1": 2} and d.info["stages"][0]["cycles_per_window"] == 2
    assert main(["generate", str(tmp_path / "g.json"), "--arch", "dataflow", "--parallelism", "c1=two",
                 "-o", str(tmp_path / "e")]) != 0
    assert "--parallelism must be a number, layer=N pairs" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
    # auto never costs II: on the 7x7 stride-2 image two cycles per window would make it 50 instead of 49
    assert bondflow.generate(g, "dataflow", parallelism={"c1": 2}).ii_cycles == 50
    assert bondflow.generate(g, "dataflow", parallelism="auto").info["parallelism"] == {"c1": 4}
    small_cnn("conv1d_tail_free").save(tmp_path / "g1.json")  # its stride-2 c2 sees every other sample: shared
    assert main(["generate", str(tmp_path / "g1.json"), "--arch", "dataflow", "--parallelism", "auto", "--no-lint",
                 "-o", str(tmp_path / "a")]) == 0
    a = load_design(tmp_path / "a")
    assert a.options["parallelism"] == "auto" and a.info["parallelism"] == {"c1": 4, "c2": 1} and a.ii_cycles == 12
    with pytest.raises(ConfigError, match="parallelism must be an integer >= 1, a layer -> integer mapping or 'auto', not 'fast'"):
        bondflow.generate(g, "dataflow", parallelism="fast")


def residual_cnn(which: str) -> Graph:
    """Branches between streaming stages: a residual block whose skip waits in a fifo, a concatenation of channels with
    the input image (read by two stages), and a downsampling block with a strided 1x1 projection on the skip."""
    from bondflow.ir.merge import Merge
    rng = np.random.default_rng(7 + len(which))
    relu = lambda name, inp: Activation(name=name, input=inp, result_type=XT, function="relu")  # noqa: E731
    same = same_pads(6, 3, 1)
    x = TensorSpec("x", 6 * 6 * 2, XT, (6, 6, 2))
    if which == "residual":
        ops = (_conv("c1", "x", (3, 3), 2, 4, (1, 1), (same, same), rng), relu("r1", "c1"),
               _conv("c2", "r1", (3, 3), 4, 4, (1, 1), (same, same), rng),
               Merge(name="add", inputs=("r1", "c2"), result_type=T("fixed<11,5,RND_CONV,SAT>"), function="add"),
               relu("r2", "add"),
               Merge(name="cat", inputs=("r2", "x"), result_type=XT, function="concatenate", axis=2),
               Pool(name="p1", input="cat", result_type=XT, function="max", pool=(2, 2), strides=(2, 2), pads=((0, 0), (0, 0))),
               Flatten(name="f", input="p1", result_type=XT))
        n, acc = 3 * 3 * 6, FixedType(24, 16)
    else:  # "downsample": conv stride 2 on the main path, 1x1 stride-2 projection on the skip, then global average pooling
        x = TensorSpec("x", 8 * 8 * 2, XT, (8, 8, 2))
        ops = (_conv("c1", "x", (3, 3), 2, 3, (2, 2), (same_pads(8, 3, 2), same_pads(8, 3, 2)), rng), relu("r1", "c1"),
               _conv("c2", "r1", (3, 3), 3, 3, (1, 1), (same_pads(4, 3, 1), same_pads(4, 3, 1)), rng),
               _conv("proj", "x", (1, 1), 2, 3, (2, 2), ((0, 0), (0, 0)), rng),
               Merge(name="add", inputs=("c2", "proj"), result_type=T("fixed<11,5,RND_CONV,SAT>"), function="add"),
               relu("r2", "add"),
               Pool(name="gp", input="r2", result_type=T("fixed<12,4>"), function="average", pool=(4, 4), strides=(4, 4),
                    pads=((0, 0), (0, 0))),
               Flatten(name="f", input="gp", result_type=T("fixed<12,4>")))
        n, acc = 3, FixedType(24, 12)
    rt = T("fixed<12,5,RND_CONV,SAT>")
    fc = Dense(name="fc", input="f", result_type=rt, weight=rng.integers(-15, 16, (n, 3)), weight_type=WT,
               bias=rng.integers(-15, 16, 3), bias_type=WT, accum_type=acc)
    return Graph(which, x, ops + (fc,))


@pytest.mark.sim
@pytest.mark.parametrize("which,parallelism", [("residual", None), ("residual", 2), ("downsample", 1)])
def test_branched_cnns_bit_exact(which, parallelism, tmp_path, need_tool) -> None:
    """Forks and joins between streaming stages: bit-exact with back-pressure, latency and II as the cycle model says,
    and at full parallelism still one pixel per cycle."""
    need_tool("iverilog")
    need_tool("verilator")
    g = residual_cnn(which)
    d = bondflow.generate(g, "dataflow", parallelism=parallelism)
    from bondflow.sim.lint import lint
    assert lint(d).clean
    merges = [s for s in d.info["stages"] if "fifo_depths" in s]
    assert len(merges) == (2 if which == "residual" else 1) and all(min(s["fifo_depths"]) >= 2 for s in merges)
    if parallelism is None:
        assert d.ii_cycles == 36
    _bit_exact_with_declared_timing(g, d, tmp_path)


def _bit_exact_with_declared_timing(g: Graph, d, tmp_path: Path) -> None:
    """100 vectors whose outputs really vary, back-pressure on Icarus: equal to the golden model, latency and II as declared."""
    tv = make_vectors(g, 100, seed=3)
    assert len(np.unique(tv.expected, axis=0)) > 50
    r = simulate(d.write(tmp_path / "d"), tv, simulator="icarus", seed=5)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.info["ii_model"], r.summary()


def test_merge_fifos_are_sized_by_the_cycle_model(monkeypatch) -> None:
    """The skip of a residual block waits about a row of pixels: with two-entry fifos the pipeline would stall for good,
    which the cycle model finds before any RTL is written."""
    from bondflow.codegen.dataflow import cnn
    d = bondflow.generate(residual_cnn("residual"), "dataflow")
    skip = d.info["stages"][2]["fifo_depths"][0]  # r1 waits while c2 fills its window
    assert skip >= 8, d.info["stages"]
    monkeypatch.setattr(cnn, "_fifo_log2", lambda peak: 1)
    with pytest.raises(RuntimeError, match="does not finish"):
        bondflow.generate(residual_cnn("residual"), "dataflow")


@pytest.mark.sim
@pytest.mark.slow
def test_residual_cnn_example_verilator_1000_images(tmp_path, need_tool) -> None:
    """examples/residual_cnn (Add skip, Concatenate with the image): 1000 images with back-pressure, multiplier-free,
    one pixel per cycle through forks and merge fifos."""
    need_tool("verilator")
    g = _example("residual_cnn")
    d = bondflow.generate(g, "dataflow", multipliers="lut")
    assert d.ii_cycles == 64 and d.info["multipliers"] == 0
    r = simulate(d.write(tmp_path / "d"), 1000, simulator="verilator")
    assert r.passed and r.vectors == 1000, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == d.ii_cycles


def upsampling_cnn(which: str) -> Graph:
    """Nearest upsampling in the stream: a U-Net-like block (pool down, upsample back, concatenate with the skip,
    which waits in a fifo while the upsampler repeats rows) and a 1-D upsampler feeding a convolution, no tail."""
    from bondflow.ir.merge import Merge
    from bondflow.ir.tensor_ops import Upsample
    rng = np.random.default_rng(11 + len(which))
    relu = lambda name, inp: Activation(name=name, input=inp, result_type=XT, function="relu")  # noqa: E731
    if which == "unet":
        x = TensorSpec("x", 4 * 6 * 2, XT, (4, 6, 2))
        ops = (_conv("c1", "x", (3, 3), 2, 3, (1, 1), (same_pads(4, 3, 1), same_pads(6, 3, 1)), rng), relu("r1", "c1"),
               Pool(name="p1", input="r1", result_type=XT, function="max", pool=(2, 2), strides=(2, 2), pads=((0, 0), (0, 0))),
               _conv("c2", "p1", (1, 1), 3, 2, (1, 1), ((0, 0), (0, 0)), rng), relu("r2", "c2"),
               Upsample(name="up", input="r2", result_type=XT, size=(2, 2)),
               Merge(name="cat", inputs=("up", "r1"), result_type=XT, function="concatenate", axis=2),
               _conv("c3", "cat", (3, 3), 5, 2, (1, 1), (same_pads(4, 3, 1), same_pads(6, 3, 1)), rng), relu("r3", "c3"),
               Flatten(name="f", input="r3", result_type=XT))
        rt = T("fixed<12,5,RND_CONV,SAT>")
        fc = Dense(name="fc", input="f", result_type=rt, weight=rng.integers(-15, 16, (4 * 6 * 2, 3)), weight_type=WT,
                   bias=rng.integers(-15, 16, 3), bias_type=WT, accum_type=FixedType(24, 16))
        return Graph(which, x, ops + (fc,))
    x = TensorSpec("x", 5 * 2, XT, (5, 2))
    ops = (Upsample(name="up", input="x", result_type=XT, size=(3,)), _conv("c1", "up", (3,), 2, 3, (1,), ((1, 1),), rng),
           relu("r1", "c1"))
    return Graph(which, x, ops)


@pytest.mark.sim
@pytest.mark.parametrize("which,parallelism", [("unet", None), ("unet", 1), ("upsample1d", None)])
def test_upsampling_bit_exact(which, parallelism, tmp_path, need_tool) -> None:
    """The upsampler repeats pixels and rows in the stream: bit-exact with back-pressure, lint-clean, latency and II
    as the cycle model says (the II counts the upsampled pixels)."""
    need_tool("iverilog")
    need_tool("verilator")
    g = upsampling_cnn(which)
    d = bondflow.generate(g, "dataflow", parallelism=parallelism)
    from bondflow.sim.lint import lint
    assert lint(d).clean
    up = next(s for s in d.info["stages"] if s["module"] == "bondflow_upsample")
    assert up["factors"] == ([2, 2] if which == "unet" else [1, 3])
    if parallelism is None:
        assert d.ii_cycles == (4 * 6 if which == "unet" else 15)  # one pixel per cycle after the upsampler
    _bit_exact_with_declared_timing(g, d, tmp_path)


@pytest.mark.sim
def test_upsampler_row_buffer_is_checked(tmp_path, need_tool) -> None:
    """The harness can fail: an upsampler whose repeated rows read the wrong buffered pixel is caught."""
    need_tool("iverilog")
    path = bondflow.generate(upsampling_cnn("unet"), "dataflow").write(tmp_path / "d")
    rtl = path / "rtl" / "bondflow_upsample.v"
    bad, n = re.subn(r"first \? in_data : row\[col\]", "first ? in_data : row[0]", rtl.read_text())
    assert n == 1
    rtl.write_text(bad)
    r = simulate(path, 30, simulator="icarus")
    assert not r.passed and r.mismatches > 0, r.summary()

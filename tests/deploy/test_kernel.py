"""Data-centre kernel: the RTL kernel against the golden model in cocotb, its driver on a simulated card, its scripts."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.deploy.kernel import kernel_design, layout_from_dict, start_writes
from bondflow.deploy.package import deploy
from bondflow.errors import ConfigError, ToolFailedError
from bondflow.sim.kernel import run_kernel
from bondflow.sim.lint import lint
from bondflow.stream import pack_slots, unpack_slots
from bundles import driver
from simgraphs import one_layer

pytestmark = pytest.mark.sim
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples"
# Above 4 GiB (the high address words matter) and 0x40 before a 4 KiB boundary (the first burst must split).
IN_ADDR, OUT_ADDR = 0x1_0000_0FC0, 0x2_0000_0F80
GUARD = 64  # canary bytes on each side of the output buffer: the kernel must not write outside it


@pytest.fixture(scope="module")
def iris():
    return bondflow.load_model(EXAMPLES / "iris" / "model.h5")


def run_samples(kdir: Path, x: np.ndarray, simulator: str = "icarus", backpressure: bool = True, seed: int = 0):
    k = bondflow.design.Design.load(kdir)
    lay, g = layout_from_dict(k.info["kernel"]), k.graph()
    n = len(x)
    data = pack_slots(lay.inp.stream, g.input.type.quantize(x), lay.inp.slot_bytes)
    ob = n * lay.out.slot_bytes
    canary = bytes([0xA5]) * (ob + 2 * GUARD)
    writes = start_writes(IN_ADDR, OUT_ADDR, n)
    r = run_kernel(kdir, [(IN_ADDR, data), (OUT_ADDR - GUARD, canary)], writes, [(OUT_ADDR - GUARD, ob + 2 * GUARD)],
                   simulator=simulator, backpressure=backpressure, seed=seed)
    assert r.done and r.error is None and r.status == 0, r
    buf = r.reads[0]
    assert buf[:GUARD] == canary[:GUARD] and buf[-GUARD:] == canary[:GUARD], "kernel wrote outside its output buffer"
    y = g.output.type.to_float(unpack_slots(lay.out.stream, buf[GUARD:-GUARD], lay.out.slot_bytes))
    return y, r


@pytest.mark.parametrize("arch,opts,words", [("dataflow", {}, None), ("dataflow", {}, 32), ("moldable", {"cores": 4}, None),
                                             ("reference", {}, None)])
def test_kernel_equals_golden_with_backpressure(iris, arch, opts, words, tmp_path, need_tool) -> None:
    """1, 7 and 1000 samples, every memory channel stalling at random; slots of one word and of several."""
    need_tool("iverilog")
    g = iris if arch != "reference" else one_layer(seed=3, n_in=5, n_out=4)
    kd = kernel_design(bondflow.generate(g, arch, **opts), out_word_bits=words).write(tmp_path / "kernel")
    rng = np.random.default_rng(7)
    for n in (1, 7, 1000):
        x = rng.uniform(-4, 4, (n, g.input.size))
        y, r = run_samples(kd, x, seed=n)
        mism = int((y != bondflow.reference.run(g, x)).any(axis=1).sum())
        assert mism == 0, f"{arch} n={n}: {mism} mismatching samples"
        assert r.cycles >= n  # at most one sample per cycle


def test_kernel_on_verilator_and_throughput(iris, tmp_path, need_tool) -> None:
    need_tool("verilator")
    kd = kernel_design(bondflow.generate(iris, "dataflow")).write(tmp_path / "kernel")
    x = np.random.default_rng(2).uniform(-4, 4, (300, 4))
    y, r = run_samples(kd, x, simulator="verilator", backpressure=False)
    assert np.array_equal(y, bondflow.reference.run(iris, x))
    # Without stalls the kernel streams a sample per cycle: only burst set-up and pipeline fill on top.
    assert r.cycles < 300 + 120, r.cycles


def test_kernel_rtl_is_lint_clean(iris, need_tool) -> None:
    need_tool("verilator")
    d = bondflow.generate(iris, "dataflow", reuse_factor=4)
    for words in (None, 32):
        assert lint(kernel_design(d, out_word_bits=words)).clean


def test_kernel_width_must_be_valid(iris) -> None:
    d = bondflow.generate(iris, "dataflow")
    with pytest.raises(ConfigError, match=r"kernel memory width must be one of \[32, 64, 128\] bits for 16-byte slots, not 256"):
        kernel_design(d, out_word_bits=256)


@pytest.fixture(scope="module")
def card_bundle(iris, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("card")
    d = bondflow.generate(iris, "dataflow").write(tmp / "design")
    return deploy(d, "alveo-u55c", tmp / "bundle")


def test_driver_on_simulated_card_equals_golden(iris, card_bundle, need_tool) -> None:
    need_tool("iverilog")
    drv = driver(card_bundle)
    acc = drv.Accelerator(card_bundle, backend="sim", batch_size=16)
    assert type(acc).__name__ == "KernelAccelerator"
    x = np.random.default_rng(4).uniform(-3, 3, (37, 4))  # not a multiple of the batch: 16 + 16 + 5
    y, seconds, ips = acc.predict(x, profile=True)
    assert np.array_equal(y, bondflow.reference.run(iris, x))
    assert [r.done for r in acc.device.runs] == [True, True, True]
    p = acc.last_profile
    assert p["n"] == 37 and p["kernel_s"] > 0 and p["to_device_s"] > 0 and p["from_device_s"] > 0
    assert seconds >= p["kernel_s"] and ips > 0
    # Buffers sit above 4 GiB: the kernel read the address registers' high words.
    assert acc.ibuf.device_address >> 32 and acc.obuf.device_address >> 32


def test_driver_bad_counts_platform_and_hang(card_bundle, need_tool) -> None:
    need_tool("iverilog")
    drv = driver(card_bundle)
    with pytest.raises(drv.BundleError, match=r"built for alveo-u55c \(xilinx_u55c.*\), not for this card \(xilinx_u250"):
        drv.Accelerator(card_bundle, backend="sim", device_name="xilinx_u250_gen3x16_xdma_shell_4_1")
    acc = drv.Accelerator(card_bundle, backend="sim", batch_size=8, timeout_s=1.0)
    for n in (0, 9):
        with pytest.raises(drv.AcceleratorError, match=rf"sample count must be between 1 and the buffers' 8, not {n}"):
            acc.run(n)
    with pytest.raises(drv.AcceleratorError, match=r"inputs must have shape \(batch >= 1, 4\), not \(0, 4\)"):
        acc.predict(np.zeros((0, 4)))
    acc.device.max_cycles = 5  # the simulation stops long before the kernel could finish: ap_done never rises
    with pytest.raises(drv.KernelTimeoutError, match=r"kernel must raise ap_done within 1.0 s, not hang"):
        acc.predict(np.zeros((3, 4)))


def test_pynq_backend_without_card_or_xclbin(card_bundle, tmp_path) -> None:
    drv = driver(card_bundle)
    with pytest.raises(drv.BundleError, match=r"must contain an xclbin .*build.sh"):
        drv.Accelerator(card_bundle, backend="pynq")
    pytest.importorskip("pynq")
    import shutil
    b = shutil.copytree(card_bundle, tmp_path / "b")
    (b / "bondflow.xclbin").write_bytes(b"xclbin2\0 not a real xclbin (test)")
    m = json.loads((b / "manifest.json").read_text())
    m.update(xclbin="bondflow.xclbin", xclbin_sha256=hashlib.sha256((b / "bondflow.xclbin").read_bytes()).hexdigest())
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(drv.DeviceNotFoundError, match="card must be visible to XRT"):
        drv.Accelerator(b, backend="pynq")
    (b / "bondflow.xclbin").write_bytes(b"tampered")
    with pytest.raises(drv.BundleError, match="modified xclbin"):
        drv.Accelerator(b, backend="pynq")


def test_card_bundle_contents_and_zynq_driver_refuses_it(iris, card_bundle, tmp_path) -> None:
    m = json.loads((card_bundle / "manifest.json").read_text())
    assert m["kind"] == "xrt-kernel" and m["xclbin"] is None and (card_bundle / "MISSING_XCLBIN.txt").exists()
    assert m["kernel"]["registers"]["n"] == 0x28 and m["kernel"]["input"]["slot_bytes"] == 4
    assert (card_bundle / "kernel" / "rtl" / "bondflow_kernel.v").read_text().startswith("// Generated by bondflow")
    zynq = deploy(bondflow.generate(iris, "dataflow", tlast_mode=1).write(tmp_path / "d"), "pynq-z2", tmp_path / "z")
    zdrv = driver(zynq)
    with pytest.raises(zdrv.BundleError, match="bundle must be for a Zynq board .AXI DMA., not xrt-kernel for alveo-u55c"):
        zdrv.Accelerator(card_bundle, backend="sim")


GOLDEN = ("kernel.xml", "link.cfg", "package_kernel.tcl", "build.sh", "create_afi.sh", "host/host.cpp", "host/Makefile")


def test_vitis_files_match_golden(tmp_path) -> None:
    """The generated kernel description and scripts, byte for byte (BONDFLOW_UPDATE_GOLDEN=1 rewrites them)."""
    from bondflow.deploy.card import vitis_files
    g = one_layer(seed=1, n_in=4, n_out=3)
    kd = kernel_design(bondflow.generate(g, "reference"))
    files = vitis_files(kd, "aws-f1")
    assert set(GOLDEN) <= set(files)
    for name in GOLDEN:
        gold = HERE / "golden" / "aws-f1" / name
        # The kernel's digest changes with any RTL template; the scripts' text is what is pinned here.
        assert kd.digest()[:16] in files[name], f"{name} must name the kernel digest"
        text = files[name].replace(kd.digest()[:16], "<kernel digest>")
        if os.environ.get("BONDFLOW_UPDATE_GOLDEN"):
            gold.parent.mkdir(parents=True, exist_ok=True)
            gold.write_text(text)
        assert text == gold.read_text(), f"{name} differs from {gold}"
    xml = files["kernel.xml"]
    for arg, off in (("in", "0x10"), ("out", "0x1c"), ("n", "0x28")):
        assert f'name="{arg}"' in xml and f'offset="{off}"' in xml


def test_fake_vitis_build_records_xclbin(iris, tmp_path) -> None:
    """With (FAKE) vivado and v++ on PATH the build script runs; the bundle records the xclbin's digest."""
    d = bondflow.generate(iris, "dataflow").write(tmp_path / "design")
    env_path = f"{HERE / 'fake_vitis_tools'}{os.pathsep}{os.environ['PATH']}"
    old = os.environ["PATH"]
    os.environ["PATH"] = env_path
    try:
        b = deploy(d, "alveo-u250", tmp_path / "bundle")
        m = json.loads((b / "manifest.json").read_text())
        xclbin = (b / "bondflow.xclbin").read_text()
        assert m["xclbin"] == "bondflow.xclbin" and m["xclbin_sha256"] == hashlib.sha256(xclbin.encode()).hexdigest()
        assert "--platform xilinx_u250_gen3x16_xdma_4_1_202210_1" in xclbin and "bondflow_kernel.xo" in xclbin
        os.environ["FAKE_VITIS_FAIL"] = "1"
        with pytest.raises(ToolFailedError, match=r"v\+\+ must exit 0, not 1 .*FAKE link failure"):
            deploy(d, "alveo-u250", tmp_path / "bundle2")
        assert not (tmp_path / "bundle2").exists() and (tmp_path / "bundle2.vitis-build.log").exists()
    finally:
        os.environ["PATH"] = old
        os.environ.pop("FAKE_VITIS_FAIL", None)


def test_cli_card_deploy_and_bad_board(iris, tmp_path) -> None:
    d = bondflow.generate(iris, "dataflow").write(tmp_path / "design")
    cli = [sys.executable, "-m", "bondflow.cli.main", "deploy", str(d)]
    r = subprocess.run(cli + ["--board", "aws-f1", "-o", str(tmp_path / "f1")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "RTL kernel bondflow_kernel for aws-f1" in r.stdout and "create_afi.sh" in r.stdout
    assert (tmp_path / "f1" / "vitis" / "create_afi.sh").stat().st_mode & 0o111
    r = subprocess.run(cli + ["--board", "alveo-u999", "-o", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "board must be one of pynq-z2, zcu102, aws-f1, alveo-u250, alveo-u55c, not 'alveo-u999'" in r.stderr
    r = subprocess.run(cli + ["--board", "alveo-u250", "-o", str(tmp_path / "y"), "--host", "me@card"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--host must be used with a Zynq board" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "y").exists()


def test_kernel_synthesis_scripts_name_the_kernel(tmp_path, need_tool) -> None:
    """yosys sizes the kernel; the Vivado script synthesizes bondflow_kernel on ap_clk; no bitstream harness for it."""
    need_tool("yosys")
    from bondflow.errors import DesignError
    from bondflow.synth.flow import synthesize
    g = one_layer(seed=1, n_in=4, n_out=3)
    core = bondflow.generate(g, "reference").write(tmp_path / "core")
    kd = kernel_design(bondflow.design.Design.load(core)).write(tmp_path / "kernel")
    rk, rc = synthesize(kd, "xcu250"), synthesize(core, "xcu250")
    assert rk.lut > rc.lut and rk.ff > rc.ff  # the wrapper's registers, FIFOs and burst logic come on top
    ooc = Path(rk.vivado_scripts[0]).read_text()
    assert "synth_design -top bondflow_kernel " in ooc and "[get_ports ap_clk]" in ooc
    assert len(rk.vivado_scripts) == 1  # no Zynq block design for a data-centre kernel
    with pytest.raises(DesignError, match="bitstream harness must wrap the stream shell bondflow_top, not bondflow_kernel"):
        synthesize(kd, "ecp5-25k", bitstream=True)

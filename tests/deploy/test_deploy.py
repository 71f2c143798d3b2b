"""Deploy bundles: the unchanged driver over PYNQ's real DMA class, on a simulated device running the RTL."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.deploy.package import deploy
from bundles import driver
from simgraphs import one_layer

pytestmark = pytest.mark.sim
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def iris():
    return bondflow.load_model(EXAMPLES / "iris" / "model.h5")


@pytest.mark.parametrize("arch,opts", [("dataflow", {"tlast_mode": 1}), ("dataflow", {"reuse_factor": 4}),
                                       ("reference", {"tlast_mode": 1})])
def test_sim_backend_equals_golden(iris, arch, opts, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    g = iris if arch != "reference" else one_layer(seed=2, n_in=4, n_out=3)
    d = bondflow.generate(g, arch, **opts).write(tmp_path / "design")
    bundle = deploy(d, "pynq-z2", tmp_path / "bundle")
    drv = driver(bundle)
    acc = drv.Accelerator(bundle, backend="sim", batch_size=16)  # 37 samples: not a multiple of the DMA batch
    x = np.random.default_rng(1).uniform(-4, 4, (37, g.input.size))
    y, seconds, ips = acc.predict(x, profile=True)
    assert np.array_equal(y, bondflow.reference.run(g, x))
    assert seconds > 0 and ips > 0
    assert acc.device.transfers == 3  # ceil(37 / 16) MM2S transfers, each one RTL run


def test_bundle_contents_and_missing_bitstream(iris, tmp_path) -> None:
    d = bondflow.generate(iris, "dataflow", tlast_mode=1).write(tmp_path / "design")
    bundle = deploy(d, "pynq-z2", tmp_path / "bundle")
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["bitstream"] is None and "--vivado" in m["bitstream_howto"]
    assert (bundle / "MISSING_BITSTREAM.txt").exists()
    assert m["interface"]["input"]["lane_bits"] == 8 and m["design_digest"]
    src = (bundle / "bondflow_driver" / "accelerator.py").read_text()
    assert "import bondflow\n" not in src  # the board needs numpy and pynq only
    drv = driver(bundle)
    with pytest.raises(drv.BundleError, match="bitstream"):
        drv.Accelerator(bundle, backend="pynq")


def test_real_pynq_without_device_is_a_clear_error(iris, tmp_path) -> None:
    """With a bitstream in the bundle, PYNQ itself is reached and its 'No Devices Found' becomes our error."""
    pytest.importorskip("pynq")
    d = bondflow.generate(iris, "dataflow", tlast_mode=1).write(tmp_path / "design")
    bundle = deploy(d, "pynq-z2", tmp_path / "bundle")
    (bundle / "bondflow.bit").write_bytes(b"\xff\x00 not a real bitstream (test)")
    m = json.loads((bundle / "manifest.json").read_text())
    import hashlib
    m.update(bitstream="bondflow.bit", bitstream_sha256=hashlib.sha256((bundle / "bondflow.bit").read_bytes()).hexdigest())
    (bundle / "manifest.json").write_text(json.dumps(m))
    drv = driver(bundle)
    with pytest.raises(drv.DeviceNotFoundError, match="FPGA device must be present"):
        drv.Accelerator(bundle, backend="pynq")
    (bundle / "bondflow.bit").write_bytes(b"tampered")
    with pytest.raises(drv.BundleError, match="modified bitstream"):
        drv.Accelerator(bundle, backend="pynq")


def test_wrong_shape_and_other_version(iris, tmp_path, need_tool) -> None:
    d = bondflow.generate(iris, "dataflow", tlast_mode=1).write(tmp_path / "design")
    bundle = deploy(d, "pynq-z2", tmp_path / "bundle")
    drv = driver(bundle)
    acc = drv.Accelerator(bundle, backend="sim")
    for bad in (np.zeros((3, 5)), np.zeros((0, 4)), np.zeros(4)):
        with pytest.raises(drv.AcceleratorError, match=r"shape \(batch >= 1, 4\), not \("):
            acc.predict(bad)
    m = json.loads((bundle / "manifest.json").read_text())
    m["driver_format"] = 99
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(drv.BundleError, match="driver format"):
        drv.Accelerator(bundle, backend="sim")


def test_hang_times_out(iris, tmp_path, need_tool) -> None:
    """A per-sample-TLAST design fed one big transfer but read with a too-small buffer: the DMA errors, not hangs."""
    need_tool("iverilog")
    d = bondflow.generate(iris, "dataflow", tlast_mode=1).write(tmp_path / "design")
    bundle = deploy(d, "pynq-z2", tmp_path / "bundle")
    drv = driver(bundle)
    acc = drv.Accelerator(bundle, backend="sim", timeout_s=0.5)
    acc.device._frames.clear()
    acc.device.simulator = "icarus"
    # No input sent: an armed receive with nothing coming must time out.
    buf = acc._allocate((acc.fout.bytes_per_sample,), np.uint8)
    acc.dma.recvchannel.transfer(buf)
    with pytest.raises(drv.DmaTimeoutError, match="must finish within 0.5 s"):
        acc._wait(acc.dma.recvchannel, "receive")


def test_cnn_bundle_takes_images(tmp_path, need_tool) -> None:
    """A streaming CNN design: the driver takes (batch, L, C) sequences, packs them pixel by pixel, equals golden."""
    need_tool("iverilog")
    g = bondflow.load_model(EXAMPLES / "conv1d" / "model.h5")
    d = bondflow.generate(g, "dataflow", tlast_mode=1).write(tmp_path / "design")
    bundle = deploy(d, "pynq-z2", tmp_path / "bundle")
    assert json.loads((bundle / "manifest.json").read_text())["shapes"] == {"input": [32, 1], "output": [3]}
    drv = driver(bundle)
    acc = drv.Accelerator(bundle, backend="sim", batch_size=8)
    x = np.load(EXAMPLES / "conv1d" / "data.npz")["x_test"][:20].reshape(20, 32, 1)  # stored flat
    y = acc.predict(x)
    assert np.array_equal(y, bondflow.reference.run(g, x.reshape(20, -1)))
    with pytest.raises(drv.AcceleratorError, match=r"\(batch >= 1, 32\) or \(batch >= 1, 32, 1\), not \(20, 16, 2\)"):
        acc.predict(x.reshape(20, 16, 2))

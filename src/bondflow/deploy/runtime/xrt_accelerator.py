"""bondflow's data-centre driver: KernelAccelerator(bundle).predict(X) on an Alveo/F1 card through PYNQ's XRT path.

The contract is the Zynq driver's (``predict(X, profile=True) -> (y, seconds, inferences/s)``); the time of
the input transfer, the kernel run and the output transfer is kept apart in ``last_profile``, as the
original F1 deployment measured it. Needs numpy and pynq only.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

# The Zynq driver's module ships in every bundle: its errors, digest check and quantization are shared.
from .accelerator import AcceleratorError, BundleError, DeviceNotFoundError, DriverBase, _sha256
from .fixed import FixedType
from .stream import StreamFormat, pack_slots, unpack_slots

__all__ = ["KernelAccelerator", "AcceleratorError", "BundleError", "DeviceNotFoundError", "KernelTimeoutError"]
DRIVER_FORMAT = 1
_START, _DONE = 0x1, 0x2


class KernelTimeoutError(AcceleratorError):
    """The kernel did not raise ap_done in time."""


class KernelAccelerator(DriverBase):
    """One deployed kernel. ``backend``: 'pynq' on a card, 'sim' for the RTL simulation of the same kernel."""

    def __init__(self, bundle: str | Path, backend: str = "pynq", timeout_s: float = 10.0, batch_size: int | None = None,
                 simulator: str = "icarus", device_name: str | None = None) -> None:
        self.bundle = Path(bundle)
        mf = self.bundle / "manifest.json"
        if not mf.is_file():
            raise BundleError(f"bundle must contain manifest.json, not lack it: {self.bundle}")
        m = self.manifest = json.loads(mf.read_text())
        if m.get("driver_format") != DRIVER_FORMAT or m.get("kind") != "xrt-kernel":
            raise BundleError(f"bundle must be an xrt-kernel bundle of driver format {DRIVER_FORMAT}, not "
                              f"{m.get('kind', 'zynq-dma')} format {m.get('driver_format')} (made by bondflow {m.get('bondflow_version')})")
        k = m["kernel"]
        self._read_shapes(m)
        self.fin, self.fout = StreamFormat.from_dict(k["input"]["stream"]), StreamFormat.from_dict(k["output"]["stream"])
        self.in_slot, self.out_slot = k["input"]["slot_bytes"], k["output"]["slot_bytes"]
        self.regs = k["registers"]
        self.tin, self.tout = FixedType.parse(m["interface"]["input_type"]), FixedType.parse(m["interface"]["output_type"])
        self.timeout_s = timeout_s
        self.batch_size = int(batch_size or 4096)
        if self.batch_size < 1:
            raise AcceleratorError(f"batch size must be >= 1, not {batch_size}")
        if backend == "pynq":
            self._open_pynq()
        elif backend == "sim":
            self._open_sim(simulator, device_name)
        else:
            raise AcceleratorError(f"backend must be 'pynq' or 'sim', not {backend!r}")
        self.backend = backend
        if m["device_match"] not in self.device_name:
            raise BundleError(f"bundle is built for {m['board']} ({m['platform']}), not for this card ({self.device_name})")
        self.ibuf = self._allocate((self.batch_size * self.in_slot,), np.uint8)
        self.obuf = self._allocate((self.batch_size * self.out_slot,), np.uint8)
        self.last_profile: dict[str, float] = {}

    def _open_pynq(self) -> None:
        name = self.manifest.get("xclbin")
        if not name:
            raise BundleError(f"bundle must contain an xclbin for the 'pynq' backend, not lack one: {self.manifest['xclbin_howto']}")
        path = self.bundle / name
        if _sha256(path) != self.manifest["xclbin_sha256"]:
            raise BundleError(f"{path.name} must match the manifest's digest, not differ (modified xclbin)")
        try:
            import pynq
        except ImportError:
            raise DeviceNotFoundError("python package 'pynq' must be installed on the host, not missing") from None
        try:
            ol = pynq.Overlay(str(path))
        except RuntimeError as e:
            raise DeviceNotFoundError(f"an Alveo/F1 card must be visible to XRT for the 'pynq' backend, not missing ({e}); "
                                      "source /opt/xilinx/xrt/setup.sh, or use backend='sim'") from None
        self.kernel = getattr(ol, self.manifest["kernel"]["instance"])
        self.device_name = str(ol.device.name)
        bank = getattr(ol, self.manifest["pynq_memory"], None)
        self._allocate = (lambda shape, dtype: pynq.allocate(shape, dtype, target=bank)) if bank is not None else pynq.allocate

    def _open_sim(self, simulator: str, device_name: str | None) -> None:
        kdir = self.bundle / "kernel"
        if not (kdir / "design.json").is_file():
            raise BundleError("bundle must contain kernel/ (the kernel RTL) for the 'sim' backend, not lack it")
        from bondflow.deploy.simxrt import SimXrtDevice, make_kernel_ip  # bondflow is needed only to simulate
        self.device = SimXrtDevice(kdir, device_name or self.manifest["platform"], simulator)
        self.kernel = make_kernel_ip(self.device, self.manifest["kernel"])
        self.device_name = self.device.name
        self._allocate = self.device.allocate

    # -- one kernel run ------------------------------------------------------------------------------
    def run(self, n: int) -> None:
        """Run the kernel on the first ``n`` samples of ``ibuf`` (already synced) into ``obuf``."""
        cap = min(len(self.ibuf) // self.in_slot, len(self.obuf) // self.out_slot)
        if not 1 <= n <= cap:
            raise AcceleratorError(f"sample count must be between 1 and the buffers' {cap}, not {n}")
        if hasattr(self.kernel, "call"):  # PYNQ <= 3.0 builds call() from the xclbin's kernel metadata
            self.kernel.call(self.ibuf, self.obuf, n)
            return
        # PYNQ >= 3.1 dropped call(): program the ap_ctrl_hs registers the kernel description declares.
        for name, addr in (("in", self.ibuf.device_address), ("out", self.obuf.device_address)):
            self.kernel.write(self.regs[name], addr & 0xFFFF_FFFF)
            self.kernel.write(self.regs[name] + 4, addr >> 32)
        self.kernel.write(self.regs["n"], n)
        self.kernel.write(self.regs["CTRL"], _START)
        t0 = time.monotonic()
        while not self.kernel.read(self.regs["CTRL"]) & _DONE:  # ap_done clears on read: one read sees it
            if time.monotonic() - t0 > self.timeout_s:
                raise KernelTimeoutError(f"kernel must raise ap_done within {self.timeout_s} s, not hang "
                                         f"({n} samples; the design stalled or a memory port never answered)")
            time.sleep(0)

    # -- data path ----------------------------------------------------------------------------------
    def predict_raw(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.int64)
        prof = {"to_device_s": 0.0, "kernel_s": 0.0, "from_device_s": 0.0}
        out = []
        for i in range(0, len(raw), self.batch_size):
            chunk = raw[i:i + self.batch_size]
            n = len(chunk)
            t0 = time.perf_counter()
            self.ibuf[: n * self.in_slot] = np.frombuffer(pack_slots(self.fin, chunk, self.in_slot), dtype=np.uint8)
            self.ibuf.sync_to_device()
            t1 = time.perf_counter()
            self.run(n)
            t2 = time.perf_counter()
            self.obuf.sync_from_device()
            out.append(unpack_slots(self.fout, bytes(np.asarray(self.obuf[: n * self.out_slot])), self.out_slot))
            t3 = time.perf_counter()
            prof["to_device_s"] += t1 - t0
            prof["kernel_s"] += t2 - t1
            prof["from_device_s"] += t3 - t2
        self.last_profile = {**prof, "n": float(len(raw))}
        return np.concatenate(out)

"""bondflow's board driver: Accelerator(bundle).predict(X) over PYNQ's AXI DMA (needs only numpy and pynq).

Inputs are quantized exactly as bondflow's golden model does (the input type's rounding and overflow
modes; values outside the type's range are saturated or wrapped as that type says, with a warning),
packed into stream lanes, sent in batches, and outputs are checked for length and decoded.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .fixed import FixedType
from .stream import StreamFormat, pack, unpack

__all__ = ["Accelerator", "DriverBase", "AcceleratorError", "DeviceNotFoundError", "BundleError", "DmaTimeoutError"]
DRIVER_FORMAT = 1


class AcceleratorError(Exception):
    """Base of the driver's errors (one-line messages)."""


class BundleError(AcceleratorError):
    """The bundle is incomplete, modified, or from an incompatible bondflow version."""


class DeviceNotFoundError(AcceleratorError):
    """No FPGA device is visible (not on a board, or XRT/PYNQ not set up)."""


class DmaTimeoutError(AcceleratorError):
    """The DMA did not finish in time: the design hangs or TLAST never came."""


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


class DriverBase:
    """What every bondflow driver shares: exact input quantization and predict() around predict_raw()."""

    fin: StreamFormat
    tin: FixedType
    tout: FixedType
    in_shape: tuple[int, ...] = ()  # per-sample tensor shapes (channels last) when the bundle records them
    out_shape: tuple[int, ...] = ()

    def _read_shapes(self, manifest: dict[str, Any]) -> None:
        shapes = manifest.get("shapes") or {}
        self.in_shape, self.out_shape = tuple(shapes.get("input", ())), tuple(shapes.get("output", ()))

    def predict_raw(self, raw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_shape(self, x: np.ndarray) -> np.ndarray:
        """Rows of the flat sample (images flatten channels last, the stream's order); an empty batch is refused."""
        shaped = len(self.in_shape) > 1 and x.ndim == len(self.in_shape) + 1 and tuple(x.shape[1:]) == self.in_shape
        if shaped and len(x):
            return x.reshape(len(x), -1)
        if x.ndim != 2 or x.shape[1] != self.fin.n or len(x) == 0:
            also = f" or (batch >= 1, {', '.join(map(str, self.in_shape))})" if len(self.in_shape) > 1 else ""
            raise AcceleratorError(f"inputs must have shape (batch >= 1, {self.fin.n}){also}, not {x.shape}")
        return x

    def quantize(self, x: np.ndarray) -> np.ndarray:
        x = self._check_shape(np.asarray(x, dtype=np.float64))
        out_of_range = (x < self.tin.min_value) | (x > self.tin.max_value)
        if np.any(out_of_range):
            warnings.warn(f"{int(out_of_range.sum())} input values lie outside {self.tin}; "
                          f"they are {'saturated' if self.tin.overflow.value.startswith('SAT') else 'wrapped'} as that type specifies")
        return self.tin.quantize(x)

    def predict(self, X: np.ndarray, profile: bool = False):
        """Outputs as floats (exact values of the output type); with ``profile`` also (seconds, inferences/s)."""
        raw = self.quantize(X)
        t0 = time.perf_counter()
        y = self.tout.to_float(self.predict_raw(raw))
        if len(self.out_shape) > 1:  # a network that ends on an image returns images
            y = y.reshape((len(y),) + self.out_shape)
        dt = time.perf_counter() - t0
        return (y, dt, len(raw) / dt if dt > 0 else float("inf")) if profile else y


class Accelerator(DriverBase):
    """One deployed design. ``backend``: 'pynq' on a board, 'sim' for the RTL simulation of the same design."""

    def __init__(self, bundle: str | Path, backend: str = "pynq", timeout_s: float = 10.0,
                 batch_size: int | None = None, simulator: str = "icarus") -> None:
        self.bundle = Path(bundle)
        mf = self.bundle / "manifest.json"
        if not mf.is_file():
            raise BundleError(f"bundle must contain manifest.json, not lack it: {self.bundle}")
        self.manifest: dict[str, Any] = json.loads(mf.read_text())
        if self.manifest.get("kind", "zynq-dma") != "zynq-dma":
            raise BundleError(f"bundle must be for a Zynq board (AXI DMA), not {self.manifest['kind']} for {self.manifest.get('board')}")
        if self.manifest.get("driver_format") != DRIVER_FORMAT:
            raise BundleError(f"bundle driver format must be {DRIVER_FORMAT}, not {self.manifest.get('driver_format')} "
                              f"(made by bondflow {self.manifest.get('bondflow_version')})")
        iface = self.manifest["interface"]
        self._read_shapes(self.manifest)
        self.fin, self.fout = StreamFormat.from_dict(iface["input"]), StreamFormat.from_dict(iface["output"])
        self.tin, self.tout = FixedType.parse(iface["input_type"]), FixedType.parse(iface["output_type"])
        self.per_batch = self.manifest["tlast_mode"] == 1
        self.timeout_s = timeout_s
        max_bytes = (1 << self.manifest["dma"]["length_width"]) - 1
        self.batch_size = batch_size or max(1, min(1024, max_bytes // max(self.fin.bytes_per_sample, self.fout.bytes_per_sample)))
        if backend == "pynq":
            self._open_pynq()
        elif backend == "sim":
            self._open_sim(simulator)
        else:
            raise AcceleratorError(f"backend must be 'pynq' or 'sim', not {backend!r}")
        self.backend = backend

    def _open_pynq(self) -> None:
        bit = self.manifest.get("bitstream")
        if not bit:
            raise BundleError(f"bundle must contain a bitstream for the 'pynq' backend, not lack one: {self.manifest['bitstream_howto']}")
        bitp = self.bundle / bit
        if _sha256(bitp) != self.manifest["bitstream_sha256"]:
            raise BundleError(f"{bitp.name} must match the manifest's digest, not differ (modified bitstream)")
        try:
            import pynq
        except ImportError:
            raise DeviceNotFoundError("python package 'pynq' must be installed on the board, not missing") from None
        try:
            ol = pynq.Overlay(str(bitp))
        except RuntimeError as e:
            raise DeviceNotFoundError(f"an FPGA device must be present for the 'pynq' backend, not missing ({e}); "
                                      "run on a PYNQ board, or use backend='sim'") from None
        self.dma = ol.hier_0.axi_dma_0
        self._allocate = pynq.allocate

    def _open_sim(self, simulator: str) -> None:
        design = self.bundle / "design"
        if not (design / "design.json").is_file():
            raise BundleError("bundle must contain design/ (the RTL) for the 'sim' backend, not lack it")
        from bondflow.deploy.simdevice import SimDevice, make_dma  # bondflow is needed only to simulate
        self.device = SimDevice(design, self.fin, self.fout, self.per_batch, simulator)
        self.dma = make_dma(self.device, self.manifest["dma"]["data_width"], self.manifest["dma"]["length_width"])
        self._allocate = self.device.allocate

    # -- data path ----------------------------------------------------------------------------------
    def _wait(self, channel: Any, what: str) -> None:
        t0 = time.monotonic()
        while not channel.idle:
            if channel.error:
                channel.wait()  # raises PYNQ's own error text
            if time.monotonic() - t0 > self.timeout_s:
                raise DmaTimeoutError(f"DMA {what} must finish within {self.timeout_s} s, not hang "
                                      "(no TLAST from the design, or the design stalled)")
            time.sleep(0)
        channel.wait()

    def _run_batch(self, raw: np.ndarray) -> np.ndarray:
        n = len(raw)
        ibuf = self._allocate((n * self.fin.bytes_per_sample,), np.uint8)
        ibuf[:] = np.frombuffer(pack(self.fin, raw), dtype=np.uint8)
        frames_per_transfer = n if self.per_batch else 1
        out = []
        self.dma.sendchannel.transfer(ibuf)
        for _ in range(n // frames_per_transfer):
            want = frames_per_transfer * self.fout.bytes_per_sample
            obuf = self._allocate((want,), np.uint8)
            self.dma.recvchannel.transfer(obuf)
            self._wait(self.dma.recvchannel, "receive")
            if self.dma.recvchannel.transferred != want:
                raise AcceleratorError(f"DMA receive must return {want} bytes, not {self.dma.recvchannel.transferred} "
                                       "(TLAST at the wrong place)")
            out.append(unpack(self.fout, bytes(np.array(obuf))))
        self._wait(self.dma.sendchannel, "send")
        return np.concatenate(out)

    def predict_raw(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.int64)
        return np.concatenate([self._run_batch(raw[i:i + self.batch_size]) for i in range(0, len(raw), self.batch_size)])

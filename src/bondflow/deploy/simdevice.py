"""A PYNQ device in simulation: AXI DMA registers and DDR modelled in Python, the design's RTL run in cocotb.

The driver uses PYNQ's own ``pynq.lib.dma.DMA`` class unchanged; only the device underneath is simulated
(a ``pynq.pl_server.device.Device`` with the REGISTER_RW capability), so register programming, length
limits, idle polling and cache flush/invalidate all go through real PYNQ code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..stream import StreamFormat

__all__ = ["SimDevice", "SimBuffer", "make_dma", "DMA_BASE"]

DMA_BASE = 0x4040_0000
_MM2S, _S2MM = 0x00, 0x30
_CR, _SR, _ADDR, _LEN = 0x00, 0x04, 0x18, 0x28
_SR_HALTED, _SR_IDLE = 0x1, 0x2


class SimBuffer(np.ndarray):
    """A contiguous host buffer with a physical address; flush/invalidate copy to/from the simulated DDR."""

    device: "SimDevice"
    physical_address: int

    def flush(self) -> None:
        self.device.ddr_write(self.physical_address, self.tobytes())

    def invalidate(self) -> None:
        raw = self.device.ddr_read(self.physical_address, self.nbytes)
        self[...] = np.frombuffer(raw, dtype=self.dtype).reshape(self.shape)

    def freebuffer(self) -> None:
        pass

    def sync_to_device(self) -> None:
        self.flush()

    def sync_from_device(self) -> None:
        self.invalidate()


def _device_base():
    from pynq.pl_server.device import Device
    return Device


class SimDevice(_device_base()):  # type: ignore[misc]
    """One simulated board: a DMA at DMA_BASE in front of the design directory's RTL."""

    capabilities = {"REGISTER_RW": True}

    def __init__(self, design_dir: str | Path, fin: StreamFormat, fout: StreamFormat, tlast_per_batch: bool,
                 simulator: str = "icarus") -> None:
        super().__init__("bondflow-sim")
        self.design_dir, self.fin, self.fout = Path(design_dir), fin, fout
        self.tlast_per_batch, self.simulator = tlast_per_batch, simulator
        self.regs: dict[int, int] = {_MM2S + _SR: _SR_HALTED, _S2MM + _SR: _SR_HALTED}
        self.ddr: dict[int, bytearray] = {}
        self._next_addr = 0x1000_0000
        self._frames: list[bytes] = []  # output frames produced but not yet taken by an S2MM transfer
        self._pending_in: bytes | None = None
        self.transfers = 0

    # -- memory ---------------------------------------------------------------------------------
    def allocate(self, shape: Any, dtype: Any, **_: Any) -> SimBuffer:
        buf = np.zeros(shape, dtype=dtype).view(SimBuffer)
        buf.device, buf.physical_address = self, self._next_addr
        self.ddr[self._next_addr] = bytearray(buf.nbytes)
        self._next_addr += (buf.nbytes + 0xFFF) & ~0xFFF or 0x1000
        return buf

    def _region(self, addr: int) -> tuple[bytearray, int]:
        for base, mem in self.ddr.items():
            if base <= addr < base + max(len(mem), 1):
                return mem, addr - base
        raise RuntimeError(f"DMA Decode Error (invalid address 0x{addr:x})")

    def ddr_write(self, addr: int, data: bytes) -> None:
        mem, off = self._region(addr)
        mem[off:off + len(data)] = data

    def ddr_read(self, addr: int, n: int) -> bytes:
        mem, off = self._region(addr)
        return bytes(mem[off:off + n])

    # -- registers (pynq.mmio._AccessHook calls these) -----------------------------------------------
    def read_registers(self, address: int, length: int) -> bytes:
        return self.regs.get(address - DMA_BASE, 0).to_bytes(length, "little")

    def write_registers(self, address: int, data: bytes) -> None:
        off = address - DMA_BASE
        value = int.from_bytes(data, "little")
        self.regs[off] = value
        ch = _MM2S if off < _S2MM else _S2MM
        reg = off - ch
        if reg == _CR:
            self.regs[ch + _SR] = (_SR_IDLE if value & 1 else _SR_HALTED)
        elif reg == _LEN:
            self.regs[ch + _SR] = 0  # busy
            if ch == _MM2S:
                self._pending_in = self.ddr_read(self.regs[ch + _ADDR] | self.regs.get(ch + _ADDR + 4, 0) << 32, value)
            self._advance()

    def _advance(self) -> None:
        """Run the RTL once input is queued; serve armed S2MM transfers from produced frames."""
        if self._pending_in is not None:
            data, self._pending_in = self._pending_in, None
            n = len(data) // self.fin.bytes_per_sample
            if len(data) % self.fin.bytes_per_sample:
                raise RuntimeError(f"MM2S length must be a multiple of {self.fin.bytes_per_sample} bytes, not {len(data)}")
            from ..sim.runner import stream_bytes
            self._frames += stream_bytes(self.design_dir, data, n * self.fout.bytes_per_sample, self.simulator)
            self.transfers += 1
            self.regs[_MM2S + _SR] = _SR_IDLE
        if self.regs.get(_S2MM + _SR) == 0 and self._frames:
            frame = self._frames.pop(0)
            cap = self.regs[_S2MM + _LEN]
            if len(frame) > cap:  # the real DMA would stall the stream; report it as its internal error
                self.regs[_S2MM + _SR] = 0x10 | _SR_IDLE
                return
            addr = self.regs[_S2MM + _ADDR] | self.regs.get(_S2MM + _ADDR + 4, 0) << 32
            self.ddr_write(addr, frame)
            self.regs[_S2MM + _LEN] = len(frame)  # bytes actually received, as S2MM_LENGTH reports
            self.regs[_S2MM + _SR] = _SR_IDLE


def make_dma(device: SimDevice, data_width_bits: int = 64, length_width: int = 26):
    """PYNQ's real AxiDMA driver bound to the simulated device (simple mode, no interrupts)."""
    from pynq.lib.dma import DMA
    params = {"c_include_sg": "0", "c_sg_length_width": str(length_width), "c_include_mm2s": "1",
              "c_include_s2mm": "1", "c_m_axi_mm2s_data_width": str(data_width_bits),
              "c_m_axi_s2mm_data_width": str(data_width_bits), "c_include_mm2s_dre": "0", "c_include_s2mm_dre": "0",
              "c_micro_dma": "0"}
    return DMA({"device": device, "phys_addr": DMA_BASE, "addr_range": 0x10000, "parameters": params,
                "interrupts": {}, "gpio": {}, "fullpath": "hier_0/axi_dma_0", "type": "xilinx.com:ip:axi_dma:7.1"})

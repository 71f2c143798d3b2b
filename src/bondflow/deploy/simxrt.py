"""An Alveo/F1 card in simulation: device memory and kernel registers in Python, the kernel's RTL run in cocotb.

The driver talks to PYNQ's own ``DefaultIP``/``MMIO`` classes unchanged; only the device underneath is
simulated (a ``pynq.pl_server.device.Device`` with the REGISTER_RW capability). Writing ap_start runs the
kernel RTL once: device memory is preloaded, the host's register values are replayed over AXI-Lite, and
the memory the kernel wrote is copied back, so results come from the RTL's own AXI4 masters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .kernel import CTRL_DONE, CTRL_IDLE, CTRL_START, REGISTERS

__all__ = ["SimXrtDevice", "SimXrtBuffer", "make_kernel_ip", "KERNEL_BASE"]

KERNEL_BASE = 0x0180_0000  # where the kernel's AXI-Lite control sits in the host's register space
_DEVICE_MEMORY = 0x4_0000_0000  # buffers above 4 GiB: the address registers' high words matter


class SimXrtBuffer(np.ndarray):
    """A host buffer mirrored in simulated device memory (PYNQ's XRT buffer interface)."""

    device: "SimXrtDevice"
    device_address: int
    physical_address: int

    def sync_to_device(self) -> None:
        self.device.memory[self.device_address] = bytearray(self.tobytes())

    def sync_from_device(self) -> None:
        raw = bytes(self.device.memory[self.device_address])
        self[...] = np.frombuffer(raw, dtype=self.dtype).reshape(self.shape)

    def flush(self) -> None:
        self.sync_to_device()

    def invalidate(self) -> None:
        self.sync_from_device()

    def freebuffer(self) -> None:
        pass


def _device_base():
    from pynq.pl_server.device import Device
    return Device


class SimXrtDevice(_device_base()):  # type: ignore[misc]
    """One simulated card named ``name`` (the XRT shell name) with the bundle's kernel at KERNEL_BASE."""

    capabilities = {"REGISTER_RW": True}

    def __init__(self, kernel_dir: str | Path, name: str, simulator: str = "icarus", max_cycles: int = 2_000_000,
                 backpressure: bool = False) -> None:
        super().__init__("bondflow-sim-xrt")
        self.kernel_dir, self._name, self.simulator = Path(kernel_dir), name, simulator
        self.max_cycles, self.backpressure = max_cycles, backpressure
        self.memory: dict[int, bytearray] = {}
        self.regs: dict[int, int] = {REGISTERS["CTRL"]: CTRL_IDLE}
        self._next = _DEVICE_MEMORY
        self.runs: list[Any] = []  # KernelRun of every start, for tests and profiling
        self.hung = False

    @property
    def name(self) -> str:
        return self._name

    def allocate(self, shape: Any, dtype: Any, **_: Any) -> SimXrtBuffer:
        buf = np.zeros(shape, dtype=dtype).view(SimXrtBuffer)
        buf.device, buf.device_address = self, self._next
        buf.physical_address = self._next
        self.memory[self._next] = bytearray(buf.nbytes)
        self._next += max(0x1000, (buf.nbytes + 0xFFF) & ~0xFFF)  # XRT buffers are 4 KiB aligned
        return buf

    def read_registers(self, address: int, length: int) -> bytes:
        off = address - KERNEL_BASE
        value = self.regs.get(off, 0)
        if off == REGISTERS["CTRL"]:
            self.regs[off] = value & ~CTRL_DONE  # ap_done clears on read, as in the RTL
        return value.to_bytes(length, "little")

    def write_registers(self, address: int, data: bytes) -> None:
        off = address - KERNEL_BASE
        value = int.from_bytes(data, "little")
        if off == REGISTERS["CTRL"]:
            if value & CTRL_START and not self.hung:
                self._run()
            return
        self.regs[off] = value

    def _run(self) -> None:
        from ..sim.kernel import run_kernel
        args = {REGISTERS["in"], REGISTERS["in"] + 4, REGISTERS["out"], REGISTERS["out"] + 4, REGISTERS["n"]}
        writes = [(off, v) for off, v in sorted(self.regs.items()) if off in args]
        writes.append((REGISTERS["CTRL"], CTRL_START))
        regions = sorted(self.memory)
        r = run_kernel(self.kernel_dir, [(a, bytes(self.memory[a])) for a in regions], writes,
                       [(a, len(self.memory[a])) for a in regions], simulator=self.simulator,
                       backpressure=self.backpressure, timeout_cycles=self.max_cycles)
        self.runs.append(r)
        if not r.done:  # the kernel never finished: it stays busy, as a hung card would
            self.hung = True
            self.regs[REGISTERS["CTRL"]] = 0
            return
        for a, data in zip(regions, r.reads):
            self.memory[a][:] = data
        self.regs[REGISTERS["CTRL"]] = CTRL_DONE | CTRL_IDLE
        self.regs[REGISTERS["STATUS"]] = r.status
        self.regs[REGISTERS["CYCLES"]], self.regs[REGISTERS["CYCLES"] + 4] = r.cycles & 0xFFFF_FFFF, r.cycles >> 32


def make_kernel_ip(device: SimXrtDevice, kernel: dict[str, Any]):
    """PYNQ's real DefaultIP bound to the simulated card's kernel registers."""
    from pynq.overlay import DefaultIP
    regs = {name: {"address_offset": off, "size": 64 if name in ("in", "out", "CYCLES") else 32,
                   "type": "void*" if name in ("in", "out") else "unsigned int", "access": "read-write",
                   "description": name, "fields": {}}
            for name, off in kernel["registers"].items()}
    return DefaultIP({"device": device, "phys_addr": KERNEL_BASE, "addr_range": 0x1000, "registers": regs,
                      "fullpath": kernel["instance"], "type": f"bondflow.org:kernel:{kernel['name']}:1.0"})

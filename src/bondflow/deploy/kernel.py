"""The data-centre RTL kernel: memory layout of samples, the register map, and the kernel Design around any core."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..codegen.render import header, render, static_rtl
from ..design import Design, Interface
from ..errors import ConfigError, DesignError
from ..stream import StreamFormat

__all__ = ["KernelLayout", "SlotFormat", "kernel_layout", "kernel_design", "layout_from_dict", "start_writes", "REGISTERS", "KERNEL_NAME",
           "CTRL_START", "CTRL_DONE", "CTRL_IDLE", "CTRL_READY"]

KERNEL_NAME = "bondflow_kernel"
#: Byte offsets of the AXI-Lite registers, in the layout Vitis uses for ap_ctrl_hs kernels (HLS's spacing).
REGISTERS = {"CTRL": 0x00, "GIE": 0x04, "IER": 0x08, "ISR": 0x0C, "in": 0x10, "out": 0x1C, "n": 0x28,
             "STATUS": 0x30, "CYCLES": 0x38}
CTRL_START, CTRL_DONE, CTRL_IDLE, CTRL_READY = 0x1, 0x2, 0x4, 0x8
_WORDS = (32, 64, 128, 256, 512)  # AXI4 data widths Vitis links
WRITE_BURST = 32  # longest write burst, in words (see the template: a burst starts once all its words are buffered)


def _pow2_at_least(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


@dataclass(frozen=True)
class SlotFormat:
    """One tensor per sample in device memory: a power-of-two slot holding the stream beats, zero padded."""

    stream: StreamFormat
    slot_bytes: int
    word_bits: int

    @property
    def words_per_slot(self) -> int:
        return self.slot_bytes * 8 // self.word_bits

    @property
    def burst_words(self) -> int:
        """Longest burst: 256 beats, and never more than 4 KiB (a burst may not cross a 4 KiB boundary)."""
        return min(256, 4096 // (self.word_bits // 8))

    def to_dict(self) -> dict[str, Any]:
        return {"slot_bytes": self.slot_bytes, "word_bits": self.word_bits, "words_per_slot": self.words_per_slot,
                "stream": self.stream.to_dict()}


def _slot(fmt: StreamFormat, word_bits: int | None) -> SlotFormat:
    slot = max(4, _pow2_at_least(fmt.bytes_per_sample))
    if word_bits is None:
        word_bits = min(512, slot * 8)
    if word_bits not in _WORDS or word_bits > slot * 8:
        allowed = [w for w in _WORDS if w <= slot * 8]
        raise ConfigError(f"kernel memory width must be one of {allowed} bits for {slot}-byte slots, not {word_bits}")
    return SlotFormat(fmt, slot, word_bits)


@dataclass(frozen=True)
class KernelLayout:
    """How samples sit in the card's memory and how wide the kernel's two AXI4 masters are."""

    inp: SlotFormat
    out: SlotFormat

    def to_dict(self) -> dict[str, Any]:
        return {"kernel": KERNEL_NAME, "registers": dict(REGISTERS), "input": self.inp.to_dict(),
                "output": self.out.to_dict(), "protocol": "ap_ctrl_hs"}


def kernel_layout(iface: Interface, in_word_bits: int | None = None, out_word_bits: int | None = None) -> KernelLayout:
    """Default: one memory word per sample slot (up to 512 bits), so the kernel moves a sample per cycle."""
    return KernelLayout(_slot(iface.input, in_word_bits), _slot(iface.output, out_word_bits))


def _log2(n: int) -> int:
    return n.bit_length() - 1


def render_kernel(layout: KernelLayout, graph_digest: str, arch: str) -> str:
    i, o = layout.inp, layout.out
    return render("kernel/xrt_kernel.v.j2", header=header(f"{arch} + XRT kernel", graph_digest),
                  inp=i.stream, out=o.stream, w0=i.word_bits, w1=o.word_bits, k0=i.words_per_slot, k1=o.words_per_slot,
                  lgk0=_log2(i.words_per_slot), lgk1=_log2(o.words_per_slot), s0=i.slot_bytes * 8, s1=o.slot_bytes * 8,
                  lg0=_log2(i.word_bits // 8), lg1=_log2(o.word_bits // 8), d0=2 * i.burst_words, d1=2 * min(o.burst_words, WRITE_BURST),
                  wburst=min(o.burst_words, WRITE_BURST),
                  n_in_slot_bytes=i.slot_bytes, n_out_slot_bytes=o.slot_bytes)


def kernel_design(design: Design, in_word_bits: int | None = None, out_word_bits: int | None = None) -> Design:
    """The design's RTL plus the kernel wrapper, as a Design whose top is ``bondflow_kernel``."""
    if design.language != "verilog" or design.interface is None:
        raise DesignError(f"design must have RTL behind the stream shell to become a kernel, not '{design.language}' ({design.arch})")
    layout = kernel_layout(design.interface, in_word_bits, out_word_bits)
    files = dict(design.files)
    files["rtl/bondflow_kfifo.v"] = static_rtl("bondflow_kfifo.v")
    files["rtl/bondflow_kernel.v"] = render_kernel(layout, design.graph_digest, design.arch)
    return Design(arch=f"{design.arch}+kernel", top=KERNEL_NAME, language="verilog", files=files, interface=design.interface,
                  graph_digest=design.graph_digest,
                  rtl_files=(*design.rtl_files, "rtl/bondflow_kfifo.v", "rtl/bondflow_kernel.v"),
                  latency_cycles=None, ii_cycles=design.ii_cycles,
                  options={"core": dict(design.options), "core_arch": design.arch, "core_digest": design.digest(),
                           "in_word_bits": layout.inp.word_bits, "out_word_bits": layout.out.word_bits},
                  info={**dict(design.info), "kernel": layout.to_dict(), "core_latency_cycles": design.latency_cycles,
                        "clock_port": "ap_clk"},
                  generator_version=__version__)


def start_writes(in_addr: int, out_addr: int, n: int) -> list[tuple[int, int]]:
    """The host's register writes for one run, in order: buffer addresses (low, high words), count, ap_start."""
    return [(REGISTERS["in"], in_addr & 0xFFFF_FFFF), (REGISTERS["in"] + 4, in_addr >> 32),
            (REGISTERS["out"], out_addr & 0xFFFF_FFFF), (REGISTERS["out"] + 4, out_addr >> 32),
            (REGISTERS["n"], n), (REGISTERS["CTRL"], CTRL_START)]


def layout_from_dict(d: dict[str, Any]) -> KernelLayout:
    """The layout recorded in a kernel design's info (what the driver and the testbench read)."""
    def slot(s: dict[str, Any]) -> SlotFormat:
        return SlotFormat(StreamFormat.from_dict(s["stream"]), s["slot_bytes"], s["word_bits"])
    return KernelLayout(slot(d["input"]), slot(d["output"]))


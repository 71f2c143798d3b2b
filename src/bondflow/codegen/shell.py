"""The common AXI-Stream shell (module ``bondflow_top``) around any core, and the design Interface."""
from __future__ import annotations

from ..design import Interface
from ..errors import ConfigError
from ..ir.graph import Graph
from ..stream import StreamFormat
from .render import header, render

__all__ = ["render_shell", "interface_for", "shell_latency", "SHELL_REGISTERS", "ADAPTER_LATENCY", "TLAST_PER_SAMPLE", "TLAST_PER_BATCH"]

#: Cycles the shell adds around any core for a one-beat sample: its input register and its output register.
SHELL_REGISTERS = 2
#: Cycles bondflow_pipe_adapter adds behind a fixed-latency pipeline: the write into its output FIFO.
ADAPTER_LATENCY = 1

TLAST_PER_SAMPLE = 0  # TLAST on the last beat of every output sample (default)
TLAST_PER_BATCH = 1  # TLAST on the output sample whose input ended with TLAST: one DMA transfer per batch


def interface_for(graph: Graph, in_tdata_bits: int | None = None, out_tdata_bits: int | None = None) -> Interface:
    """Stream formats of a graph's input and output (default: one beat per sample)."""
    i, o = graph.input, graph.output
    try:
        return Interface(StreamFormat.for_tensor(i.size, i.type.width, i.type.signed, in_tdata_bits),
                         StreamFormat.for_tensor(o.size, o.type.width, o.type.signed, out_tdata_bits),
                         str(i.type), str(o.type))
    except ValueError as e:  # stream.py is numpy-only (it ships in deploy bundles): map to our error type
        raise ConfigError(f"stream width: {e}") from None


def shell_latency(iface: Interface, adapter: bool) -> int:
    """Cycles the common wrapping adds to a core's own latency (more input beats take longer to collect)."""
    return SHELL_REGISTERS + (ADAPTER_LATENCY if adapter else 0) + iface.input.beats - 1


def render_shell(core_module: str, iface: Interface, graph_digest: str, arch: str, tlast_mode: int = TLAST_PER_SAMPLE,
                 stream_in: bool = False) -> str:
    """Verilog of ``bondflow_top`` wrapping ``core_module`` (which has the core interface of docs/interface.md).

    ``stream_in``: the core takes input beats as they arrive (``in_data`` is one beat's lanes) instead of whole samples.
    """
    return render("shell/axis_shell.v.j2", header=header(arch, graph_digest), core=core_module,
                  inp=iface.input, out=iface.output, tlast_mode=tlast_mode, stream_in=stream_in)

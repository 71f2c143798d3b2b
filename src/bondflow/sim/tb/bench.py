"""What every bondflow testbench starts with: the clock, the active-low reset, and the AXI-Stream source and sink."""
from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiStreamBus, AxiStreamSink, AxiStreamSource

__all__ = ["PERIOD_NS", "start_streams"]

PERIOD_NS = 10


async def start_streams(dut) -> tuple[AxiStreamSource, AxiStreamSink]:
    """Start the clock, hold ``rst_n`` low for 5 cycles, and return the source/sink bound to s_axis/m_axis."""
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rst_n.value = 0
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst_n, reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst_n, reset_active_level=False)
    await ClockCycles(dut.clk, 5)
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 2)
    return source, sink

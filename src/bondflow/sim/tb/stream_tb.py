"""cocotb testbench for raw stream traffic: replays DMA-like transfers and returns the output frames.

Used by the PYNQ simulation backend: the bytes of one MM2S transfer go in as one frame (TLAST on its last
beat, as the AXI DMA does), and output frames are collected until the expected number of samples is out.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


@cocotb.test()
async def replay(dut) -> None:
    cfg = json.loads(Path(os.environ["BONDFLOW_STREAM_CONFIG"]).read_text())
    data = Path(cfg["input"]).read_bytes()
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst_n.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst_n, reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst_n, reset_active_level=False)
    await ClockCycles(dut.clk, 5)
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 2)
    await source.send(AxiStreamFrame(data))
    frames, got, error = [], 0, None
    try:
        while got < cfg["out_bytes"]:
            f = await with_timeout(sink.recv(), cfg["timeout_cycles"] * 10, "ns")
            frames.append(bytes(f.tdata).hex())
            got += len(f.tdata)
    except cocotb.triggers.SimTimeoutError:
        error = f"timeout: {got} of {cfg['out_bytes']} output bytes after {cfg['timeout_cycles']} cycles"
    Path(cfg["result"]).write_text(json.dumps({"frames": frames, "error": error}))

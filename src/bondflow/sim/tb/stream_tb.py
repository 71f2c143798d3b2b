"""cocotb testbench for raw stream traffic: replays DMA-like transfers and returns the output frames.

Used by the PYNQ simulation backend: the bytes of one MM2S transfer go in as one frame (TLAST on its last
beat, as the AXI DMA does), and output frames are collected until the expected number of samples is out.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import with_timeout
from cocotbext.axi import AxiStreamFrame

from bondflow.sim.tb.bench import PERIOD_NS, start_streams


@cocotb.test()
async def replay(dut) -> None:
    cfg = json.loads(Path(os.environ["BONDFLOW_STREAM_CONFIG"]).read_text())
    data = Path(cfg["input"]).read_bytes()
    source, sink = await start_streams(dut)
    await source.send(AxiStreamFrame(data))
    frames, got, error = [], 0, None
    try:
        while got < cfg["out_bytes"]:
            f = await with_timeout(sink.recv(), cfg["timeout_cycles"] * PERIOD_NS, "ns")
            frames.append(bytes(f.tdata).hex())
            got += len(f.tdata)
    except cocotb.triggers.SimTimeoutError:
        error = f"timeout: {got} of {cfg['out_bytes']} output bytes after {cfg['timeout_cycles']} cycles"
    Path(cfg["result"]).write_text(json.dumps({"frames": frames, "error": error}))

"""cocotb testbench for the XRT kernel: AXI4 memory (cocotbext-axi AxiRam halves), an AXI-Lite host, and a run.

The configuration names memory regions to preload, register writes to replay (the host's, in order, the
last one setting ap_start), and regions to read back once ap_done is seen. With back-pressure on, every
memory channel (AR, R, AW, W, B) stalls at random.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiReadBus, AxiWriteBus
from cocotbext.axi.axi_ram import AxiRamRead, AxiRamWrite
from cocotbext.axi.sparse_memory import SparseMemory

PERIOD_NS = 4  # 250 MHz, a typical data-centre kernel clock
CTRL, STATUS, CYCLES = 0x00, 0x30, 0x38
DONE = 0x2


def _stalls(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


@cocotb.test()
async def run_kernel(dut) -> None:
    cfg = json.loads(Path(os.environ["BONDFLOW_KERNEL_CONFIG"]).read_text())
    rng = random.Random(cfg.get("seed", 0))
    cocotb.start_soon(Clock(dut.ap_clk, PERIOD_NS, unit="ns").start())
    dut.ap_rst_n.value = 0
    mem = SparseMemory(2 ** 48)  # len() must fit a C ssize_t; 256 TiB covers every card
    rd = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi_gmem0"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False, mem=mem)
    wr = AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi_gmem1"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False, mem=mem)
    host = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    if cfg.get("backpressure", True):
        for ch in (rd.ar_channel, rd.r_channel, wr.aw_channel, wr.w_channel, wr.b_channel):
            ch.set_pause_generator(_stalls(random.Random(rng.random()), 0.3))
    for region in cfg["preload"]:
        mem.write(region["addr"], bytes.fromhex(region["data"]))
    await ClockCycles(dut.ap_clk, 5)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 2)
    for off, value in cfg["writes"]:
        await host.write_dword(off, value)
    t0 = get_sim_time("ns")
    done, polls, error = False, 0, None
    while not done:
        await ClockCycles(dut.ap_clk, cfg.get("poll_cycles", 16))
        done = bool(await host.read_dword(CTRL) & DONE)
        polls += 1
        if (get_sim_time("ns") - t0) / PERIOD_NS > cfg["timeout_cycles"]:
            error = f"timeout: ap_done not raised within {cfg['timeout_cycles']} cycles"
            break
    await RisingEdge(dut.ap_clk)
    result = {"done": done, "error": error, "polls": polls,
              "status": await host.read_dword(STATUS),
              "cycles": await host.read_dword(CYCLES) | (await host.read_dword(CYCLES + 4)) << 32,
              "ctrl_after": await host.read_dword(CTRL),
              "reads": [bytes(mem.read(r["addr"], r["length"])).hex() for r in cfg["reads"]]}
    Path(cfg["result"]).write_text(json.dumps(result))

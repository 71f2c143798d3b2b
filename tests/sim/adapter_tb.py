"""cocotb test of bondflow_pipe_adapter around a fake LATENCY-deep pipeline (y = x + 1): order, count, II."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge


@cocotb.test()
async def adapter(dut) -> None:
    cfg = json.loads(Path(os.environ["ADAPTER_TB_CONFIG"]).read_text())
    rng = random.Random(cfg["seed"])
    n = cfg["n"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst_n.value = 0
    dut.in_valid.value = 0
    dut.out_ready.value = 0
    dut.in_data.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst_n.value = 1

    async def run(count: int, p_idle: float, p_stall: float) -> tuple[list[int], list[int], int]:
        """Offer ``count`` values with random idles while the consumer stalls at random; return sent, got, cycles."""
        sent, got, cycles, nxt = [], [], 0, 0
        stall = 0
        while len(got) < count:
            offer = nxt < count and rng.random() >= p_idle
            dut.in_valid.value = int(offer)
            dut.in_data.value = nxt & 0xFFFF
            if stall == 0 and rng.random() < p_stall / 10:
                stall = rng.randint(3, 30)  # long stalls fill the FIFO
            ready = stall == 0 and rng.random() >= p_stall
            stall = max(stall - 1, 0)
            dut.out_ready.value = int(ready)
            await ReadOnly()
            if offer and int(dut.in_ready.value):
                sent.append(nxt)
                nxt += 1
            if ready and int(dut.out_valid.value):
                got.append(int(dut.out_data.value))
            await RisingEdge(dut.clk)
            cycles += 1
            assert cycles < 100 * count + 1000, f"no progress: {len(got)} of {count} outputs"
        dut.in_valid.value = 0
        return sent, got, cycles

    sent, got, _ = await run(n, 0.3, 0.4)
    assert got == [(v + 1) & 0xFFFF for v in sent], "outputs must be the inputs + 1, in order, none lost or repeated"
    # Nothing may follow: the adapter must be empty.
    dut.out_ready.value = 1
    await ReadOnly()
    extra = 0
    for _ in range(cfg["latency"] + 5):
        await RisingEdge(dut.clk)
        await ReadOnly()
        extra += int(dut.out_valid.value)
    assert extra == 0, f"{extra} extra outputs after the last"
    await RisingEdge(dut.clk)
    # No back-pressure, no idles: steady-state cycles per sample.
    sent, got, cycles = await run(200, 0.0, 0.0)
    assert got == [(v + 1) & 0xFFFF for v in sent]
    Path(cfg["result"]).write_text(json.dumps({"ii": (cycles - cfg["latency"] - 1) / 200}))

"""cocotb testbench for any bondflow_top: drives AXI-Stream with random idle/back-pressure, checks every output.

Configuration comes from the JSON file named by $BONDFLOW_SIM_CONFIG; results go to the JSON file it names.
Phases: (1) one sample, no back-pressure: latency; (2) a burst, no back-pressure: steady-state II;
(3) all vectors with random source idles and sink back-pressure: bit-exact comparison.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiStreamFrame

from bondflow.sim.tb.bench import PERIOD_NS, start_streams
from bondflow.stream import StreamFormat, pack, unpack



class Recorder:
    """Cycle counter plus the cycles of every input and output beat handshake."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.cycle = 0
        self.in_beats: list[int] = []
        self.out_beats: list[int] = []

    async def run(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            self.cycle += 1
            if int(d.s_axis_tvalid.value) and int(d.s_axis_tready.value):
                self.in_beats.append(self.cycle)
            if int(d.m_axis_tvalid.value) and int(d.m_axis_tready.value):
                self.out_beats.append(self.cycle)

    def clear(self) -> None:
        self.in_beats.clear()
        self.out_beats.clear()


def _bits(pattern_seed: int, p_one: float):
    """Pause pattern: random single cycles (probability ``p_one``) plus occasional long stalls that fill every buffer."""
    rng = random.Random(pattern_seed)
    while True:
        if rng.random() < 0.005:
            yield from [1] * rng.randint(5, 40)
        else:
            yield 1 if rng.random() < p_one else 0


@cocotb.test()
async def stream_vectors(dut) -> None:
    cfg = json.loads(Path(os.environ["BONDFLOW_SIM_CONFIG"]).read_text())
    vec = np.load(cfg["vectors"])
    x, want = vec["inputs"], vec["expected"]
    fin, fout = StreamFormat.from_dict(cfg["input"]), StreamFormat.from_dict(cfg["output"])
    per_batch = cfg.get("tlast_mode", 0) == 1
    timeout_ns = int(cfg["timeout_cycles"]) * PERIOD_NS
    result: dict = {"n": int(len(x)), "mismatches": 0, "first_mismatches": [], "error": None}
    t0 = time.monotonic()

    source, sink = await start_streams(dut)
    rec = Recorder(dut)
    cocotb.start_soon(rec.run())

    class FramingError(Exception):
        """TLAST on the wrong beat: the output cannot be split into samples."""

    def frame_samples(frame: AxiStreamFrame, n: int) -> np.ndarray:
        data = bytes(frame.tdata)
        if len(data) != n * fout.bytes_per_sample:
            raise FramingError(f"TLAST must end every {'batch' if per_batch else 'sample'} after {n * fout.beats} beat(s) "
                               f"({n * fout.bytes_per_sample} bytes), not after {len(data)} bytes")
        return unpack(fout, data)

    progress = Path(cfg["progress"]) if cfg.get("progress") else None
    every = max(1, len(x) // 100)  # about a hundred appended counts per run: cheap to write, smooth to show

    def tell(n: int) -> None:
        """Append how many vectors of the main phase are back; the runner follows this file for its progress bar."""
        if progress is not None and (n % every == 0 or n == len(x)):
            with progress.open("a") as f:
                f.write(f"{n}\n")

    async def exchange(samples: np.ndarray, count: bool = False) -> np.ndarray:
        """Send samples, receive as many outputs; frames are samples (per-sample TLAST) or one batch."""
        if per_batch:
            await source.send(AxiStreamFrame(pack(fin, samples)))
            frame = await with_timeout(sink.recv(), timeout_ns, "ns")
            return frame_samples(frame, len(samples))
        for s in samples:
            await source.send(AxiStreamFrame(pack(fin, s[None, :])))
        got = []
        for i in range(len(samples)):
            frame = await with_timeout(sink.recv(), timeout_ns, "ns")
            got.append(frame_samples(frame, 1))
            if count:
                tell(i + 1)
        return np.concatenate(got)

    bad_vectors: dict[int, dict] = {}  # vector index -> its first mismatch (a vector counts once over all phases)

    def compare(got: np.ndarray, idx: np.ndarray, phase: str) -> None:
        for i in np.nonzero(np.any(got != want[idx], axis=1))[0]:
            bad_vectors.setdefault(int(idx[i]), {"index": int(idx[i]), "input": x[idx[i]].tolist(),
                                                 "expected": want[idx[i]].tolist(), "got": got[i].tolist(), "phase": phase})
        result["mismatches"] = len(bad_vectors)
        result["first_mismatches"] = list(bad_vectors.values())[:10]

    try:
        # (1) latency of one sample, nothing in flight
        rec.clear()
        first = await exchange(x[:1])
        result["latency_cycles"] = rec.out_beats[0] - rec.in_beats[0]
        await ClockCycles(dut.clk, 5)
        # (2) steady-state initiation interval over a burst
        n_burst = min(len(x), 64)
        rec.clear()
        burst = await exchange(x[:n_burst])
        starts = rec.out_beats[:: fout.beats]
        result["ii_cycles"] = (starts[-1] - starts[0]) / (len(starts) - 1) if len(starts) > 1 else None
        await ClockCycles(dut.clk, 5)
        # (3) everything, under random source idles and sink back-pressure
        if cfg.get("backpressure", True):
            source.set_pause_generator(_bits(cfg["seed"], 0.3))
            sink.set_pause_generator(_bits(cfg["seed"] + 1, 0.4))
        cycles_before = rec.cycle
        got = await exchange(x, count=True)
        tell(len(x))  # per-batch framing counts nothing on the way
        result["cycles"] = rec.cycle - cycles_before
        # Phase (3) first: its indices are the vectors' own; the measuring phases are checked too.
        compare(got, np.arange(len(x)), "all, back-pressure" if cfg.get("backpressure", True) else "all")
        compare(first, np.arange(1), "latency")
        compare(burst, np.arange(n_burst), "II burst")
        # Nothing may follow the last sample: a duplicated sample would show up here.
        sink.set_pause_generator(None)
        sink.pause = False  # a removed generator leaves its last value
        n_out = len(rec.out_beats)
        await ClockCycles(dut.clk, 2 * int(cfg.get("latency_cycles") or 0) + 50)
        extra = len(rec.out_beats) - n_out
        if extra or not sink.empty():
            result["error"] = f"the design must emit one output sample per input sample, not {extra} extra beat(s) after the last"
    except cocotb.triggers.SimTimeoutError:
        result["error"] = f"timeout: no output within {cfg['timeout_cycles']} cycles (the design hangs or lost a sample)"
    except FramingError as e:
        result["error"] = str(e)
    result["total_cycles"] = rec.cycle
    result["wall_seconds"] = time.monotonic() - t0
    Path(cfg["result"]).write_text(json.dumps(result))
    assert result["error"] is None, result["error"]
    assert result["mismatches"] == 0, f"{result['mismatches']} of {len(x)} outputs differ from the reference"

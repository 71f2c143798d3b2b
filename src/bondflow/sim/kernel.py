"""Run the XRT kernel's RTL in cocotb: preload device memory, replay host register writes, read results back."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..design import Design
from ..errors import DesignError, SimulationError
from .runner import _build, _require_simulator, _run_testbench

__all__ = ["KernelRun", "run_kernel"]


@dataclass(frozen=True)
class KernelRun:
    """What one kernel run did: whether ap_done rose, its STATUS and cycle registers, and the memory read back."""

    done: bool
    error: str | None
    status: int
    cycles: int
    polls: int
    reads: tuple[bytes, ...]


def run_kernel(kernel_dir: str | Path, preload: Sequence[tuple[int, bytes]], writes: Sequence[tuple[int, int]],
               reads: Sequence[tuple[int, int]], simulator: str = "icarus", backpressure: bool = True, seed: int = 0,
               timeout_cycles: int = 500_000) -> KernelRun:
    """One run of ``bondflow_kernel`` in ``kernel_dir`` (a kernel Design directory); the build is cached there."""
    _require_simulator(simulator)
    kernel_dir = Path(kernel_dir).resolve()
    design = Design.load(kernel_dir)
    if design.top != "bondflow_kernel":
        raise DesignError(f"kernel design must have top bondflow_kernel, not {design.top!r}: {kernel_dir}")
    root = kernel_dir / "sim"
    build_dir, _ = _build(design, root, simulator, False)
    run_dir = Path(tempfile.mkdtemp(prefix="kernel-", dir=root))
    try:
        cfg = {"preload": [{"addr": a, "data": d.hex()} for a, d in preload], "writes": [list(w) for w in writes],
               "reads": [{"addr": a, "length": n} for a, n in reads], "backpressure": backpressure, "seed": seed,
               "timeout_cycles": timeout_cycles, "result": str(run_dir / "result.json")}
        (run_dir / "cfg.json").write_text(json.dumps(cfg))
        try:
            _run_testbench(simulator, "bondflow.sim.tb.kernel_tb", design, build_dir, run_dir,
                           {"BONDFLOW_KERNEL_CONFIG": str(run_dir / "cfg.json"), "COCOTB_RANDOM_SEED": str(seed)},
                           run_dir / "sim.log")
        except (RuntimeError, SystemExit) as e:
            if not (run_dir / "result.json").exists():
                raise SimulationError(f"{simulator} must run the kernel testbench, not fail: {e}") from None
        if not (run_dir / "result.json").exists():
            log = (run_dir / "sim.log").read_text()[-400:] if (run_dir / "sim.log").exists() else ""
            raise SimulationError(f"kernel testbench must write its result, not end without one: {log}")
        r = json.loads((run_dir / "result.json").read_text())
        return KernelRun(done=r["done"], error=r["error"], status=r["status"], cycles=r["cycles"], polls=r["polls"],
                         reads=tuple(bytes.fromhex(h) for h in r["reads"]))
    finally:
        if os.environ.get("BONDFLOW_KEEP_SIM") is None:
            shutil.rmtree(run_dir, ignore_errors=True)

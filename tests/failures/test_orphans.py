"""SIGKILL of the bondflow process alone (not its group): the watchdog kills the simulator it had started."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bondflow
from bondflow.reaper import _descendants, _stat
from simgraphs import one_layer

pytestmark = pytest.mark.sim


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the watchdog needs Linux /proc")
def test_killed_bondflow_leaves_no_simulator_running(tmp_path, need_tool) -> None:
    need_tool("iverilog")
    d = bondflow.generate(one_layer(seed=5, n_in=4, n_out=3), "reference").write(tmp_path / "design")
    proc = subprocess.Popen([sys.executable, "-m", "bondflow.cli.main", "sim", str(d), "--vectors", "2000000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sim = None
        deadline = time.monotonic() + 120
        while sim is None and time.monotonic() < deadline:  # wait until Icarus' runtime runs the testbench
            sim = next((p for p in _descendants(proc.pid) if _comm(p) == "vvp"), None)
            time.sleep(0.2)
        assert sim is not None, "the simulator never started"
        start = _stat(sim)[1]
        time.sleep(1.0)  # at least one watchdog poll sees the simulator
        os.kill(proc.pid, signal.SIGKILL)  # bondflow alone, as `kill -9 PID` does
        proc.wait()
        deadline = time.monotonic() + 10
        while (st := _stat(sim)) is not None and st[1] == start and time.monotonic() < deadline:
            time.sleep(0.1)
        st = _stat(sim)
        assert st is None or st[1] != start or Path(f"/proc/{sim}/status").read_text().count("State:\tZ"), \
            "the simulator outlived the killed bondflow process"
    finally:
        if proc.poll() is None:
            proc.kill()

"""The CLI end to end on the reference core: generate from a graph JSON (linted), then sim with its printed report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simgraphs import one_layer

pytestmark = pytest.mark.sim


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", *args], capture_output=True, text=True)


def test_generate_then_sim(tmp_path: Path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("verilator")
    g = tmp_path / "g.json"
    g.write_text(one_layer().to_json())
    out = tmp_path / "ref"
    r = _cli("generate", str(g), "--arch", "reference", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "latency 6 cycles, II 1" in r.stdout and (out / "design.json").exists()
    again = _cli("generate", str(g), "--arch", "reference", "-o", str(out))
    assert again.returncode != 0 and "--force" in again.stderr
    assert _cli("generate", str(g), "--arch", "reference", "-o", str(out), "--force").returncode == 0
    bad_opt = _cli("generate", str(g), "--arch", "reference", "-o", str(tmp_path / "x"), "--reuse-factor", "2")
    assert bad_opt.returncode != 0 and "must be among" in bad_opt.stderr and not (tmp_path / "x").exists()

    s = _cli("sim", str(out), "--simulator", "icarus", "--vectors", "1000", "--seed", "7", "--out", str(tmp_path / "res"))
    assert s.returncode == 0, s.stdout + s.stderr
    for words in ("PASS", "vectors 1000, mismatches 0", "latency 6 cycles", "II 1.0", "cycles/s", "wall", "Icarus"):
        assert words in s.stdout
    saved = json.loads((tmp_path / "res" / "sim_result.json").read_text())
    assert saved["passed"] and saved["vectors"] == 1000 and saved["seed"] == 7 and saved["backpressure"]
    assert not (out / "sim_result.json").exists()  # --out moved it
    nb = _cli("sim", str(out), "--vectors", "50", "--no-backpressure")
    assert nb.returncode == 0 and "back-pressure off" in nb.stdout
    assert json.loads((out / "sim_result.json").read_text())["backpressure"] is False


def test_sim_bad_input(tmp_path: Path) -> None:
    r = _cli("sim", str(tmp_path), "--vectors", "10")
    assert r.returncode != 0 and "design.json" in r.stderr and "Traceback" not in r.stderr
    r = _cli("sim", str(tmp_path), "--vectors", "0")
    assert r.returncode != 0 and "--vectors must be >= 1, not 0" in r.stderr

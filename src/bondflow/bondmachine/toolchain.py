"""Drive neuralbond -> basm -> bondmachine in fresh directories, recording every step; find the neuron library."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import ToolFailedError, ToolNotFoundError
from ..progress import get_reporter
from ..tools import find_tool, run_tool
from .provenance import read_provenance, snapshot_candidates

__all__ = ["BM_PIN", "BM_MODULE", "TOOLS_MISSING", "find_neuron_library", "prepare_library", "run_flow", "step_timeout", "FlowResult",
           "missing_tools", "OUR_NEURONS", "locate_neuron_library"]

BM_MODULE = "github.com/BondMachineHQ/BondMachine"
BM_PIN = os.environ.get("BM_VERSION", "c9e6992")
#: Why tests skip (without --require-tools) when the tools are missing.
TOOLS_MISSING = "BondMachine Go tools not installed: run make setup (go install at the pin, else the source snapshot)"
#: Neurons we ship (written for bondflow) that replace the pinned library's broken ones.
OUR_NEURONS = ("relu",)
_INSTALL = (f"make setup (CGO_ENABLED=0 go install {BM_MODULE}/cmd/{{tool}}@{BM_PIN}, else a source snapshot of that "
            f"commit: BM_SRC=/path/to/BondMachine/checkout)")


def missing_tools() -> list[str]:
    return [t for t in ("neuralbond", "basm", "bondmachine") if find_tool(t) is None]


def _require_tools() -> None:
    miss = missing_tools()
    if miss:
        raise ToolNotFoundError(miss[0], _INSTALL.format(tool=miss[0]))


def _is_library(p: Path) -> bool:
    return (p / "weight.nb").is_file() and (p / "frag-weight.basm").is_file()


def _go_mod_library() -> Path | None:
    """The pinned module's library from ``go mod download`` (works where the Go proxy serves the module)."""
    go = shutil.which("go")
    if not go:
        return None
    try:
        r = subprocess.run([go, "mod", "download", "-json", f"{BM_MODULE}@{BM_PIN}"], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL, cwd="/")
        d = json.loads(r.stdout or "{}").get("Dir") if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    return Path(d) / "library" / "neurons" if d and _is_library(Path(d) / "library" / "neurons") else None


def locate_neuron_library() -> tuple[Path, str]:
    """The neuron library and where it was found: ``$BONDFLOW_BM_LIBRARY``, ``$BM_SRC``, the tools' provenance
    (the source they were built from), a source snapshot of the pinned commit, then ``go mod download``."""
    env = os.environ.get("BONDFLOW_BM_LIBRARY")
    if env:
        if not _is_library(Path(env)):
            raise ToolNotFoundError("BondMachine neuron library",
                                    f"BONDFLOW_BM_LIBRARY must name a library/neurons directory (with weight.nb), not {env}")
        return Path(env), "BONDFLOW_BM_LIBRARY"
    src = os.environ.get("BM_SRC")
    if src and _is_library(Path(src) / "library" / "neurons"):
        return Path(src) / "library" / "neurons", "BM_SRC"
    prov = read_provenance()
    if prov and prov.get("library") and _is_library(Path(prov["library"])):
        return Path(prov["library"]), f"the tools' source ({prov.get('method', '?')})"
    for snap in snapshot_candidates():
        if _is_library(snap / "library" / "neurons"):
            return snap / "library" / "neurons", "source snapshot"
    lib = _go_mod_library()
    if lib is not None:
        return lib, f"go mod download {BM_MODULE}@{BM_PIN}"
    raise ToolNotFoundError("BondMachine neuron library",
                            f"set BONDFLOW_BM_LIBRARY=/path/to/BondMachine/library/neurons, or BM_SRC=/path/to/checkout, "
                            f"or make `go mod download {BM_MODULE}@{BM_PIN}` work")


def find_neuron_library() -> Path:
    """The neuron library directory (see :func:`locate_neuron_library` for the search order)."""
    return locate_neuron_library()[0]


def prepare_library(dest: Path) -> Path:
    """Copy the upstream library (read-only in the module cache) into ``dest``, then overlay our own neurons."""
    src = find_neuron_library()
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            (dest / f.name).write_bytes(f.read_bytes())
    ours = files("bondflow") / "hdl_templates" / "bondmachine" / "neurons"
    for f in ours.iterdir():
        if f.name.endswith((".nb", ".basm")):
            (dest / f.name).write_text(f.read_text())
    return dest


@dataclass(frozen=True)
class FlowResult:
    """Where the flow left its outputs and what each step did."""

    workdir: Path
    basm: Path
    bondmachine_json: Path
    bminfo: Path
    hdl_dir: Path
    steps: tuple[dict[str, Any], ...]


def step_timeout(net: dict[str, Any]) -> float:
    """Seconds one tool may run on ``net``: 15 min, plus 1 s per node beyond 900.

    basm and bondmachine grow faster than linearly with the processors (the jet tagger's 4,225 took 400 s on an idle
    machine and over 900 s on a loaded one), so a fixed limit killed big nets that were making progress.
    """
    return 900.0 + max(len(net.get("Nodes", ())) - 900, 0)


def run_flow(net: dict[str, Any], config: dict[str, Any], number_type: str, register_size: int, workdir: Path,
             benchmark_core: bool = False, timeout: float | None = None) -> FlowResult:
    """Run the ML flow of the notes (fragment mode, sync I/O) in ``workdir``, which must not exist yet
    (the tools never overwrite their outputs, so a reused directory would silently keep stale files).

    ``timeout`` (seconds per tool) defaults to :func:`step_timeout` of the net's size."""
    _require_tools()
    timeout = step_timeout(net) if timeout is None else timeout
    workdir = Path(workdir).absolute()  # the tools run in subfolders: a relative library path would not resolve
    workdir.mkdir(parents=True)
    lib = prepare_library(workdir / "neurons")
    config = {**config, "NeuronLibPath": str(lib)}
    (workdir / "net.json").write_text(json.dumps(net, indent=1))
    (workdir / "config.json").write_text(json.dumps(config, indent=1))
    (workdir / "config.in.json").write_text(json.dumps(config, indent=1))  # neuralbond rewrites config.json on exit
    (workdir / "bminfo.json").write_text("{}")  # must exist before neuralbond runs
    (workdir / "simbox.json").write_text("{}")  # the iverilog flavour's testbench dereferences the simbox: no rules
    wd, hdl, logs = workdir / "wd", workdir / "wd" / "hdl", workdir / "logs"
    hdl.mkdir(parents=True)
    steps: list[dict[str, Any]] = []

    what = {"neuralbond": "network -> assembly", "basm": "assembling and wiring the processors, the long step on big networks",
            "bondmachine": "Verilog"}

    def step(tool: str, args: list[str], cwd: Path, expect: Path) -> None:
        log = logs / f"{len(steps) + 1}-{tool}.log"
        get_reporter().step(f"  BondMachine {len(steps) + 1}/3: {tool}: {what[tool]}")
        try:
            r = run_tool(tool, args, cwd=cwd, log=log, timeout=timeout)
        except ToolFailedError as e:
            tail = "\n".join(log.read_text().splitlines()[-12:]) if log.exists() else e.stderr_tail
            steps.append({"tool": tool, "cmd": list(e.cmd), "rc": e.rc, "log": str(log)})
            (workdir / "steps.json").write_text(json.dumps(steps, indent=1))
            raise ToolFailedError(tool, e.rc, log, tail, e.cmd) from None
        steps.append({**r.to_dict(), "log": str(log.relative_to(workdir))})
        if not expect.exists():  # basm reports some errors as an "[Alert]" line and still exits 0
            text = log.read_text()
            alerts = [l for l in text.splitlines() if "[Alert]" in l or "rror" in l]
            raise ToolFailedError(tool, r.rc, log, (alerts[-1] if alerts else text[-400:]) + f" (no {expect.name} written)", r.cmd)

    step("neuralbond", ["-net-file", "net.json", "-neuron-lib-path", str(lib), "-config-file", "config.json",
                        "-bminfo-file", "bminfo.json", "-save-basm", "wd/bondmachine.basm", "-operating-mode", "fragment",
                        "-io-mode", "sync", "-data-type", number_type, "-register-size", str(register_size)], workdir,
         wd / "bondmachine.basm")
    # Only the fragments of the neurons this net uses (the library's other fragments and its romcode files
    # are parsed by basm for nothing: about 15 % of its time on Iris).
    used = {"terminal", "weight"} | {n["Type"] for n in net["Nodes"] if n["Type"] not in ("input", "output")}
    frags = sorted(str(lib / f"frag-{n}.basm") for n in used)
    step("basm", ["-bminfo-file", "../bminfo.json", "-dump-requirements", "requirements.json", "-disable-dynamical-matching",
                  "-chooser-min-word-size", "-chooser-force-same-name", "-o", "bondmachine.json", "bondmachine.basm", *frags], wd,
         wd / "bondmachine.json")
    bm_args = ["-bondmachine-file", "../bondmachine.json", "-create-verilog", "-verilog-flavor", "iverilog",
               "-bminfo-file", "../../bminfo.json", "-bmrequirements-file", "../requirements.json",
               "-hw-optimizations", "onlydestregs,onlysrcregs", "-verilog-simulation", "-simbox-file", "../../simbox.json"]
    if benchmark_core:
        bm_args += ["-attach-benchmark-core", "i0," + _output_terminal_port(workdir)]
    step("bondmachine", bm_args, hdl, hdl / "bondmachine.v")
    (workdir / "steps.json").write_text(json.dumps(steps, indent=1))
    return FlowResult(workdir, wd / "bondmachine.basm", wd / "bondmachine.json", workdir / "bminfo.json", hdl, tuple(steps))


def _output_terminal_port(workdir: Path) -> str:
    """``p<K>o0`` of the first output terminal CP, K read from basm's CPNames (Go-map order changes between runs)."""
    info = json.loads((workdir / "bminfo.json").read_text())
    names = info.get("CPNames") or {}
    outs = [n for n, t in (info.get("List") or {}).items() if t == "output"]
    for k, name in names.items():
        if name in outs and name.endswith("_0"):
            return f"p{k}o0"
    raise ToolFailedError("basm", 0, workdir / "bminfo.json", "bminfo.json must name the output terminal CP, not lack it")

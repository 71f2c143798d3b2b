"""Synthesis: yosys estimates for Xilinx, real ECP5/iCE40 bitstreams, cache, Vivado scripts (golden) and a fake Vivado."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bondflow
from bondflow.errors import ConfigError, DesignError, DoesNotFitError, ToolNotFoundError
from bondflow.synth.flow import synthesize
from bondflow.synth.nextpnr import BITSTREAM_MAGIC
from bondflow.synth.targets import get_target
from bondflow.synth.vivado import write_vivado_scripts
from simgraphs import one_layer

pytestmark = pytest.mark.synth
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples"


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory):
    return bondflow.generate(one_layer(), "reference").write(tmp_path_factory.mktemp("s") / "ref")


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory):
    g = bondflow.load_model(EXAMPLES / "iris" / "model.h5")
    return bondflow.generate(g, "dataflow").write(tmp_path_factory.mktemp("s") / "iris")


def test_xilinx_estimates_from_json(ref_dir, need_tool) -> None:
    need_tool("yosys")
    r = synthesize(ref_dir, "xc7z020")
    assert r.lut > 0 and r.ff > 0 and not r.placed
    assert sum(n for c, n in r.cells.items() if c.startswith("LUT")) <= r.lut
    assert (ref_dir / "synth_report.json").exists() and r.vivado_scripts


@pytest.mark.parametrize("target,family", [("ecp5-25k", "ecp5"), ("ice40-hx8k", "ice40")])
def test_lattice_bitstream(ref_dir, target, family, need_tool) -> None:
    need_tool("yosys")
    need_tool(f"nextpnr-{family}")
    r = synthesize(ref_dir, target, bitstream=True)
    data = Path(r.bitstream).read_bytes()
    assert len(data) > 10_000 and data[:2] == b"\xff\x00"
    assert BITSTREAM_MAGIC[family] in data[:256]
    assert r.placed and r.fmax_mhz and r.fmax_mhz > 0 and r.timing_met == (r.fmax_mhz >= r.clock_mhz)


def test_router2_is_used_and_cached_apart(ref_dir, need_tool) -> None:
    need_tool("yosys")
    need_tool("nextpnr-ecp5")
    default = synthesize(ref_dir, "ecp5-25k", bitstream=True)
    r = synthesize(ref_dir, "ecp5-25k", bitstream=True, router="router2")
    assert r.placed and BITSTREAM_MAGIC["ecp5"] in Path(r.bitstream).read_bytes()[:256]
    assert Path(r.bitstream).parent != Path(default.bitstream).parent  # its own cache entry
    log = (Path(r.bitstream).parent / "nextpnr.live.log").read_text()
    assert "router2" in log.lower(), log[-500:]


def test_cache_hit_is_instant(ref_dir, need_tool) -> None:
    need_tool("yosys")
    synthesize(ref_dir, "xc7z020")
    r = synthesize(ref_dir, "xc7z020")
    assert r.cached


def test_unknown_target_lists_known() -> None:
    with pytest.raises(ConfigError, match="xc7z020, xczu9eg"):
        get_target("xc9999")


def test_does_not_fit_is_refused_before_pnr(iris_dir, need_tool) -> None:
    need_tool("yosys")
    with pytest.raises(DoesNotFitError, match=r"must fit ice40-up5k, not need \d+ LUT of 5280"):
        synthesize(iris_dir, "ice40-up5k", bitstream=True)


def test_lut6_count_refuses_a_smaller_lut4_part_before_yosys(tmp_path, need_tool) -> None:
    need_tool("yosys")
    d = bondflow.generate(one_layer(n_in=24, n_out=24), "dataflow").write(tmp_path / "wide")
    x = synthesize(d, "xc7z020")
    assert x.lut > get_target("ice40-up5k").luts  # the premise: more 6-input LUTs than the iCE40 has 4-input ones
    with pytest.raises(DoesNotFitError, match=rf"must fit ice40-up5k, not need at least {x.lut} LUTs \(its xc7z020 synthesis"):
        synthesize(d, "ice40-up5k", bitstream=True)
    assert not list((d / "synth").glob("ice40-up5k-*"))  # refused before any yosys run
    # (test_lattice_bitstream: a part the bound allows still synthesizes after an xc7z020 run of the same design)


def test_xilinx_bitstream_needs_vivado(ref_dir, monkeypatch) -> None:
    monkeypatch.setenv("BONDFLOW_VIVADO", "/nonexistent/vivado")
    with pytest.raises(ToolNotFoundError, match="vivado"):
        synthesize(ref_dir, "xc7z020", vivado=True, force=True)


def test_hls_design_is_not_synthesizable_here(tmp_path) -> None:
    from bondflow.design import Design
    d = Design(arch="hls4ml", top="myproject", language="hls-c++", files={"graph.json": one_layer().to_json()},
               interface=None, graph_digest=one_layer().digest())
    with pytest.raises(DesignError, match="Vitis HLS"):
        synthesize(d.write(tmp_path / "h"), "xc7z020")


def test_fake_vivado_reports_are_parsed(ref_dir, monkeypatch, need_tool) -> None:
    """The vendor path with a FAKE vivado (tests/synth/fake_tools): its reports land in the same JSON fields."""
    need_tool("yosys")
    monkeypatch.setenv("BONDFLOW_VIVADO", str(HERE / "fake_tools" / "vivado"))
    r = synthesize(ref_dir, "xc7z020", vivado=True)
    assert (r.tool, r.lut, r.ff, r.dsp, r.bram, r.timing_met) == ("vivado", 321, 250, 12, 1, True)


@pytest.mark.parametrize("target", ["xc7z020", "xcu250"])
def test_vivado_tcl_golden(tmp_path, target) -> None:
    paths = write_vivado_scripts(["rtl/a.v", "rtl/bondflow_top.v"], get_target(target), 100.0, tmp_path, "0" * 64)
    for p in paths:
        golden = HERE / "golden" / f"{target}_{p.name}"
        if os.environ.get("UPDATE_GOLDEN"):
            golden.write_text(p.read_text())
        assert p.read_text() == golden.read_text(), f"{p.name} differs from {golden} (UPDATE_GOLDEN=1 regenerates)"


def test_cli_synth(ref_dir, need_tool) -> None:
    need_tool("yosys")
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "synth", str(ref_dir), "--target", "xc7z020"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "LUT" in r.stdout
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "synth", str(ref_dir), "--target", "bogus"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "must be one of" in r.stderr

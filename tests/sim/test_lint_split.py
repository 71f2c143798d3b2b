"""Large designs are linted module by module behind port stubs, and simulator "auto" says what it picked (tiny designs)."""
from __future__ import annotations

import dataclasses

import pytest

import bondflow
import bondflow.sim.lint as lint_mod
import bondflow.sim.runner as runner
from bondflow.design import Design

from simgraphs import one_layer


@pytest.fixture(scope="module")
def design() -> Design:
    return bondflow.generate(one_layer(n_in=5, n_out=3), "dataflow")


def test_port_stub_keeps_ports_only(design: Design) -> None:
    rel = next(r for r in design.rtl_files if r.endswith("_fc.v"))
    module, stub = lint_mod.port_stub(design.files[rel])
    assert module == "bondflow_dataflow_fc" and "input  wire clk" in stub and "always" not in stub
    assert stub.rstrip().endswith("`default_nettype wire") and "endmodule" in stub
    assert lint_mod.port_stub("module a(input wire x);\nendmodule\nmodule b(input wire y);\nendmodule\n") is None


def test_split_lint_is_clean_and_still_checks_modules_and_ports(design: Design, need_tool, monkeypatch) -> None:
    need_tool("verilator")
    monkeypatch.setattr(lint_mod, "SPLIT_TOTAL_CHARS", 0)
    monkeypatch.setattr(lint_mod, "SPLIT_FILE_CHARS", 1000)  # the layer, the shell and the adapter: not requant
    r = lint_mod.lint(design)
    assert r.clean and r.runs > 2, r.messages
    files = dict(design.files)
    layer = next(r for r in design.rtl_files if r.endswith("_fc.v"))
    files[layer] = files[layer].replace("endmodule", "    wire spare;\nendmodule")  # unused and undriven, in a split file
    core = next(r for r in design.rtl_files if r.endswith("_core.v"))
    files[core] = files[core].replace(".x(in_data)", ".x(in_data[7:0])")  # a port width only the stub run sees
    msgs = " ".join(lint_mod.lint(dataclasses.replace(design, files=files), check=False).messages)
    assert "spare" in msgs and "'x' expects" in msgs, msgs


def test_auto_simulator_picks_verilator_for_large_rtl_and_says_so(design: Design, monkeypatch) -> None:
    sim, why = runner.choose_simulator(design)
    assert sim == "icarus" and "automatically" in why
    monkeypatch.setattr(runner, "AUTO_VERILATOR_CHARS", 100)
    monkeypatch.setattr(runner, "find_tool", lambda tool: "/usr/bin/" + tool)
    sim, why = runner.choose_simulator(design)
    assert sim == "verilator" and "--simulator icarus" in why
    monkeypatch.setattr(runner, "find_tool", lambda tool: None)
    assert runner.choose_simulator(design)[0] == "icarus"
    r = runner.SimResult("d", "dataflow", sim, "v", True, 1, 0, simulator_choice=why)
    assert why in r.summary()

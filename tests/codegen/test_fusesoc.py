"""Every Verilog design directory carries a FuseSoC core file that FuseSoC's own CAPI2 parser reads back exactly."""
from __future__ import annotations

import pytest

import bondflow
from bondflow.design import Design
from bondflow.fusesoc_core import CORE_FILE
from simgraphs import one_layer


@pytest.mark.parametrize("arch", ["dataflow", "moldable", "reference"])
def test_core_file_parses_with_fusesoc(arch: str, tmp_path) -> None:
    from fusesoc.capi2.core import CoreInterface
    from fusesoc.capi2.coreparser import Core2Parser
    d = bondflow.generate(one_layer(seed=3), arch)
    out = d.write(tmp_path / arch)
    core = CoreInterface(Core2Parser(), out / CORE_FILE)
    assert str(core.name) == f"bondflow:{arch}:ref:1.0.0"
    assert core.get_toplevel({}) == d.top
    assert [f["name"] for f in core.get_files({})] == list(d.rtl_files)  # compile order kept
    assert all((out / f).is_file() for f in d.rtl_files)
    assert Design.load(out).digest() == d.digest()  # the core file is derived, not part of the design's digest

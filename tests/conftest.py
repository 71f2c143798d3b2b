"""Shared fixtures: per-test output dirs, tool checks; --require-tools turns a missing installable tool into a failure."""
from __future__ import annotations

import pytest

from bondflow.tools import has_tool

# Tools `make setup` installs on every machine: under --require-tools their absence fails the test.
INSTALLABLE = {"iverilog", "verilator", "yosys", "nextpnr-ecp5", "nextpnr-ice40", "ecppack", "icepack", "g++", "chromium",
               "neuralbond", "basm", "bondmachine", "bmnumbers"}
#: The BondMachine tools (Go, built by make setup from the pinned commit or its source snapshot).
BM_TOOLS = ("neuralbond", "basm", "bondmachine")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--require-tools", action="store_true",
                     help="fail (not skip) when a tool that make setup installs is missing")


@pytest.fixture
def need_tool(request: pytest.FixtureRequest):
    """Call need_tool('yosys'): skips without it, or fails under --require-tools for installable tools."""
    def check(name: str) -> None:
        if has_tool(name):
            return
        if request.config.getoption("--require-tools") and name in INSTALLABLE:
            pytest.fail(f"tool {name} must be installed by make setup, not missing")
        pytest.skip(f"{name} not installed")
    return check


@pytest.fixture
def need_bm(need_tool, request: pytest.FixtureRequest) -> None:
    """The BondMachine tools and neuron library: skip without them, fail under --require-tools."""
    for t in BM_TOOLS:
        need_tool(t)
    from bondflow.bondmachine.toolchain import find_neuron_library
    from bondflow.errors import ToolNotFoundError
    try:
        find_neuron_library()
    except ToolNotFoundError as e:
        if request.config.getoption("--require-tools"):
            pytest.fail(str(e))
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def da4ml(request: pytest.FixtureRequest) -> str:
    """da4ml's version in its own venv (make setup creates .venv-da4ml): skips without it, fails under --require-tools."""
    from bondflow.codegen.da4ml.env import da4ml_version
    from bondflow.errors import MissingDependencyError
    try:
        return da4ml_version()
    except MissingDependencyError as e:
        if request.config.getoption("--require-tools"):
            pytest.fail(str(e))
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def hgq(request: pytest.FixtureRequest) -> str:
    """The directory holding HGQ2 (make setup's .venv-hgq; run in child processes only): skips without it, fails
    under --require-tools."""
    from bondflow.errors import MissingDependencyError
    from bondflow.frontend.hgq_runtime import hgq_path
    try:
        return str(hgq_path())
    except MissingDependencyError as e:
        if request.config.getoption("--require-tools"):
            pytest.fail(str(e))
        pytest.skip(str(e))

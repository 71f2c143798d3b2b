"""Fixtures for the harness tests."""
from __future__ import annotations

import pytest

from bondflow.ir.graph import Graph
from simgraphs import one_layer


@pytest.fixture(scope="module")
def ref_graph() -> Graph:
    return one_layer()

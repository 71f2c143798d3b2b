"""Import a deploy bundle's own driver package in tests (what a board or card host would run)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def driver(bundle: Path) -> ModuleType:
    """The bundle's bondflow_driver, freshly imported from the bundle (not a repository copy)."""
    for name in [m for m in sys.modules if m.startswith("bondflow_driver")]:
        del sys.modules[name]
    sys.path.insert(0, str(bundle))
    try:
        return importlib.import_module("bondflow_driver")
    finally:
        sys.path.remove(str(bundle))

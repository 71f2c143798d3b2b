"""Test helper: copies of Keras 3 ``.keras`` archives with their config.json edited (bad-input and wiring tests)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Callable


def edited_keras(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the .keras zip at ``dst`` whose config.json ``edit`` changed in place; other members byte for byte."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "config.json":
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    return dst

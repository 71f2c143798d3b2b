"""Layering rules (docs: architecture): ir depends on numpy only; the board driver on numpy and pynq only."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "bondflow"


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add(("." * node.level) + (node.module or ""))
    return out


def test_ir_uses_numpy_and_itself_only() -> None:
    allowed_top = {"numpy", "networkx", "hashlib", "json", "re", "dataclasses", "enum", "pathlib", "typing", "__future__",
                   "ctypes", "functools", "math"}  # ctypes: libm's tanhf, the function hls4ml's tanh table calls
    for f in (SRC / "ir").glob("*.py"):
        for mod in imports(f):
            if mod.startswith(".."):
                assert mod in ("..errors", "..fsutil", "..codegen.render"), f"{f.name} imports {mod}"
            elif not mod.startswith("."):
                assert mod.split(".")[0] in allowed_top, f"{f.name} imports {mod}"


def test_board_driver_needs_only_numpy_and_pynq() -> None:
    f = SRC / "deploy" / "runtime" / "accelerator.py"
    tree = ast.parse(f.read_text())
    top_level = set()
    for node in tree.body:  # module-level imports: what the board must have
        if isinstance(node, ast.Import):
            top_level |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top_level.add(("." * node.level) + (node.module or "").split(".")[0])
    assert top_level <= {"__future__", "hashlib", "json", "time", "warnings", "pathlib", "typing", "numpy", ".fixed", ".stream"}


def test_heavy_imports_are_lazy() -> None:
    """tensorflow, onnx, qonnx, cocotb and pynq are imported inside functions, never at module level."""
    heavy = {"tensorflow", "tf_keras", "qkeras", "onnx", "qonnx", "cocotb", "cocotb_tools", "pynq", "hls4ml"}
    for f in SRC.rglob("*.py"):
        if "tb" in f.parts or f.name == "simdevice.py":
            continue  # testbenches run inside the simulator; the simulated device is only imported for backend='sim'
        for node in ast.parse(f.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for n in names:
                assert n.split(".")[0] not in heavy, f"{f.relative_to(SRC)} imports {n} at module level"

"""Lint generated RTL with `verilator --lint-only -Wall`; a warning is a generator bug and is reported as one."""
from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..design import Design
from ..errors import TemplateRenderError
from ..tools import require_tool

__all__ = ["LintResult", "lint"]


@dataclass(frozen=True)
class LintResult:
    clean: bool
    messages: tuple[str, ...]
    files: int


def lint(design: Design | str | Path, check: bool = True) -> LintResult:
    """Lint the design's own RTL (files listed in ``info['lint_exclude']`` are kept verbatim from other tools)."""
    d = design if isinstance(design, Design) else Design.load(design)
    exclude = set(d.info.get("lint_exclude", ()))
    exe = require_tool("verilator")
    with tempfile.TemporaryDirectory(prefix="bondflow-lint-") as tmp:
        paths = []
        for rel in d.rtl_files:
            p = Path(tmp) / Path(rel).name
            p.write_text(d.files[rel])
            paths.append(p)
        args = [exe, "--lint-only", "-Wall", "--top-module", d.top]
        lint_paths = [p for p, rel in zip(paths, d.rtl_files) if rel not in exclude]
        lib_paths = [a for p, rel in zip(paths, d.rtl_files) if rel in exclude for a in ("-v", str(p))]  # "-v" and the file are two arguments
        if exclude:  # kept verbatim from another tool: silence its warnings, still parse it (errors remain errors)
            vlt = Path(tmp) / "exclude.vlt"
            vlt.write_text("`verilator_config\n" + "".join(f'lint_off -file "{p}"\n' for p, rel in zip(paths, d.rtl_files)
                                                           if rel in exclude))
            args.append(str(vlt))
        r = subprocess.run(args + [str(p) for p in lint_paths] + lib_paths, capture_output=True, text=True, cwd=tmp)
    msgs = tuple(l.replace(tmp + "/", "") for l in r.stderr.splitlines() if l.startswith("%"))
    result = LintResult(clean=r.returncode == 0 and not any(m.startswith(("%Warning", "%Error")) for m in msgs),
                        messages=msgs, files=len(paths))
    if check and not result.clean:
        raise TemplateRenderError(f"generated RTL must be lint-clean (a bondflow generator bug), not: {msgs[0] if msgs else r.stderr[-200:]}")
    return result

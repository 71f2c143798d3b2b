"""Lint generated RTL with `verilator --lint-only -Wall`; a warning is a generator bug and is reported as one."""
from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..design import Design
from ..errors import TemplateRenderError
from ..tools import require_tool

__all__ = ["LintResult", "lint", "port_stub", "SPLIT_TOTAL_CHARS", "SPLIT_FILE_CHARS"]

#: Above this much RTL, large files are linted one at a time: Verilator keeps the whole elaborated design in
#: memory (about 80 bytes per character of a dense layer, so 14 GB for a 1M-MAC MLP), one module a fraction.
SPLIT_TOTAL_CHARS = 8_000_000
#: In a design that large, a file of at least this many characters is linted alone, and a port-only stub
#: stands in for it where the rest of the design is linted.
SPLIT_FILE_CHARS = 2_000_000


@dataclass(frozen=True)
class LintResult:
    clean: bool
    messages: tuple[str, ...]
    files: int
    runs: int = 1  # Verilator runs: one, or one per large file plus one for the rest of the design


_MODULE = re.compile(r"^\s*module\s+([A-Za-z_]\w*)", re.M)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def port_stub(text: str) -> tuple[str, str] | None:
    """(module name, the file with the module's body removed) for a file of one ANSI-port module, else None."""
    text = _COMMENT.sub(lambda m: " " * len(m.group(0)), text)  # same length, so offsets still match the text
    found = list(_MODULE.finditer(text))
    if len(found) != 1:
        return None
    depth, i, end = 0, found[0].end(), None
    while i < len(text):  # the port list ends at the ")" that closes the first top-level "(" (after any "#(...)")
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and text[found[0].end():i].lstrip().startswith("(") and text[i + 1:].lstrip().startswith(";"):
                end = text.index(";", i) + 1
                break
        i += 1
    if end is None:
        return None
    return found[0].group(1), text[:end] + "\nendmodule\n`default_nettype wire\n"


def _run(exe: str, tmp: Path, top: str, linted: list[Path], libs: list[Path], quiet: list[Path]) -> tuple[bool, list[str]]:
    """One Verilator lint under ``top``: ``libs`` are linted where used, ``quiet`` ones parsed with their warnings off."""
    args = [exe, "--lint-only", "-Wall", "--top-module", top]
    if quiet:
        vlt = tmp / f"quiet-{top}.vlt"
        vlt.write_text("`verilator_config\n" + "".join(f'lint_off -file "{p}"\n' for p in quiet))
        args.append(str(vlt))
    args += [str(p) for p in linted] + [a for p in libs + quiet for a in ("-v", str(p))]  # "-v" and the file are two arguments
    r = subprocess.run(args, capture_output=True, text=True, cwd=tmp)
    msgs = [l.replace(str(tmp) + "/", "") for l in r.stderr.splitlines() if l.startswith("%")]
    if r.returncode != 0 and not msgs:
        msgs = [f"%Error: verilator exited with {r.returncode}: {r.stderr[-200:].strip()}"]
    return r.returncode == 0, msgs


def lint(design: Design | str | Path, check: bool = True) -> LintResult:
    """Lint the design's own RTL (files listed in ``info['lint_exclude']`` are kept verbatim from other tools).

    A design of more than SPLIT_TOTAL_CHARS characters of RTL is linted in parts, so that Verilator's memory
    follows the largest module rather than the whole design: each file of at least SPLIT_FILE_CHARS with its
    own module on top, then the rest of the design with port-only stubs of those files (port widths between
    modules are still checked there).
    """
    d = design if isinstance(design, Design) else Design.load(design)
    exclude = set(d.info.get("lint_exclude", ()))
    exe = require_tool("verilator")
    own = [rel for rel in d.rtl_files if rel not in exclude]
    split: dict[str, tuple[str, str]] = {}
    if sum(len(d.files[rel]) for rel in own) > SPLIT_TOTAL_CHARS:
        for rel in own:
            stub = port_stub(d.files[rel]) if len(d.files[rel]) >= SPLIT_FILE_CHARS else None
            if stub is not None:
                split[rel] = stub
    msgs: list[str] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="bondflow-lint-") as tmpdir:
        tmp = Path(tmpdir)
        path = {rel: tmp / Path(rel).name for rel in d.rtl_files}
        stub_path = {rel: tmp / f"stub_{Path(rel).name}" for rel in split}
        for rel in d.rtl_files:
            path[rel].write_text(d.files[rel])
        for rel, (_, text) in split.items():
            stub_path[rel].write_text(text)
        excluded = [path[rel] for rel in d.rtl_files if rel in exclude]
        for rel, (module, _) in split.items():  # one at a time, so the peak memory is one module's
            libs = [path[o] for o in own if o not in split]
            ok_run, m = _run(exe, tmp, module, [path[rel]], libs, excluded + [stub_path[o] for o in split if o != rel])
            ok &= ok_run
            msgs += m
        ok_run, m = _run(exe, tmp, d.top, [path[rel] for rel in own if rel not in split], [],
                         excluded + [stub_path[rel] for rel in split])
        ok &= ok_run
        msgs += m
    result = LintResult(clean=ok and not any(m.startswith(("%Warning", "%Error")) for m in msgs),
                        messages=tuple(msgs), files=len(d.rtl_files), runs=len(split) + 1)
    if check and not result.clean:
        raise TemplateRenderError(f"generated RTL must be lint-clean (a bondflow generator bug), not: {msgs[0] if msgs else 'no output'}")
    return result


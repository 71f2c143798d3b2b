"""Design: the frozen artifact every generator returns and every later stage reads (a directory + manifest)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import DesignError
from .fsutil import atomic_dir
from .stream import StreamFormat

__all__ = ["Design", "Interface", "MANIFEST", "load_design"]

MANIFEST = "design.json"
GRAPH_FILE = "graph.json"


@dataclass(frozen=True)
class Interface:
    """The common AXI-Stream shell's ports: one input stream, one output stream, ``clk`` and ``rst_n``."""

    input: StreamFormat
    output: StreamFormat
    input_type: str  # FixedType text, e.g. "fixed<8,3>"
    output_type: str

    def to_dict(self) -> dict[str, Any]:
        return {"clock": "clk", "reset": "rst_n (active low, synchronous)", "input_type": self.input_type,
                "output_type": self.output_type, "input": self.input.to_dict(), "output": self.output.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Interface":
        return cls(StreamFormat.from_dict(d["input"]), StreamFormat.from_dict(d["output"]), d["input_type"], d["output_type"])


@dataclass(frozen=True, eq=False)
class Design:
    """A generated architecture: its files (relative path -> text), its top module and its interface.

    ``files`` always holds ``graph.json`` (the graph it implements) so that a design directory is
    self-contained: simulation can compute the golden model from it alone.
    """

    arch: str
    top: str
    language: str  # "verilog" or "hls-c++"
    files: Mapping[str, str]
    interface: Interface | None
    graph_digest: str
    rtl_files: tuple[str, ...] = ()  # in compile order; subset of files
    latency_cycles: int | None = None  # what the generator promises; sim checks it
    ii_cycles: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)  # estimates, tool runs, per-arch facts
    generator_version: str = ""

    def manifest(self) -> dict[str, Any]:
        return {"format": "bondflow-design", "version": 1, "arch": self.arch, "top": self.top,
                "language": self.language, "graph_digest": self.graph_digest, "design_digest": self.digest(),
                "generator_version": self.generator_version, "rtl_files": list(self.rtl_files),
                "files": sorted(self.files), "interface": self.interface.to_dict() if self.interface else None,
                "latency_cycles": self.latency_cycles, "ii_cycles": self.ii_cycles,
                "options": dict(self.options), "info": dict(self.info)}

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name].encode() + b"\0")
        h.update(json.dumps([self.arch, self.top, dict(self.options)], sort_keys=True, default=str).encode())
        return h.hexdigest()

    def write(self, out: Path | str, force: bool = False) -> Path:
        """Write atomically: the directory appears complete or not at all."""
        out = Path(out)
        with atomic_dir(out, force=force) as tmp:
            for name, text in self.files.items():
                p = tmp / name
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
            (tmp / MANIFEST).write_text(json.dumps(self.manifest(), indent=1, default=str))
            if self.language == "verilog" and self.rtl_files:  # derived from the manifest: not in the digest
                from .fusesoc_core import CORE_FILE, core_text
                gname = json.loads(self.files["graph.json"]).get("name", "graph") if "graph.json" in self.files else "graph"
                (tmp / CORE_FILE).write_text(core_text(self.arch, self.top, self.rtl_files, gname, self.graph_digest,
                                                       self.generator_version, self.latency_cycles, self.ii_cycles))
        return out

    @classmethod
    def load(cls, path: Path | str) -> "Design":
        path = Path(path)
        mf = path / MANIFEST
        if not path.is_dir():
            raise DesignError(f"design must be a directory, not {'missing' if not path.exists() else 'a file'}: {path}")
        if not mf.is_file():
            raise DesignError(f"design directory must hold {MANIFEST}, not lack it: {path}")
        try:
            m = json.loads(mf.read_text())
        except json.JSONDecodeError as e:
            raise DesignError(f"{mf} must be JSON, not invalid at line {e.lineno}") from None
        if m.get("format") != "bondflow-design":
            raise DesignError(f"{mf} must have format 'bondflow-design', not {m.get('format')!r}")
        files: dict[str, str] = {}
        for name in m["files"]:
            p = path / name
            if not p.is_file():
                raise DesignError(f"design file listed in the manifest must exist, not be missing: {p}")
            files[name] = p.read_text()
        iface = Interface.from_dict(m["interface"]) if m.get("interface") else None
        return cls(arch=m["arch"], top=m["top"], language=m["language"], files=files, interface=iface,
                   graph_digest=m["graph_digest"], rtl_files=tuple(m.get("rtl_files", ())),
                   latency_cycles=m.get("latency_cycles"), ii_cycles=m.get("ii_cycles"),
                   options=m.get("options", {}), info=m.get("info", {}), generator_version=m.get("generator_version", ""))

    def graph(self):  # -> Graph (import here: design stays stdlib-light)
        from .ir.graph import Graph
        if GRAPH_FILE not in self.files:
            raise DesignError(f"design must contain {GRAPH_FILE}, not lack it")
        return Graph.from_json(self.files[GRAPH_FILE])


def load_design(path: Path | str) -> Design:
    return Design.load(path)

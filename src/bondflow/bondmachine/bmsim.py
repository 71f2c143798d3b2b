"""Cross-check with BondMachine's own instruction-level simulator (``bondmachine -sim`` driven by simbox rules)."""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..design import Design
from ..errors import ToolFailedError
from ..tools import run_tool
from .numbers import parse_number_type
from .numerics import bm_to_output, input_to_bm, reference_for

__all__ = ["BMSimResult", "bm_simulate", "bm_ticks", "cross_check"]

_VALUE = re.compile(r"0fp<\d+\.\d+>(-?[0-9.eE+-]+)")
_STOP = re.compile(r"Stopping simulation at tick (\d+)")


@dataclass(frozen=True)
class BMSimResult:
    vectors: int
    agree: int
    ticks: int
    first_disagreements: list[dict[str, object]]

    @property
    def agreement(self) -> float:
        return self.agree / self.vectors if self.vectors else 0.0


def _set_inputs(row: np.ndarray, prefix: str, frac: int) -> list[dict[str, object]]:
    """simbox's own JSON rules, written directly: set every input at tick 0 (raw / 2^f is exact in a Python float)."""
    return [{"Timec": 0, "Tick": 0, "Action": 0, "Object": f"i{k}", "Extra": f"{prefix}{int(v) / (1 << frac)!r}",
             "Suspended": False} for k, v in enumerate(row)]


def bm_ticks(bm_json: Path, row: np.ndarray, prefix: str, frac: int, workdir: Path, max_ticks: int = 200_000) -> list[int]:
    """Simulator ticks until each output's valid rises, for one sample of raw inputs ``row`` (all set at tick 0).

    One tick executes one instruction in every CP (multi-cycle ops count 1): these are BondMachine's own
    instruction-level latencies, not clock cycles. ``-sim-stop-on-valid-of k`` stops at the first tick that
    starts with output k valid, so the tick it reports is the number of ticks executed.
    """
    n_out = json.loads(Path(bm_json).read_text())["Outputs"]
    sb = workdir / "ticks-sb.json"
    sb.write_text(json.dumps({"Rules": _set_inputs(row, prefix, frac)}))
    ticks = []
    for k in range(n_out):
        log = workdir / f"ticks-o{k}.log"
        run_tool("bondmachine", ["-bondmachine-file", str(bm_json), "-sim", "-simbox-file", str(sb), "-sim-interactions",
                                 str(max_ticks), "-sim-stop-on-valid-of", str(k), "-d"], cwd=workdir, log=log)
        m = _STOP.findall(log.read_text())
        if not m:
            raise ToolFailedError("bondmachine", 0, log, f"output o{k} must become valid within {max_ticks} ticks, not stay invalid")
        ticks.append(int(m[-1]))
    return ticks


def bm_simulate(bm_json: Path, x_bm: np.ndarray, prefix: str, type_name: str, frac: int, ticks: int, workdir: Path,
                per_run: int = 50) -> np.ndarray:
    """Raw BondMachine outputs for each row of raw inputs ``x_bm``. The simulator has no batch mode, but its network
    runs forever: sample s is set at tick s*ticks and its outputs read at tick (s+1)*ticks - 1, ``per_run`` samples per
    simulator run. ``ticks`` must let every CP recompute after an input change (twice an inference is ample); a
    sample read too early would show stale or mixed values, i.e. disagree with the model, not pass by accident."""
    n_out = json.loads(Path(bm_json).read_text())["Outputs"]
    out = np.zeros((x_bm.shape[0], n_out), dtype=np.int64)
    for start in range(0, x_bm.shape[0], per_run):
        rows = x_bm[start:start + per_run]
        rules: list[dict[str, object]] = []
        for s, row in enumerate(rows):
            rules += [{**r, "Tick": s * ticks} for r in _set_inputs(row, prefix, frac)]
            rules += [{"Timec": 0, "Tick": (s + 1) * ticks - 1, "Action": 1, "Object": f"o{k}", "Extra": type_name,
                       "Suspended": False} for k in range(n_out)]
        sb, rep = workdir / f"sb{start}.json", workdir / f"rep{start}.txt"
        sb.write_text(json.dumps({"Rules": rules}))
        run_tool("bondmachine", ["-bondmachine-file", str(bm_json), "-sim", "-simbox-file", str(sb), "-sim-interactions",
                                 str(len(rows) * ticks), "-sim-report", str(rep)], cwd=workdir, log=workdir / f"sim{start}.log")
        lines = [l for l in rep.read_text().splitlines()[1:] if l.strip()]  # first line: the header
        if len(lines) != len(rows):
            raise ToolFailedError("bondmachine", 0, rep, f"simulator report must hold {len(rows)} rows, not {len(lines)}")
        for s, line in enumerate(lines):
            vals = _VALUE.findall(line)
            if len(vals) != n_out:
                raise ToolFailedError("bondmachine", 0, rep, f"simulator report rows must hold {n_out} values, not {line!r}")
            out[start + s] = [round(float(v) * (1 << frac)) for v in vals]  # exact: raw / 2^f printed in full
    return out


def cross_check(design: Design | str | Path, vectors: int = 100, seed: int = 0, ticks: int = 2000,
                data: np.ndarray | None = None) -> BMSimResult:
    """Agreement of bondflow's BM arithmetic model with ``bondmachine -sim`` on the same vectors (fps designs)."""
    from ..sim.vectors import make_vectors
    d = design if isinstance(design, Design) else Design.load(design)
    graph = d.graph()
    nt = parse_number_type(str(d.info["number_type"]))
    tv = make_vectors(graph, vectors, seed, data, "golden")
    x_bm = input_to_bm(tv.inputs, graph.input.type, nt)
    expected = reference_for(str(d.info["reference"]))(graph, tv.inputs)
    with tempfile.TemporaryDirectory(prefix="bondflow-bmsim-") as tmp:
        bm = Path(tmp) / "bondmachine.json"
        bm.write_text(d.files["bondmachine/bondmachine.json"])
        got_bm = bm_simulate(bm, x_bm, nt.prefix, nt.name, int(nt.frac), ticks, Path(tmp))
    got = bm_to_output(got_bm, graph.output.type, nt)
    ok = np.all(got == expected, axis=1)
    bad = [{"index": int(i), "input": tv.inputs[i].tolist(), "model": expected[i].tolist(), "bm_sim": got[i].tolist()}
           for i in np.flatnonzero(~ok)[:5]]
    return BMSimResult(len(tv), int(ok.sum()), ticks, bad)

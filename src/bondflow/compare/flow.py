"""The comparison flow: per architecture, generate -> lint -> simulate -> synthesize, checkpointed and resumable."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import BondflowError, QuantizationError, ToolTimeoutError, UnsupportedOpError
from ..fsutil import atomic_write_text, lock_dir, remove_stale_tmp
from ..ir.graph import Graph

__all__ = ["ArchResult", "compare", "STEPS"]

STEPS = ("generate", "lint", "simulate", "synthesize")


@dataclass
class ArchResult:
    """Everything measured for one architecture (or the error that stopped it)."""

    arch: str
    options: dict[str, Any]
    label: str = ""
    status: str = "ok"
    error: str | None = None
    failed_step: str | None = None
    design_digest: str | None = None
    bit_exact: bool | None = None
    vectors: int | None = None
    mismatches: int | None = None
    latency_cycles: float | None = None
    ii_cycles: float | None = None
    lut: int | None = None
    ff: int | None = None
    dsp: int | None = None
    bram: int | None = None
    fmax_mhz: float | None = None
    accuracy: float | None = None
    float_agreement: float | None = None  # share of samples whose predicted class equals the float model's
    fidelity: dict[str, Any] | None = None  # bondflow.fidelity record, stated for this design
    note: str | None = None  # why a verified design has no resource figures (synthesis ran past --synth-timeout)
    step_seconds: dict[str, float] = field(default_factory=dict)
    resumed: list[str] = field(default_factory=list)


def _step(work: Path, name: str, key: str, fn: Callable[[], dict[str, Any]], res: ArchResult,
          valid: Callable[[dict[str, Any]], bool] = lambda _: True) -> dict[str, Any]:
    """Run ``fn`` unless a checkpoint with the same key exists and ``valid`` accepts it; checkpoints are written atomically.

    ``valid`` checks the artifacts a checkpoint stands for: a kill, or a hand, may have removed them since.
    """
    ck = work / f"{name}.json"
    try:
        data = json.loads(ck.read_text())
    except (OSError, ValueError):  # missing, or not written by this flow: redo the step
        data = None
    if isinstance(data, dict) and data.get("_key") == key and valid(data):
        res.resumed.append(name)
        res.step_seconds[name] = data.get("_seconds", 0.0)
        return data
    ck.unlink(missing_ok=True)  # a stale checkpoint must not outlive the artifacts it described
    t0 = time.monotonic()
    data = fn()
    data["_key"], data["_seconds"] = key, round(time.monotonic() - t0, 2)
    atomic_write_text(ck, json.dumps(data, default=str))
    res.step_seconds[name] = data["_seconds"]
    return data


def _design_intact(path: Path, digest: str) -> bool:
    """Whether ``path`` holds a complete design with ``digest`` (every manifest file present, same content)."""
    from ..design import Design
    try:
        return Design.load(path).digest() == digest
    except (BondflowError, OSError, ValueError, KeyError):
        return False


def run_arch(graph: Graph, arch: str, options: dict[str, Any], target: str, out: Path, vectors: int,
             simulator: str, data: np.ndarray | None, labels: np.ndarray | None, progress: Callable[[str], None],
             label: str = "", tick: Callable[[], None] = lambda: None, synth_timeout: float | None = None) -> ArchResult:
    """One architecture through the steps; ``tick`` is called as each step ends (compare's bar counts them).

    A synthesis that runs past ``synth_timeout`` seconds leaves the design verified, without resource figures
    (``note`` says why): a slow yosys run must not cost a user the rest of the comparison.
    """
    from ..codegen.base import generate
    from ..design import Design
    res = ArchResult(arch=arch, options=options, label=label or arch)
    work = out / arch
    work.mkdir(parents=True, exist_ok=True)
    step = "generate"
    try:
        progress(f"[{arch}] generate")

        def gen() -> dict[str, Any]:
            d = generate(graph, arch, **options)
            d.write(work / "design", force=True)
            return {"digest": d.digest()}
        g = _step(work, "generate", graph.digest() + json.dumps(options, sort_keys=True, default=str), gen, res,
                  valid=lambda ck: _design_intact(work / "design", ck["digest"]))
        tick()
        res.design_digest = g["digest"]
        design = Design.load(work / "design")
        if design.language == "verilog":
            step = "lint"
            progress(f"[{arch}] lint")
            from ..sim.lint import lint
            _step(work, "lint", res.design_digest, lambda: {"clean": lint(design).clean}, res)
            tick()
            step = "simulate"
            progress(f"[{arch}] simulate ({simulator}, {vectors} vectors)")
            from ..sim.runner import simulate
            s = _step(work, "simulate", f"{res.design_digest}:{simulator}:{vectors}",
                      lambda: json.loads(simulate(work / "design", vectors, simulator=simulator, data=data).to_json()), res)
            res.bit_exact, res.vectors, res.mismatches = s["passed"], s["vectors"], s["mismatches"]
            res.latency_cycles, res.ii_cycles = s["latency_cycles"], s["ii_cycles"]
            tick()
            step = "synthesize"
            progress(f"[{arch}] synthesize ({target})")
            from ..synth.flow import synthesize
            try:
                r = _step(work, "synthesize", f"{res.design_digest}:{target}",
                          lambda: json.loads(synthesize(work / "design", target, out=work / "synth",
                                                        timeout=synth_timeout).to_json()), res)
                res.lut, res.ff, res.dsp, res.bram, res.fmax_mhz = r["lut"], r["ff"], r["dsp"], r["bram"], r["fmax_mhz"]
            except ToolTimeoutError as e:
                if synth_timeout is None:
                    raise
                res.note = f"not synthesized: {e} (--synth-timeout {synth_timeout:g})"
            tick()
        else:  # hls4ml: bit-exactness from its C simulation; no vendor-free RTL
            res.bit_exact = design.info.get("csim_mismatches_vs_golden") == 0
            res.vectors = design.info.get("csim_vectors")
            res.mismatches = design.info.get("csim_mismatches_vs_golden")
        if data is not None and labels is not None and res.bit_exact:
            # A bit-exact design computes the golden model's outputs; its accuracy is the golden model's.
            from ..ir import reference
            y = reference.run(graph, data)
            res.accuracy = _score(y, labels)
    except BondflowError as e:
        # An architecture that cannot express the model (a branch, a CNN for BondMachine, a rounding da4ml lacks)
        # refuses it: not a failure.
        refused = isinstance(e, (UnsupportedOpError, QuantizationError)) and step == "generate"
        res.status, res.error, res.failed_step = ("refused" if refused else "failed"), str(e), step
    return res


def _score(y: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy for classifiers; minus the mean squared error for a single regression output."""
    return float(np.mean(y.argmax(1) == labels)) if y.shape[1] > 1 else float(-np.mean((y[:, 0] - labels) ** 2))


def compare(graph: Graph, archs: dict[str, tuple[str, dict[str, Any]]], target: str, out: Path, vectors: int = 500,
            simulator: str = "icarus", data: np.ndarray | None = None, labels: np.ndarray | None = None,
            progress: Callable[[str], None] = print,
            float_model: tuple[np.ndarray, str] | None = None, fidelity: Any = None,
            clock_mhz: float | None = None, synth_timeout: float | None = None) -> list[ArchResult]:
    """Run every entry ``label -> (architecture, options)`` through every step; write ``results.json``.

    Entries may share a generator with different options (``dataflow`` and ``dataflow:rf=4``), so each
    runs in its own directory named after its label. ``float_model`` is (outputs of the original model on
    ``data``, what computed them): its accuracy is recorded, and each bit-exact design's agreement with it.
    ``fidelity`` (a bondflow.fidelity.Fidelity of the graph) is recorded for the run and, stated for each
    design (bit-exact or not), in every result.
    The run holds ``out``'s lock throughout: a second run into
    the same directory fails at once (OutputLockedError) instead of mixing its checkpoints with ours.
    """
    from ..progress import get_reporter
    with lock_dir(out), get_reporter().task("compare", len(archs) * len(STEPS), "steps",
                                                    plain_lines=False) as bar:  # each step has its own line
        remove_stale_tmp(out)  # leftovers of a killed run; ours alone now that we hold the lock
        results = []
        for n, (label, (arch, opts)) in enumerate(archs.items(), 1):
            results.append(run_arch(graph, arch, opts, target, out / label.replace(":", "_").replace("=", ""), vectors,
                                    simulator, data, labels, progress, label=label, tick=bar.advance,
                                    synth_timeout=synth_timeout))
            bar.update(n * len(STEPS))  # a failed design, or hls4ml (no lint, RTL simulation, yosys), skips steps
        fm = None
        if float_model is not None and data is not None:
            yf, source = float_model
            fm = {"source": source, "samples": len(yf), "accuracy": _score(yf, labels) if labels is not None else None}
            if yf.shape[1] > 1 and any(r.bit_exact for r in results):
                from ..ir import reference
                agree = float(np.mean(reference.run(graph, data).argmax(1) == yf.argmax(1)))
                for r in results:  # a bit-exact design computes the golden model's outputs
                    r.float_agreement = agree if r.bit_exact else None
        if fidelity is not None:
            for r in results:
                r.fidelity = fidelity.for_design(r.bit_exact, r.vectors).to_dict()
        from ..synth.targets import get_target
        from .choose import REPORT_VERSION
        from .metrics import metrics_for
        rows = []
        for r in results:  # clock, latency in ns, throughput, utilisation and fit on the target part
            row = asdict(r)
            row["metrics"] = metrics_for(row, get_target(target), clock_mhz).to_dict()
            rows.append(row)
        atomic_write_text(out / "results.json", json.dumps({"version": REPORT_VERSION, "graph": graph.name,
                                                            "graph_digest": graph.digest(), "target": target,
                                                            "clock_mhz": clock_mhz, "float_model": fm,
                                                            "fidelity": fidelity.to_dict() if fidelity is not None else None,
                                                            "results": rows}, indent=1, default=str))
    return results

"""Comparison report: markdown and self-contained HTML (tables, latency-vs-LUT plot with the Pareto front)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from .flow import ArchResult

__all__ = ["write_report", "pareto"]

COLUMNS = ("arch", "status", "bit_exact", "vectors", "latency_cycles", "ii_cycles", "lut", "ff", "dsp", "bram", "accuracy",
           "float_agreement")
#: Derived per-design figures (compare/metrics.py), shown after the measured ones.
METRIC_COLUMNS = ("clock_mhz", "latency_ns", "throughput_per_s", "util_lut", "util_ff", "util_dsp", "util_bram", "fits")
PARETO_RULE = ("Pareto front over latency, LUTs and DSPs: a design is on it unless another is no worse on all three "
               "and better on one (so a DSP-heavy design does not look cheap by its LUTs alone).")


def pareto(results: list[ArchResult]) -> set[str]:
    """Labels of designs no other design beats on latency, LUTs and DSPs together."""
    pts = [((r.latency_cycles, r.lut, r.dsp or 0), _label(r)) for r in results if r.latency_cycles is not None and r.lut is not None]
    return {lab for v, lab in pts if not any(all(a <= b for a, b in zip(w, v)) and w != v for w, _ in pts)}


def _failure(r: ArchResult) -> str:
    return "refused" if r.status == "refused" else f"failed in {r.failed_step}"


def _label(r: ArchResult) -> str:
    return r.label or r.arch


def _plot(results: list[ArchResult], front: set[str], fits: dict[str, bool | None]) -> str | None:
    pts = [(r.lut, r.latency_cycles, _label(r)) for r in results if r.latency_cycles is not None and r.lut is not None]
    if not pts:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (lut, lat, lab) in enumerate(pts):
        no_fit = fits.get(lab) is False
        ax.scatter(lut, lat, s=70, color="tab:red" if lab in front else "tab:blue", marker="x" if no_fit else "o")
        # Alternate label offsets so neighbouring points keep readable labels.
        ax.annotate(lab + (" (does not fit)" if no_fit else ""), (lut, lat), textcoords="offset points",
                    xytext=(6, 6 if i % 2 == 0 else -12), fontsize=8)
    fr = sorted((lut, lat) for lut, lat, lab in pts if lab in front)
    if len(fr) > 1:
        ax.plot(*zip(*fr), "--", color="tab:red", label="Pareto front")
        ax.legend()
    ax.set_xscale("log")
    ax.set_xlabel("LUTs (yosys; x: does not fit the part)")
    ax.set_ylabel("latency (cycles, RTL simulation)")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "-" if v is None else str(v)


def _float_line(fm: dict[str, Any] | None) -> str:
    if not fm:
        return "Float model: not available for this model format (no accuracy reference)."
    acc = "-" if fm.get("accuracy") is None else _cell(fm["accuracy"])
    return (f"Float model ({fm['source']}): accuracy {acc} on {fm['samples']} samples; float_agreement is the share of "
            "samples whose predicted class equals the float model's.")


def _fidelity_line(fid: dict[str, Any] | None) -> str:
    """The graph's fidelity record in one sentence; it holds for every design marked bit-exact."""
    if not fid:
        return "Fidelity: not measured (--no-fidelity)."
    from ..fidelity import Fidelity
    line = Fidelity.from_dict(fid).summary()
    return "F" + line[1:] + " (holds for every bit-exact design)."


def _metric_cell(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if key == "fits":
        return "✓" if v else "✗"
    if key.startswith("util_"):
        return f"{v:.1f} %"
    if key == "throughput_per_s":
        return f"{v:.3g}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_report(results: list[ArchResult], out: Path, title: str, target: str,
                 float_model: dict[str, Any] | None = None, fidelity: dict[str, Any] | None = None,
                 metrics: dict[str, dict[str, Any]] | None = None) -> tuple[Path, Path]:
    """report.md and report.html; ``metrics`` (label -> compare/metrics figures) adds clock, ns, throughput and fit."""
    front = pareto(results)
    metrics = metrics or {}
    cols = COLUMNS + (METRIC_COLUMNS if metrics else ())
    rows = [[_label(r)] + [_cell(getattr(r, c)) for c in COLUMNS[1:]]
            + ([_metric_cell(c, metrics.get(_label(r), {}).get(c)) for c in METRIC_COLUMNS] if metrics else [])
            for r in results]
    fits = {lab: m.get("fits") for lab, m in metrics.items()}
    md = [f"# bondflow comparison: {title} on {target}", "", "| " + " | ".join(cols) + " |",
          "|" + "---|" * len(cols)] + ["| " + " | ".join(row) + " |" for row in rows]
    if metrics:
        src = sorted({m.get("clock_source", "") for m in metrics.values()})
        md += ["", f"clock_mhz: {'; '.join(src)} (latency_ns = latency_cycles / clock; throughput_per_s = clock / II); "
                   f"util_* and fits: share of {target}'s resources."]
    md += ["", f"Pareto front: {', '.join(sorted(front)) or '-'}. {PARETO_RULE}", "", _float_line(float_model), "",
           _fidelity_line(fidelity), ""]
    if fidelity and fidelity.get("warnings"):
        md += [f"**WARNING: poor fidelity**: {w}" for w in fidelity["warnings"]] + [""]
    for r in results:
        if r.error:
            md.append(f"- **{_label(r)}** {_failure(r)}: {r.error}")
        if r.note:
            md.append(f"- **{_label(r)}** {r.note}")
        md.append(f"- {_label(r)} step seconds: {r.step_seconds}" + (f" (resumed: {', '.join(r.resumed)})" if r.resumed else ""))
    md_path = atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    img = _plot(results, front, fits)
    th = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    def td(c: str) -> str:
        cls = {"✓": " class='fits-yes'", "✗": " class='fits-no'"}.get(c, "")
        return f"<td{cls}>{html.escape(c)}</td>"
    trs = "".join("<tr>" + "".join(td(c) for c in row) + "</tr>" for row in rows)
    errs = "".join(f"<li><b>{html.escape(_label(r))}</b> {_failure(r)}: {html.escape(r.error or '')}</li>"
                   for r in results if r.error) + \
        "".join(f"<li><b>{html.escape(_label(r))}</b> {html.escape(r.note)}</li>" for r in results if r.note)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
            "padding:4px 8px}</style></head><body>"
            f"<h1>bondflow comparison: {html.escape(title)} on {html.escape(target)}</h1>"
            f"<table id='results'><tr>{th}</tr>{trs}</table>"
            f"<p id='pareto-front'>Pareto front: {html.escape(', '.join(sorted(front)) or '-')}. {html.escape(PARETO_RULE)}</p>"
            f"<p id='float-model'>{html.escape(_float_line(float_model))}</p>"
            f"<p id='fidelity'>{html.escape(_fidelity_line(fidelity))}</p>"
            + "".join(f"<p class='warning'><b>WARNING: poor fidelity</b>: {html.escape(w)}</p>"
                      for w in (fidelity or {}).get("warnings", []))
            + (f"<img id='pareto' alt='latency vs LUTs' src='data:image/png;base64,{img}'>" if img else "")
            + (f"<h2>Failures</h2><ul>{errs}</ul>" if errs else "") + "</body></html>")
    html_path = atomic_write_text(out / "report.html", page)
    return md_path, html_path

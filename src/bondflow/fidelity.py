"""Fidelity: how closely a graph's bit-exact outputs follow the model it was imported from, run by its own framework."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import ConfigError, FidelityError
from .ir.graph import Graph
from .ir.ops import Sigmoid, Softmax

__all__ = ["Fidelity", "measure", "check", "inputs_for", "table_warnings", "recorded",
           "POOR_AGREEMENT", "POOR_ERROR", "DEFAULT_SAMPLES"]

#: Below this class agreement (classifiers) or above this mean error relative to the output range
#: (regressors), fidelity is poor and every command says so loudly.
POOR_AGREEMENT = 0.9
POOR_ERROR = 0.1
DEFAULT_SAMPLES = 1000
#: A softmax whose exp-table index steps by at least this much (in input units) maps logits that differ by
#: up to that much to one entry: e^1 apart, the table no longer tells classes apart.
SOFTMAX_MAX_STEP = 1.0


@dataclass(frozen=True)
class Fidelity:
    """One fidelity measurement; ``reference`` is None (and ``unavailable`` says why) when nothing could run the source."""

    graph_digest: str
    reference: str | None
    inputs: str
    samples: int
    task: str = ""  # "classifier" (more than one output, or a sigmoid output) or "regressor"
    agreement: float | None = None  # share of samples whose class equals the reference's (classifiers)
    max_error: float | None = None  # max |golden - reference| / reference output range
    mean_error: float | None = None  # mean |golden - reference| / reference output range
    output_range: float | None = None
    distinct_outputs: int | None = None  # distinct output rows of the golden model
    reference_distinct_outputs: int | None = None
    unavailable: str | None = None
    warnings: tuple[str, ...] = ()
    applies_to: str = "golden model"

    @property
    def poor(self) -> bool:
        return bool(self.warnings)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        d["poor"] = self.poor
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Fidelity":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["warnings"] = tuple(known.get("warnings", ()))
        return cls(**known)

    def summary(self) -> str:
        """One line: the figures, or why there are none."""
        if self.reference is None:
            return f"fidelity: not measured: {self.unavailable}"
        fig = (f"class agreement {self.agreement:.3f}" if self.task == "classifier"
               else f"mean error {100 * (self.mean_error or 0):.2f} % of the output range")
        return (f"fidelity vs {self.reference} on {self.samples} inputs ({self.inputs}): {fig}, max error "
                f"{100 * (self.max_error or 0):.1f} % of the range, {self.distinct_outputs} distinct outputs"
                + (f" [POOR: {'; '.join(self.warnings)}]" if self.warnings else ""))

    def for_design(self, bit_exact: bool | None, vectors: int | None = None) -> "Fidelity":
        """This record as it applies to a design checked against the golden model."""
        if bit_exact:
            return replace(self, applies_to=f"design (bit-exact with the golden model on {vectors} vectors)"
                           if vectors else "design (bit-exact with the golden model)")
        return replace(self, applies_to="golden model only (the design is not bit-exact with it)")


def table_warnings(graph: Graph) -> list[str]:
    """Table activations whose input type is so wide that their table can no longer tell inputs apart."""
    from .ir.reference import softmax_sizes
    out = []
    types = graph.types()
    for op in graph.ops:
        if isinstance(op, Softmax):
            xt = types[op.input]
            exp_size, _, addr = softmax_sizes(op, xt)
            span = 2.0 ** addr.int_bits if op.implementation == "stable" else 2.0 ** xt.int_bits
            step = span / exp_size
            if step >= SOFTMAX_MAX_STEP:
                out.append(f"softmax '{op.name}' indexes its {exp_size}-entry exp table with the top bits of {xt}: "
                           f"inputs within {step:g} of each other share one entry (type its input narrower, e.g. the default precision)")
    return out


def _task(graph: Graph, n_out: int) -> str:
    return "classifier" if n_out > 1 or isinstance(graph.ops[-1], Sigmoid) else "regressor"


def _classes(y: np.ndarray) -> np.ndarray:
    return (y[:, 0] > 0.5).astype(np.int64) if y.shape[1] == 1 else y.argmax(1)


def _is_graph_json(p: Path) -> bool:
    from .frontend.keras_files import is_keras_json
    return p.suffix.lower() == ".json" and not is_keras_json(p)


def _source(graph: Graph, model_path: str | Path | None) -> tuple[Path | None, str | None]:
    """The source model file of ``graph`` (checked against the digest taken at import), or why there is none."""
    if model_path is not None and Path(model_path).exists() and not _is_graph_json(Path(model_path)):
        return Path(model_path), None
    src = graph.meta.get("source")
    if not src:
        return None, "the graph records no source model (bondflow's own graph JSON)"
    p = Path(src)
    if not p.exists():
        return None, f"the source model {src} is not found from here"
    for key, f in (("source_sha256", p), ("source_weights_sha256", Path(graph.meta.get("source_weights") or p))):
        sha = graph.meta.get(key)
        if sha and f.is_file() and hashlib.sha256(f.read_bytes()).hexdigest() != sha:
            return None, f"the source model {f} changed since the graph was imported"
    if _is_graph_json(p):
        return None, "the graph records no source model (bondflow's own graph JSON)"
    return p, None


def inputs_for(graph: Graph, model_path: str | Path | None = None, data: np.ndarray | None = None,
               samples: int = DEFAULT_SAMPLES, seed: int = 0) -> tuple[np.ndarray, str]:
    """The inputs fidelity is measured on: ``data``, else the example's ``data.npz`` next to the model, else
    every grid value equally often for integer input types, else N(0,1) when the input type spans +-4, else
    uniform over the input type's range (seeded)."""
    n = graph.input.size
    if data is not None:
        x = np.asarray(data, dtype=np.float64).reshape(len(data), -1)[:samples]
        return x, f"given data, {len(x)} rows"
    src, _ = _source(graph, model_path)
    npz = src.with_name("data.npz") if src is not None and src.is_file() else None
    if npz is not None and npz.is_file():
        with np.load(npz) as d:
            if "x_test" in d and int(np.prod(d["x_test"].shape[1:])) == n:
                x = np.asarray(d["x_test"], dtype=np.float64).reshape(len(d["x_test"]), -1)[:samples]
                return x, f"{npz.name} x_test, {len(x)} rows"
    rng = np.random.default_rng(seed)
    t = graph.input.type
    if t.frac_bits <= 0:
        # integer inputs (FINN's UINT8 pixels, a bipolar input's {-1, 0}): the source model only accepts integers,
        # and each grid value drawn equally often (a real-valued draw floored onto a 1-bit grid is one value)
        raw = rng.integers(t.min_raw, t.max_raw, (samples, n), endpoint=True)
        return t.to_float(raw), f"uniform over {t}'s grid values, seed {seed}"
    if t.min_value <= -4 and t.max_value >= 4:
        return rng.standard_normal((samples, n)), f"N(0,1), seed {seed}"
    return rng.uniform(t.min_value, t.max_value, (samples, n)), f"uniform over {t}'s range, seed {seed}"


def measure(graph: Graph, model_path: str | Path | None = None, data: np.ndarray | None = None,
            samples: int = DEFAULT_SAMPLES, seed: int = 0, trust_model: bool = False,
            reference: tuple[np.ndarray, str] | None = None) -> Fidelity:
    """Run the golden model and the source model (its own framework) on the same inputs and compare.

    ``reference`` may carry outputs already computed on ``data`` (compare does); otherwise the source is
    ``model_path`` or the graph's recorded source. Never raises for a model that cannot be run: the
    record says why instead.
    """
    from .ir import reference as golden
    x, desc = inputs_for(graph, model_path, data, samples, seed)
    base = dict(graph_digest=graph.digest(), inputs=desc, samples=len(x))
    warnings = table_warnings(graph)
    if reference is None:
        src, why = _source(graph, model_path)
        if src is None:
            return Fidelity(reference=None, unavailable=why, warnings=tuple(warnings), **base)
        from .frontend.float_model import source_predict
        yr, what = source_predict(src, x, trust_model, graph.meta.get("source_weights"))
        if yr is None:
            return Fidelity(reference=None, unavailable=what, warnings=tuple(warnings), **base)
    else:
        yr, what = reference
    yr = np.asarray(yr, dtype=np.float64).reshape(len(yr), -1)[:len(x)]
    x = x[:len(yr)]
    base["samples"] = len(x)
    y = golden.run(graph, x)
    if yr.shape != y.shape:
        return Fidelity(reference=None, unavailable=f"{what} gives {yr.shape[1:]} outputs per sample, the graph {y.shape[1:]}",
                        warnings=tuple(warnings), **base)
    task = _task(graph, y.shape[1])
    rng_ = float(yr.max() - yr.min()) if yr.size else 0.0
    scale = rng_ if rng_ > 0 else max(float(np.abs(yr).max()) if yr.size else 0.0, 1.0)
    err = np.abs(y - yr) / scale
    agreement = float(np.mean(_classes(y) == _classes(yr))) if task == "classifier" else None
    distinct = int(np.unique(y, axis=0).shape[0])
    ref_distinct = int(np.unique(yr, axis=0).shape[0])
    if distinct == 1 and ref_distinct > 1:
        warnings.append(f"constant outputs: all {len(x)} inputs give the same output row, the source model gives {ref_distinct}")
    if agreement is not None and agreement < POOR_AGREEMENT:
        warnings.append(f"class agreement {agreement:.3f} is below {POOR_AGREEMENT}")
    if task == "regressor" and float(err.mean()) > POOR_ERROR:
        warnings.append(f"mean error {100 * float(err.mean()):.1f} % of the output range is above {100 * POOR_ERROR:g} %")
    return Fidelity(reference=what, task=task, agreement=agreement, max_error=float(err.max()), mean_error=float(err.mean()),
                    output_range=rng_, distinct_outputs=distinct, reference_distinct_outputs=ref_distinct,
                    warnings=tuple(warnings), **base)


def check(fid: Fidelity, min_agreement: float | None = None, max_error: float | None = None) -> None:
    """Raise FidelityError when ``fid`` misses a limit the user set; a limit that cannot be checked is an error too."""
    for name, v in (("--min-agreement", min_agreement), ("--max-error", max_error)):
        if v is not None and not 0 <= v <= 1:
            raise ConfigError(f"{name} must lie in 0..1, not {v}")
    if min_agreement is None and max_error is None:
        return
    if fid.reference is None:
        raise FidelityError(f"fidelity must be measurable to check the limits you set, not unavailable: {fid.unavailable}")
    if min_agreement is not None:
        if fid.agreement is None:
            raise ConfigError(f"--min-agreement applies to classifiers (more than one output or a sigmoid), not a {fid.task}; use --max-error")
        if fid.agreement < min_agreement:
            raise FidelityError(f"class agreement with {fid.reference} must be >= {min_agreement}, not {fid.agreement:.3f}"
                                f" ({fid.samples} inputs: {fid.inputs})")
    if max_error is not None and (fid.mean_error or 0.0) > max_error:
        raise FidelityError(f"mean error vs {fid.reference} must be <= {max_error} of the output range, not {fid.mean_error:.4f}"
                            f" ({fid.samples} inputs: {fid.inputs})")


def recorded(graph: Graph) -> Fidelity | None:
    """The fidelity record a graph JSON carries from its import, when it was measured on this very graph."""
    d = graph.meta.get("fidelity")
    if isinstance(d, dict) and d.get("graph_digest") == graph.digest():
        try:
            return Fidelity.from_dict(d)
        except TypeError:
            return None
    return None


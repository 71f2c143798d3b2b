"""Design-space sweeps: a TOML grid of architectures, options and targets run on Dask, cached by digest, with a Pareto front."""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import tomllib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import BondflowError, ClusterError, ConfigError, MissingDependencyError
from ..fsutil import atomic_write_text
from ..ir.graph import Graph
from ..progress import get_reporter

__all__ = ["Sweep", "Point", "load_sweep", "expand", "pareto_front", "run_sweep", "open_client", "ARCH_OPTIONS",
           "GRID_AXES", "OBJECTIVES"]

log = logging.getLogger(__name__)

#: Bump when the meaning of a cached point changes, so old point files are not reused.
KEY_VERSION = "sweep-point-1"
SWEEP_KEYS = ("model", "weights", "target", "vectors", "simulator", "data", "objectives", "grid", "arch", "synth_timeout")
#: Options a sweep may vary per architecture (name -> (type, check, what is expected)); each is a generator argument.
ARCH_OPTIONS: dict[str, dict[str, tuple[type | tuple[type, ...], Callable[[Any], bool], str]]] = {
    "dataflow": {"reuse_factor": (int, lambda v: v >= 1, "an integer >= 1"),
                 "multipliers": (str, lambda v: v in ("lut", "dsp", "auto"), "'lut', 'dsp' or 'auto'"),
                 "stage_adders": (int, lambda v: v >= 1, "an integer >= 1"),
                 "parallelism": (int, lambda v: v >= 1, "an integer >= 1 (CNNs: output channels per cycle)")},
    "da4ml": {"stage_adders": (int, lambda v: v >= 1, "an integer >= 1")},
    "moldable": {"cores": ((int, str), lambda v: v == "auto" or (isinstance(v, int) and v >= 1), "an integer >= 1 or 'auto'"),
                 "lanes": (int, lambda v: 1 <= v <= 16, "an integer in 1..16")},
    "hls4ml": {"reuse_factor": (int, lambda v: v >= 1, "an integer >= 1"),
               "strategy": (str, lambda v: v in ("latency", "resource"), "'latency' or 'resource'")},
    "bondmachine": {"number_type": (str, lambda v: bool(v), "a number type such as 'fps16f10' or 'fixed<16,8>'")},
    "reference": {},
}
#: Model-level axes: importer options that change the graph's fixed-point types (Keras and ONNX models only).
GRID_AXES = ("input_precision", "default_precision")
#: Metrics a Pareto front can be taken over; all are minimized.
OBJECTIVES = ("latency_cycles", "ii_cycles", "lut", "ff", "dsp", "bram")
SIMULATORS = ("icarus", "verilator")
#: Short names for the point labels and the table.
_SHORT = {"reuse_factor": "rf", "parallelism": "par", "multipliers": "mult", "cores": "cores", "lanes": "lanes", "strategy": "strategy", "number_type": "nt",
          "input_precision": "in", "default_precision": "default"}


@dataclass
class Sweep:
    """A validated sweep file."""

    path: Path
    model: Path
    data: Path | None
    targets: list[str]
    vectors: int
    simulator: str
    objectives: list[str]
    grid: dict[str, list[str]]
    archs: list[tuple[str, dict[str, list[Any]]]]
    weights: Path | None = None  # the weights file of a Keras architecture JSON, when not next to it
    synth_timeout: float | None = None  # seconds; a longer yosys run leaves the point verified, unsynthesized


@dataclass
class Point:
    """One grid point: what runs, and the digest that names its cached result."""

    key: str
    label: str
    arch: str
    options: dict[str, Any]  # what the generator gets (reuse factors resolved per layer)
    requested: dict[str, Any]  # what the sweep file asked for
    grid: dict[str, str]
    target: str
    graph_digest: str


def _fail(path: Path, what: str) -> ConfigError:
    return ConfigError(f"{path.name}: {what}")


def _as_list(path: Path, where: str, value: Any, typ: type | tuple[type, ...], check: Callable[[Any], bool], expected: str) -> list[Any]:
    """A scalar or a non-empty list of ``typ`` values, each passing ``check``; bools are not integers here."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise _fail(path, f"{where} must be {expected} or a non-empty list of them, not an empty list (empty grid)")
    for v in values:
        if not isinstance(v, typ) or isinstance(v, bool) or not check(v):
            raise _fail(path, f"{where} must be {expected} (or a list of them), not {v!r}")
    if len(set(map(repr, values))) != len(values):
        raise _fail(path, f"{where} must list distinct values, not {values!r}")
    return values


def load_sweep(path: Path | str) -> Sweep:
    """Parse and validate a sweep file; every error names the key, what was expected and what was found."""
    from ..codegen.base import architectures
    from ..synth.targets import TARGETS
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"sweep file must exist, not be missing: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"sweep file must be UTF-8 TOML, not binary: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"sweep file must be valid TOML, not {e} ({path})") from None
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise _fail(path, f"keys must be among {', '.join(SWEEP_KEYS)}, not {', '.join(map(repr, unknown))}")
    if not isinstance(raw.get("model"), str) or not raw["model"]:
        raise _fail(path, f"'model' must be a model file path (relative to the sweep file), not {raw.get('model')!r}")
    model = (path.parent / raw["model"]).resolve()
    if not model.exists():
        raise _fail(path, f"'model' must name an existing file, not {str(model)!r}")
    if "data" in raw:
        if not isinstance(raw["data"], str):
            raise _fail(path, f"'data' must be an .npz path (relative to the sweep file), not {raw['data']!r}")
        data: Path | None = (path.parent / raw["data"]).resolve()
        if not data.exists():
            raise _fail(path, f"'data' must name an existing .npz file, not {str(data)!r}")
    else:  # like `bondflow compare`: the example's test data next to the model, when there is one
        data = model.with_name("data.npz") if model.with_name("data.npz").exists() else None
    targets = _as_list(path, "'target'", raw.get("target", "xc7z020"), str, lambda v: v in TARGETS,
                       f"one of {', '.join(TARGETS)}")
    vectors = raw.get("vectors", 500)
    if not isinstance(vectors, int) or isinstance(vectors, bool) or vectors < 1:
        raise _fail(path, f"'vectors' must be an integer >= 1, not {vectors!r}")
    simulator = raw.get("simulator", "icarus")
    if simulator not in SIMULATORS:
        raise _fail(path, f"'simulator' must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    synth_timeout = raw.get("synth_timeout")
    if synth_timeout is not None and (isinstance(synth_timeout, bool) or not isinstance(synth_timeout, (int, float))
                                      or not synth_timeout > 0):
        raise _fail(path, f"'synth_timeout' must be a number of seconds > 0, not {synth_timeout!r}")
    objectives = _as_list(path, "'objectives'", raw.get("objectives", ["latency_cycles", "lut"]), str,
                          lambda v: v in OBJECTIVES, f"one of {', '.join(OBJECTIVES)}")
    grid_raw = raw.get("grid", {})
    if not isinstance(grid_raw, dict):
        raise _fail(path, f"'grid' must be a table ([grid]), not {type(grid_raw).__name__}")
    bad = sorted(set(grid_raw) - set(GRID_AXES))
    if bad:
        raise _fail(path, f"[grid] keys must be among {', '.join(GRID_AXES)}, not {', '.join(map(repr, bad))}")
    from ..frontend.keras_files import is_keras_json
    weights = None
    if raw.get("weights") is not None:
        if not isinstance(raw["weights"], str) or not (path.parent / raw["weights"]).is_file():
            raise _fail(path, f"'weights' must name an existing weights file, not {raw['weights']!r}")
        weights = (path.parent / raw["weights"]).resolve()
    if grid_raw and model.suffix.lower() == ".json" and not is_keras_json(model):
        # A bondflow JSON graph carries its types; the importer options that change them do not apply.
        raise _fail(path, f"[grid] {', '.join(grid_raw)} must be used with a Keras or ONNX model, not a JSON graph")
    from ..ir.types import FixedType
    grid = {k: _as_list(path, f"[grid] '{k}'", v, str, lambda s: _parses(FixedType, s), "a fixed-point type such as "
                        "'fixed<8,3>' or 'fixed<8,3,RND_CONV,SAT>'") for k, v in grid_raw.items()}
    arch_raw = raw.get("arch")
    if not isinstance(arch_raw, list) or not arch_raw:
        raise _fail(path, f"'arch' must be one or more [[arch]] tables, not {arch_raw!r} (empty grid)")
    archs = []
    for i, table in enumerate(arch_raw):
        if not isinstance(table, dict):
            raise _fail(path, f"[[arch]] #{i + 1} must be a table, not {table!r}")
        name = table.get("name")
        if name not in architectures():
            raise _fail(path, f"[[arch]] #{i + 1} name must be one of {', '.join(architectures())}, not {name!r}")
        known = ARCH_OPTIONS[name]
        bad = sorted(set(table) - {"name"} - set(known))
        if bad:
            raise _fail(path, f"[[arch]] {name} options must be among {', '.join(['name', *known])}, "
                              f"not {', '.join(map(repr, bad))}")
        archs.append((name, {k: _as_list(path, f"[[arch]] {name} '{k}'", v, *known[k]) for k, v in table.items()
                             if k != "name"}))
    return Sweep(path.resolve(), model, data, targets, vectors, simulator, objectives, grid, archs, weights,
                 float(synth_timeout) if synth_timeout is not None else None)


def _parses(ftype: Any, s: str) -> bool:
    try:
        ftype.parse(s)
    except (BondflowError, ValueError):
        return False
    return True


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


def _label(arch: str, requested: dict[str, Any], grid: dict[str, str]) -> str:
    parts = [f"{_SHORT.get(k, k)}={v}" for k, v in {**grid, **requested}.items()]
    return " ".join([arch, *parts])


def expand(sweep: Sweep, load: Callable[..., Graph] | None = None) -> tuple[list[Point], dict[str, Graph], tuple[Any, Any]]:
    """All grid points (duplicates by key dropped), the graphs they use by digest, and the test data (x, y)."""
    if load is None:
        from .. import load_model as load
    x = y = None
    if sweep.data is not None:
        with np.load(sweep.data) as d:
            if "x_test" not in d:
                raise ConfigError(f"data file must hold x_test (and y_test), not only {', '.join(d.files)}: {sweep.data}")
            x, y = d["x_test"], (d["y_test"] if "y_test" in d else None)
    # The vectors a point simulates depend on the data too, so the data's content is part of every key.
    data_digest = _digest([x.tolist(), None if y is None else y.tolist()]) if x is not None else None
    graphs: dict[str, Graph] = {}
    points: dict[str, Point] = {}
    axes = list(sweep.grid)
    for combo in itertools.product(*(sweep.grid[a] for a in axes)):
        gopts = dict(zip(axes, combo))
        g = load(sweep.model, **gopts, **({"weights": sweep.weights} if sweep.weights else {}))
        graphs[g.digest()] = g
        for arch, opts in sweep.archs:
            names = list(opts)
            for values in itertools.product(*(opts[n] for n in names)):
                requested = dict(zip(names, values))
                options = dict(requested)
                if "reuse_factor" in options:  # as `bondflow compare`: per layer, the valid factor closest to the one asked
                    from ..codegen.hls4ml.generator import closest_valid_reuse
                    options["reuse_factor"] = closest_valid_reuse(g, options["reuse_factor"])
                for target in sweep.targets:
                    if arch == "dataflow" and options.get("multipliers") == "auto":
                        options = {**options, "target": target}  # fit this target's DSPs
                    key = _digest({"v": KEY_VERSION, "graph": g.digest(), "arch": arch, "options": options,
                                   "target": target, "vectors": sweep.vectors, "data": data_digest,
                                   "simulator": sweep.simulator,
                                   **({"synth_timeout": sweep.synth_timeout} if sweep.synth_timeout else {})})[:20]
                    if key not in points:  # e.g. rf=3 and rf=4 resolving to the same per-layer factors
                        points[key] = Point(key, _label(arch, requested, gopts), arch, options, requested, gopts, target,
                                            g.digest())
    return list(points.values()), graphs, (x, y)


def pareto_front(records: list[dict[str, Any]], objectives: list[str]) -> set[str]:
    """Keys of the points no other point of the same target beats (all objectives minimized).

    Only ok, bit-exact points with every objective measured compete; LUTs of different families are not
    comparable, so each target has its own front.
    """
    front: set[str] = set()
    by_target: dict[str, list[tuple[str, tuple[float, ...]]]] = {}
    for r in records:
        res = r["result"]
        vals = [res.get(o) for o in objectives]
        if res["status"] == "ok" and res["bit_exact"] and None not in vals:
            by_target.setdefault(r["target"], []).append((r["key"], tuple(vals)))
    for pts in by_target.values():
        for key, v in pts:
            dominated = any(all(a <= b for a, b in zip(w, v)) and w != v for _, w in pts)
            if not dominated:
                front.add(key)
    return front


def run_point(point: dict[str, Any], graph: Graph, out: str, vectors: int, simulator: str, x: Any, y: Any,
              synth_timeout: float | None = None) -> dict[str, Any]:
    """Dask task: one grid point through generate -> lint -> simulate -> synthesize in its own directory."""
    from .flow import run_arch
    res = run_arch(graph=graph, arch=point["arch"], options=point["options"], target=point["target"],
                   out=Path(out) / "work" / point["key"], vectors=vectors, simulator=simulator, data=x, labels=y,
                   progress=lambda m: log.info("%s %s", point["key"], m), label=point["label"], synth_timeout=synth_timeout)
    return asdict(res)


@contextmanager
def open_client(scheduler: str | None = None, workers: int = 2, timeout: str = "5s") -> Iterator[Any]:
    """A Dask client on an existing scheduler, or on a local cluster of ``workers`` single-threaded processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MissingDependencyError("dask[distributed]", "bondflow sweep") from None
    # distributed logs every connection at INFO through the root handler; keep that for `bondflow -v` only.
    dlog = logging.getLogger("distributed")
    saved = dlog.level
    if not logging.getLogger().isEnabledFor(logging.INFO):
        dlog.setLevel(logging.ERROR)
    try:
        with _client(Client, LocalCluster, scheduler, workers, timeout) as client:
            yield client
    finally:
        dlog.setLevel(saved)


@contextmanager
def _client(Client: Any, LocalCluster: Any, scheduler: str | None, workers: int, timeout: str) -> Iterator[Any]:
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as e:  # refused, unresolvable, timed out, malformed address
            msg = " ".join(str(e).split()) or type(e).__name__
            raise ClusterError(f"Dask scheduler must be reachable at {scheduler} within {timeout}, "
                               f"not unreachable: {msg}") from None
        except Exception as e:  # something listens there but does not speak Dask's protocol
            msg = " ".join(str(e).split())[:120]
            raise ClusterError(f"{scheduler} must be a Dask scheduler, not a peer that answered otherwise "
                               f"({type(e).__name__}: {msg})") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, not {workers}")
    try:
        # Processes, one thread each: a point keeps one core busy (simulator, yosys), more threads would only contend.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"local Dask cluster must start, not fail: {e}") from None
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _record(p: Point, sweep: Sweep, result: dict[str, Any]) -> dict[str, Any]:
    return {"key": p.key, "label": p.label, "arch": p.arch, "target": p.target, "requested": p.requested,
            "options": p.options, "grid": p.grid, "graph_digest": p.graph_digest, "vectors": sweep.vectors,
            "simulator": sweep.simulator, "result": result}


def run_sweep(sweep: Sweep, out: Path, client: Any, points: list[Point], graphs: dict[str, Graph], data: tuple[Any, Any],
              progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the points without a cached ok result on ``client``; write each point's file as it finishes; write the summary."""
    from distributed import as_completed
    out = Path(out)
    pdir = out / "points"
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for p in points:
        f = pdir / f"{p.key}.json"
        if f.exists():
            try:
                rec = json.loads(f.read_text())
            except json.JSONDecodeError:  # atomic writes make this unlikely; recompute rather than fail
                rec = None
            # Failed points are retried: the cause (a missing tool, a full disk) may have been fixed since.
            if rec is not None and rec.get("result", {}).get("status") == "ok":
                records[p.key] = {**rec, "cached": True}
                continue
        todo.append(p)
    progress(f"sweep: {len(points)} points, {len(points) - len(todo)} cached, {len(todo)} to run")
    if todo:
        x, y = data
        # Ship each graph and the data to the cluster once, not once per point.
        gfut = {d: client.scatter(g, broadcast=False) for d, g in graphs.items() if any(p.graph_digest == d for p in todo)}
        xf, yf = (None if v is None else client.scatter(v) for v in (x, y))
        futs = {client.submit(run_point, {"key": p.key, "arch": p.arch, "options": p.options, "target": p.target,
                                          "label": p.label}, gfut[p.graph_digest], str(out.resolve()), sweep.vectors,
                              sweep.simulator, xf, yf, sweep.synth_timeout, key=f"bondflow-sweep-{p.key}", pure=False): p for p in todo}
        with get_reporter().task("sweep", len(todo), "points", plain_lines=False) as bar:  # each point has its line
            for n, fut in enumerate(as_completed(futs), 1):
                _finish_point(futs[fut], fut, n, len(todo), sweep, pdir, records, progress)
                bar.advance()
    ordered = [records[p.key] for p in points]
    _attach_fidelity(ordered, graphs, sweep, data[0], progress)
    front = pareto_front(ordered, sweep.objectives)
    for r in ordered:
        r["pareto"] = r["key"] in front
    summary = {"sweep": str(sweep.path), "model": str(sweep.model), "targets": sweep.targets, "vectors": sweep.vectors,
               "simulator": sweep.simulator, "objectives": sweep.objectives, "points": ordered}
    atomic_write_text(out / "sweep.json", json.dumps(summary, indent=1, default=str))
    atomic_write_text(out / "sweep.md", markdown(ordered, sweep))
    return ordered


def _finish_point(p: Point, fut: Any, n: int, of: int, sweep: Sweep, pdir: Path, records: dict[str, dict[str, Any]],
                  progress: Callable[[str], None]) -> None:
    """Record one finished future (its point file first, so a killed sweep resumes after it) and say how it went."""
    try:
        result = fut.result()
    except Exception as e:  # a bug or a dead worker: this point fails, the others go on
        result = {"arch": p.arch, "options": p.options, "label": p.label, "status": "failed",
                  "error": f"{type(e).__name__}: {' '.join(str(e).split())}", "failed_step": None,
                  "bit_exact": None}
    rec = _record(p, sweep, result)
    atomic_write_text(pdir / f"{p.key}.json", json.dumps(rec, indent=1, default=str))
    records[p.key] = {**rec, "cached": False}
    status = result["status"] + ("" if result["status"] == "ok" else f" ({result.get('error')})")
    progress(f"[{n}/{of}] {p.target} {p.label}: {status}")


def _attach_fidelity(records: list[dict[str, Any]], graphs: dict[str, Graph], sweep: Sweep, x: Any,
                     progress: Callable[[str], None]) -> None:
    """One fidelity measurement per graph of the grid (precisions change it), stated for each point's design."""
    from ..fidelity import measure
    fids = {}
    for d in dict.fromkeys(r["graph_digest"] for r in records):
        if d in graphs:
            fids[d] = measure(graphs[d], sweep.model, data=x)
            progress(f"sweep: graph {d[:12]}: {fids[d].summary()}")
    for r in records:
        f = fids.get(r["graph_digest"])
        r["fidelity"] = None if f is None else f.for_design(r["result"].get("bit_exact"), r["result"].get("vectors")).to_dict()


def _fidelity_cell(f: dict[str, Any] | None) -> str:
    if not f or f.get("reference") is None:
        return "-"
    v = f"{f['agreement']:.3f}" if f.get("agreement") is not None else f"{100 * (f.get('mean_error') or 0):.2f} %"
    return v + (" POOR" if f.get("warnings") else "")


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def markdown(records: list[dict[str, Any]], sweep: Sweep) -> str:
    """The sweep as a markdown table, Pareto-optimal points marked with a star."""
    cols = ("latency_cycles", "ii_cycles", "lut", "ff", "dsp", "bram", "accuracy")
    head = ["pareto", "target", "point", "status", "bit_exact", *cols, "fidelity", "key"]
    lines = [f"# bondflow sweep: {sweep.path.name} ({sweep.model.name}, {sweep.vectors} vectors, {sweep.simulator})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        res = r["result"]
        row = ["*" if r["pareto"] else "", r["target"], r["label"], res["status"], _cell(res.get("bit_exact")),
               *(_cell(res.get(c)) for c in cols), _fidelity_cell(r.get("fidelity")), r["key"][:12]]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"\\* Pareto-optimal per target, minimizing {' and '.join(sweep.objectives)} "
                  "(ok, bit-exact points only). fidelity: class agreement with the source model (classifiers) or "
                  "mean error relative to its output range (regressors), POOR when a warning applies."]
    lines += [f"- **{r['target']} {r['label']}** failed in {r['result'].get('failed_step')}: {r['result'].get('error')}"
              for r in records if r["result"]["status"] != "ok"]
    return "\n".join(lines) + "\n"

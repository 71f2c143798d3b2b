"""hls4ml's example-model zoo as shipped: import time, graph size and fidelity of every Keras/ONNX file, or its one-line refusal.

Needs a checkout of github.com/fastmachinelearning/example-models (its `keras/` and `onnx/` folders), given with
`--zoo DIR` or `BONDFLOW_ZOO`; without one it says so and exits 0. Float models are imported with hls4ml's
default precision `fixed<16,6>` (the one-line error without it is recorded too). Writes results/zoo.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _util import RESULTS, write  # noqa: E402

#: hls4ml's default precision, for models with float weights or activations.
DEFAULT = "fixed<16,6>"


def models(zoo: Path) -> list[Path]:
    """Every model file of the zoo: Keras JSON (weights found next to it), .h5 models, .keras, .onnx."""
    keras = zoo / "keras"
    found = sorted(keras.glob("*.json")) + sorted(p for p in keras.glob("*.h5") if not p.stem.endswith("_weights"))
    return found + sorted(keras.glob("*.keras")) + sorted((zoo / "onnx").glob("*.onnx"))


def one(path: Path, samples: int) -> dict[str, Any]:
    """Import (with the default precision only when the model needs one), then measure fidelity."""
    import bondflow
    from bondflow.errors import BondflowError, QuantizationError
    from bondflow.fidelity import measure
    row: dict[str, Any] = {"model": f"{path.parent.name}/{path.name}"}
    t0 = time.perf_counter()
    try:
        try:
            g = bondflow.load_model(path)
        except QuantizationError as e:
            if "default precision" not in str(e):
                raise
            row["default_precision"] = DEFAULT
            t0 = time.perf_counter()
            g = bondflow.load_model(path, default_precision=DEFAULT)
    except BondflowError as e:
        row.update(status="refused", error=str(e).splitlines()[0][:300])
        return row
    row.update(status="ok", import_s=round(time.perf_counter() - t0, 3), ops=len(g.ops),
               macs=int(sum(o.macs() for o in g.ops)), params=int(sum(o.params() for o in g.ops)), digest=g.digest()[:16])
    n = samples if g.input.size <= 4096 else max(20, samples // 10)  # 256x256 images: the references run slowly
    t0 = time.perf_counter()
    f = measure(g, path, samples=n)
    row.update(fidelity_s=round(time.perf_counter() - t0, 2), fidelity=f.summary(), reference=f.reference,
               agreement=f.agreement, max_error=f.max_error, distinct_outputs=f.distinct_outputs, poor=f.poor)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", default=os.environ.get("BONDFLOW_ZOO"), help="example-models checkout")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--only", default="", help="comma-separated substrings of file names (their rows replace those in zoo.json)")
    args = ap.parse_args()
    if not args.zoo or not Path(args.zoo, "keras").is_dir():
        print("bench_zoo: skipped: no example-models checkout (pass --zoo DIR or set BONDFLOW_ZOO)")
        return 0
    rows = []
    warnings.simplefilter("ignore")
    for p in models(Path(args.zoo)):
        if args.only and not any(s in p.name for s in args.only.split(",")):
            continue
        r = one(p, args.samples)
        rows.append(r)
        what = r.get("fidelity") or r.get("error")
        print(f"{r['model']:55s} {r['status']:8s} {r.get('import_s', '-')!s:>7s} s  {what}", flush=True)
    if args.only:  # a partial run replaces its models' rows in the full table, keeping the others
        prev = RESULTS / "zoo.json"
        old = json.loads(prev.read_text())["rows"] if prev.exists() else []
        mine = {r["model"]: r for r in rows}
        rows = [mine.pop(r["model"], r) for r in old] + list(mine.values())
    ok = sum(r["status"] == "ok" for r in rows)
    out = write("zoo", {"zoo": str(Path(args.zoo).resolve()), "default_precision": DEFAULT, "imported": ok,
                        "models": len(rows), "rows": rows})
    print(f"{ok}/{len(rows)} imported; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

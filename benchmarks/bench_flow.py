"""`bondflow flow` on Iris from nothing: wall time per step (import, each candidate's generate/lint/sim/synth, choose, deploy),
as ratios to the import step measured in the same run."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import write  # noqa: E402

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris" / "model.h5"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", default="dataflow,dataflow:rf=4,moldable,moldable:cores=16:lanes=4,hls4ml")
    ap.add_argument("--vectors", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-flow-") as d:
        out = Path(d) / "flow"
        t0 = time.monotonic()
        imp = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "info", str(IRIS)], capture_output=True, text=True)
        t_import = time.monotonic() - t0
        assert imp.returncode == 0, imp.stderr
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "flow", str(IRIS), "--board", "pynq-z2", "--arch", a.arch,
                            "--vectors", str(a.vectors), "--max-latency-ns", "300", "-o", str(out)], capture_output=True, text=True)
        total = time.monotonic() - t0
        assert r.returncode == 0, r.stderr[-2000:]
        res = json.loads((out / "report" / "results.json").read_text())["results"]
        flow = json.loads((out / "flow.json").read_text())
    steps = {x["label"]: x["step_seconds"] for x in res}
    candidate_s = sum(sum(s.values()) for s in steps.values())
    data = {"model": "iris", "archs": a.arch, "vectors": a.vectors, "total_seconds": round(total, 1),
            "import_and_fidelity_seconds": round(t_import, 2), "candidate_steps_seconds": steps,
            "other_seconds (import, fidelity, choose, deploy)": round(total - candidate_s, 1),
            "total_vs_import": round(total / t_import, 1), "deployed": flow["deployed"], "why": flow["choice"]["why"]}
    print(json.dumps(data, indent=1))
    write("flow", data)


if __name__ == "__main__":
    main()

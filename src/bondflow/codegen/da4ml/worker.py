"""Runs inside da4ml's own interpreter (numpy 2): trace a lowered program, write da4ml's Verilog, report its ports.

Reads one JSON request on stdin and prints one JSON reply on stdout. Imports only the standard library,
numpy and da4ml: bondflow itself is not installed in da4ml's environment (numpy < 2 there vs >= 2 here).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def _round_half_even(x: Any, step: dict[str, Any]) -> Any:
    """Round half to even from da4ml's truncation: add (half - ulp) plus the kept LSB's parity times ulp, then TRN.

    With ``q = floor(x)`` at ``f`` bits and ``ulp`` the source's grid step, an exact tie lands on ``q + 1`` only
    when ``q`` is odd; every other value rounds to nearest as with RND.
    """
    f, src_f = step["f"], step["src_f"]
    parity = x.quantize(k=0, i=1 - f, f=f, overflow_mode="WRAP", round_mode="TRN")  # (q & 1) * 2^-f
    biased = x + (2.0 ** (-f - 1) - 2.0 ** -src_f) + parity * 2.0 ** (f - src_f)
    return biased.quantize(k=step["k"], i=step["i"], f=f, overflow_mode=step["overflow"], round_mode="TRN")


def _cast(x: Any, step: dict[str, Any]) -> Any:
    """One cast step of lower.py: da4ml's quantize, or round half to even built from it."""
    if step["op"] == "round_half_even":
        return _round_half_even(x, step)
    return x.quantize(k=step["k"], i=step["i"], f=step["f"], overflow_mode=step["overflow"], round_mode=step["round"])


def trace(req: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from da4ml import _version
    from da4ml.codegen import RTLModel
    from da4ml.trace import FixedVariableArray, comb_trace, to_pipeline
    from da4ml.types import minimal_kif

    t0 = time.perf_counter()
    k, i, f = (np.array(v) for v in zip(*req["inputs"]))
    inp = FixedVariableArray.from_kif(k, i, f)
    x = inp
    named: dict[str, Any] = {}  # tensors of a graph with branches, by node name (see lower.py)
    for step in req["steps"]:
        op = step["op"]
        if op == "load":
            x = named[step["name"]]
        elif op == "store":
            named[step["name"]] = x
        elif op == "sum":
            x = named[step["names"][0]]
            for name in step["names"][1:]:
                x = x + named[name]
        elif op == "concat":
            x = np.concatenate([named[name] for name in step["names"]])
        elif op == "per_element":  # each element its own casts (HGQ's per-element precision); None: always 0
            parts = []
            for j, casts in enumerate(step["elements"]):
                xj = x[j:j + 1]
                if casts is None:
                    parts.append(xj * 0.0)
                    continue
                for c in casts:
                    xj = _cast(xj, c)
                parts.append(xj)
            x = np.concatenate(parts)
        elif op == "matmul":
            x = x @ np.array(step["w"], dtype=np.float64)
        elif op == "add":
            x = x + np.array(step["c"], dtype=np.float64)
        elif op == "relu":
            x = x.relu()
        elif op in ("quantize", "round_half_even"):
            x = _cast(x, step)
        else:
            raise ValueError(f"lowered step must be a known op, not {op!r}")
    comb = comb_trace(inp, x, keep_dead_inputs=True)  # keep every input's bits in model_inp: a fixed port layout
    pipe = to_pipeline(comb, float(req["stage_adders"]), verbose=False)
    out_dir = Path(req["out_dir"])
    RTLModel(pipe, req["name"], out_dir, flavor="verilog", print_latency=False).write()
    seconds = time.perf_counter() - t0
    reply: dict[str, Any] = {
        "da4ml_version": _version.__version__,
        "stages": len(pipe.solutions),
        "inputs": [list(map(int, minimal_kif(q))) for q in pipe.inp_qint],
        "outputs": [list(map(int, minimal_kif(q))) for q in pipe.out_qint],
        "cost": float(comb.cost),
        "seconds": seconds,
    }
    if req.get("check"):  # da4ml's own C++ interpreter on the traced logic, for a generation-time cross-check
        reply["check"] = comb.predict(np.array(req["check"], dtype=np.float64)).tolist()
    return reply


def main() -> None:
    req = json.load(sys.stdin)
    try:
        reply = trace(req)
    except Exception as e:  # noqa: BLE001 - any da4ml failure goes back to bondflow as one line
        reply = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:500]}
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()

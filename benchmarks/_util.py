"""Benchmark helpers: best-of-N timing and JSON results."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def write(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    data = {"benchmark": name, "machine": platform.machine(), "python": platform.python_version(), **data}
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(data, indent=1) + "\n")
    return p

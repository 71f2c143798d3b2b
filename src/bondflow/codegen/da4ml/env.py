"""Find da4ml's own Python (it needs numpy >= 2, the project venv pins numpy < 2 for pynq) and run the worker there."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...errors import ConfigError, MissingDependencyError, ToolFailedError

__all__ = ["da4ml_python", "da4ml_version", "run_worker", "MIN_VERSION", "INSTALL_HINT"]

MIN_VERSION = (0, 6, 0)
VENV_NAME = ".venv-da4ml"
INSTALL_HINT = f"python3 -m venv {VENV_NAME} && {VENV_NAME}/bin/pip install da4ml==0.6.0 (or set BONDFLOW_DA4ML_PYTHON)"
_WORKER = Path(__file__).with_name("worker.py")


def _candidates() -> list[Path]:
    if os.environ.get("BONDFLOW_DA4ML_PYTHON"):  # an explicit choice is the only one
        return [Path(os.environ["BONDFLOW_DA4ML_PYTHON"])]
    found = []
    if importlib.util.find_spec("da4ml") is not None:  # a numpy-2 venv that has everything
        found.append(Path(sys.executable))
    repo = Path(__file__).resolve().parents[4]  # src/bondflow/codegen/da4ml -> the checkout (editable install)
    found += [repo / VENV_NAME / "bin" / "python", Path.cwd() / VENV_NAME / "bin" / "python"]
    return found


def _probe() -> tuple[str, str]:
    return _probe_in(tuple(map(str, _candidates())))


@lru_cache(maxsize=4)
def _probe_in(candidates: tuple[str, ...]) -> tuple[str, str]:
    for py in map(Path, candidates):
        if not py.exists():
            continue
        r = subprocess.run([str(py), "-c", "from importlib.metadata import version; print(version('da4ml'))"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return str(py), r.stdout.strip()
    raise MissingDependencyError("da4ml", f"the da4ml architecture (in its own venv: {INSTALL_HINT})")


def da4ml_python() -> str:
    return _probe()[0]


def da4ml_version() -> str:
    """da4ml's version, refusing one older than MIN_VERSION (its tracing API changed in 0.6)."""
    ver = _probe()[1]
    parts = tuple(int(p) for p in ver.split(".")[:3] if p.isdigit())
    if parts < MIN_VERSION:
        raise ConfigError(f"da4ml must be >= {'.'.join(map(str, MIN_VERSION))}, not {ver}; install: {INSTALL_HINT}")
    return ver


def run_worker(request: dict[str, Any]) -> dict[str, Any]:
    """Send one request to worker.py under da4ml's Python; a da4ml failure is one line."""
    da4ml_version()
    cmd = [da4ml_python(), str(_WORKER)]
    r = subprocess.run(cmd, input=json.dumps(request), capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolFailedError("da4ml", r.returncode, None, r.stderr[-400:], cmd)
    try:
        reply = json.loads(r.stdout)
    except json.JSONDecodeError:
        raise ToolFailedError("da4ml", 0, None, (r.stdout + r.stderr)[-400:], cmd) from None
    if "error" in reply:
        raise ConfigError(f"da4ml must trace the graph, not fail: {reply['error']}")
    return reply

"""Where HGQ2 lives (a --target directory beside the venv, see requirements-hgq.lock) and how a child process runs it."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import MissingDependencyError

__all__ = ["hgq_path", "hgq_child_env", "HGQ_DIR", "INSTALL_HINT"]

HGQ_DIR = ".venv-hgq"
INSTALL_HINT = f"make setup (pip install --no-deps --target {HGQ_DIR} -r requirements-hgq.lock), or set BONDFLOW_HGQ_PATH"


def hgq_path() -> Path:
    """The directory holding the ``hgq`` package; never on this process's path (its ``qkeras`` shim replaces QKeras)."""
    if os.environ.get("BONDFLOW_HGQ_PATH"):
        cands = [Path(os.environ["BONDFLOW_HGQ_PATH"])]  # an explicit choice is the only one
    else:
        repo = Path(__file__).resolve().parents[3]  # src/bondflow/frontend -> the checkout (editable install)
        cands = [repo / HGQ_DIR, Path.cwd() / HGQ_DIR]
    for d in cands:
        if (d / "hgq" / "__init__.py").is_file():
            return d
    raise MissingDependencyError("hgq2", f"running HGQ's own inference (not found in {', '.join(map(str, cands))}: {INSTALL_HINT})")


def hgq_child_env() -> dict[str, str]:
    """Environment for ``sys.executable`` running HGQ2: Keras 3 on TensorFlow, HGQ's directory first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # bondflow routes tf.keras to tf_keras
    path = [str(hgq_path())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])  # before the venv's site-packages
    env.update(PYTHONPATH=os.pathsep.join(path), KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    return env

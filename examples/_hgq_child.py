"""Run an example's training under HGQ2's own environment (Keras 3), which lives beside bondflow's venv."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable


def run_under_hgq(main: Callable[[], None], script: str) -> None:
    """Call ``main`` when already in HGQ's environment, else re-run ``script`` there (bondflow's venv routes keras to
    tf_keras, so HGQ cannot import in it) and exit with its status."""
    if os.environ.get("BONDFLOW_HGQ_CHILD") == "1":
        main()
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from bondflow.frontend.hgq_runtime import hgq_child_env
    env = {**hgq_child_env(), "BONDFLOW_HGQ_CHILD": "1", "TF_DETERMINISTIC_OPS": "1"}
    sys.exit(subprocess.run([sys.executable, script], env=env).returncode)

"""ONNX/QONNX import time of the test models (field exports, binary, ternary, normalisation, BN, MultiThreshold, 1-3-bit and non-power-of-two-scale activations), as ratios to onnx.load + qonnx cleanup in the same run; QKeras sign-activation model import time; HGQ2 model import
time against HGQ's own keras.saving.load_model (timed inside a Keras 3 child process, imports excluded)."""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "frontend"))  # the test models' builders (onnx.helper only)
from _util import best_of, write  # noqa: E402

import bondflow  # noqa: E402


def reference_load(path: Path) -> None:
    """What any QONNX tool does first: parse the file and run qonnx's cleanup."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model
    cleanup_model(ModelWrapper(onnx.load(str(path))))


def main() -> None:
    from test_onnx_import import qonnx_mlp
    from test_qonnx_field import MODELS as FIELD
    from test_qonnx_norm import MODELS as NORM, tfc_w1a1
    from test_qonnx_scale import scaled
    from test_qonnx_threshold import finn_streamlined
    from test_sign_activations import qonnx_low_bit
    builders = {"third_party_mlp": qonnx_mlp, **FIELD, **NORM, "finn_multithreshold": finn_streamlined, "tfc_w1a1": tfc_w1a1,
                "low_bit_activations": qonnx_low_bit, "non_po2_scales": scaled}
    rows = []
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, build in builders.items():
            p = build(Path(d) / f"{name}.onnx")
            g = bondflow.load_model(p)  # warm: imports of onnx/qonnx are paid once, not per model
            t_bf = best_of(lambda: bondflow.load_model(p), 3)
            t_ref = best_of(lambda: reference_load(p), 3)
            rows.append({"model": name, "ops": len(g.ops), "params": int(sum(o.params() for o in g.ops)),
                         "bondflow_import_s": t_bf, "onnx_load_qonnx_cleanup_s": t_ref, "ratio_vs_cleanup": t_bf / t_ref})
            print(f"{name:20s} {len(g.ops):2d} ops {rows[-1]['params']:7d} params: import {t_bf * 1e3:7.1f} ms, "
                  f"onnx.load+cleanup {t_ref * 1e3:7.1f} ms, ratio {t_bf / t_ref:.2f}x")
    keras_rows = qkeras_sign_import() + hgq_import()
    ratios = np.array([r["ratio_vs_cleanup"] for r in rows])
    print(f"import / (onnx.load + qonnx cleanup): median {np.median(ratios):.2f}x, max {ratios.max():.2f}x; "
          f"slowest import {max(r['bondflow_import_s'] for r in rows):.3f} s")
    write("import", {"models": rows, "median_ratio_vs_cleanup": float(np.median(ratios)), "keras_models": keras_rows})


def qkeras_sign_import() -> list[dict]:
    """The QKeras model with binary/ternary activations (tests/frontend/test_sign_activations.py), as tf_keras.load_model."""
    import test_sign_activations as t
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    with tempfile.TemporaryDirectory() as d:
        p, _ = t.signnet.__wrapped__(_TmpFactory(Path(d)))
        bondflow.load_model(p, input_precision=t.INPUT)  # warm: TensorFlow's first model build
        t_bf = best_of(lambda: bondflow.load_model(p, input_precision=t.INPUT), 3)
        from bondflow.frontend.keras_files import _custom_objects
        t_ref = best_of(lambda: tfk.models.load_model(p, custom_objects=_custom_objects(), compile=False), 3)
    print(f"{'qkeras_sign_activations':20s} import {t_bf * 1e3:7.1f} ms, tf_keras load_model {t_ref * 1e3:7.1f} ms, ratio {t_bf / t_ref:.2f}x")
    return [{"model": "qkeras_sign_activations", "bondflow_import_s": t_bf, "tf_keras_load_model_s": t_ref, "ratio": t_bf / t_ref}]


_HGQ_LOAD = """
import os, sys, time
os.environ.pop("TF_USE_LEGACY_KERAS", None)
import keras, hgq  # noqa: F401
keras.saving.load_model(sys.argv[1], compile=False)
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter(); keras.saving.load_model(sys.argv[1], compile=False); best = min(best, time.perf_counter() - t0)
print(best)
"""


def hgq_import() -> list[dict]:
    """The HGQ2 per-element-precision MLP (tests/frontend/test_hgq.py) and the bundled HGQ2 CNN (examples/hgq_digits_cnn):
    bondflow reads the .keras file without HGQ; the reference is HGQ's own load in a Keras 3 child."""
    import subprocess
    from test_hgq import hgq_mlp
    from bondflow.frontend.hgq_runtime import hgq_child_env
    rows = []
    with tempfile.TemporaryDirectory() as d:
        p, _, _ = hgq_mlp(Path(d) / "hgq_mlp.keras")
        for name, path in (("hgq2_per_element", p),
                           ("hgq2_digits_cnn", Path(__file__).resolve().parents[1] / "examples" / "hgq_digits_cnn" / "model.keras")):
            g = bondflow.load_model(path)
            t_bf = best_of(lambda: bondflow.load_model(path), 3)
            r = subprocess.run([sys.executable, "-c", _HGQ_LOAD, str(path)], capture_output=True, text=True,
                               env=hgq_child_env(), timeout=600)
            t_ref = float(r.stdout.strip().splitlines()[-1])
            print(f"{name:20s} {len(g.ops):2d} ops import {t_bf * 1e3:7.1f} ms, HGQ keras.saving.load_model "
                  f"{t_ref * 1e3:7.1f} ms, ratio {t_bf / t_ref:.2f}x")
            rows.append({"model": name, "ops": len(g.ops), "params": int(g.params()), "bondflow_import_s": t_bf,
                         "hgq_keras_load_model_s": t_ref, "ratio": t_bf / t_ref})
    return rows


class _TmpFactory:
    """Stands in for pytest's tmp_path_factory when a fixture body builds a model."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(exist_ok=True)
        return p


if __name__ == "__main__":
    main()

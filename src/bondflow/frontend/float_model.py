"""The trained model itself, run in floating point (Keras predict or ONNX Runtime): the accuracy designs are judged against."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BondflowError

__all__ = ["float_predict"]


def float_predict(path: str | Path, x: np.ndarray, trust_model: bool = False) -> tuple[np.ndarray, str] | None:
    """Outputs of the original model on ``x`` and what computed them; None when no float runtime applies.

    QKeras models run with their quantizers applied in floating point, as their authors trained and
    evaluated them. QONNX files with Quant nodes need QONNX's executor and return None here.
    """
    path = Path(path)
    x = np.asarray(x, dtype=np.float32)
    if path.suffix in (".h5", ".keras"):
        from .qkeras import _read_model
        model = _read_model(path, trust_model)
        y = np.asarray(model.predict(x, verbose=0, batch_size=1024), dtype=np.float64)
        return y.reshape(len(x), -1), "Keras predict (QKeras quantizers in floating point)"
    if path.suffix == ".onnx":
        try:
            import onnxruntime as ort
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            y = np.asarray(sess.run(None, {name: x})[0], dtype=np.float64)
        except (ImportError, BondflowError):
            return None
        except Exception:  # custom domains (QONNX Quant) are not runnable by ONNX Runtime: no float reference
            return None
        return y.reshape(len(x), -1), "ONNX Runtime"
    return None

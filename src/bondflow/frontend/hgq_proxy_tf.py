"""bondflow's own FixedPointQuantizer layer in TensorFlow, so HGQ v1 proxy models run in tf_keras as their fidelity reference.

HGQ itself is not needed (nor installed): the layer is written here from HGQ v1's published semantics
(``HGQ/proxy/fixed_point_quantizer.py``), in float32 as HGQ computes it: per element ``v = x * 2^(b-I)``, rounded
(TRN floor, RND floor(v + 1/2), RND_CONV half to even), bounded to ``b`` bits (SAT and SAT_SYM clip, WRAP wraps),
``v / 2^(b-I)``, and 0 where ``b == 0``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._compat import import_tensorflow

__all__ = ["REFERENCE", "fixed_point_quantizer_class", "proxy_predict"]

REFERENCE = "Keras predict (bondflow's FixedPointQuantizer in TensorFlow)"
_CLASSES: dict[int, type] = {}


def fixed_point_quantizer_class(tfk: Any) -> type:
    """The tf_keras layer class (one per tf_keras module) reading and writing HGQ's FixedPointQuantizer config and weights."""
    if id(tfk) in _CLASSES:
        return _CLASSES[id(tfk)]
    import tensorflow as tf

    class FixedPointQuantizer(tfk.layers.Layer):  # the class name is what proxy files name
        def __init__(self, RND: str = "TRN", SAT: str = "WRAP", shape: Any = (1,), overrides: dict | None = None,
                     fusible: bool | None = None, **kw: Any) -> None:
            kw.pop("trainable", None)
            super().__init__(trainable=False, **kw)
            if RND not in ("TRN", "RND", "RND_CONV") or SAT not in ("WRAP", "SAT", "SAT_SYM"):
                raise ValueError(f"FixedPointQuantizer '{self.name}' must round TRN/RND/RND_CONV and overflow "
                                 f"WRAP/SAT/SAT_SYM, not {RND}/{SAT}")
            self.RND, self.SAT, self.overrides, self.fusible = RND, SAT, overrides or {"layers": {}}, bool(fusible)
            self.bw_shape = tuple(int(d) for d in shape)
            # HGQ's variable order (keep_negative, bits, integers): tf_keras loads .h5 weights by position
            for n in ("keep_negative", "bits", "integers"):
                setattr(self, n, self.add_weight(name=n, shape=self.bw_shape, dtype="int8", initializer="zeros",
                                                 trainable=False))

        def call(self, x: Any) -> Any:
            f32 = tf.float32
            x = tf.cast(x, f32)
            k, b, i = (tf.cast(v, f32) for v in (self.keep_negative, self.bits, self.integers))
            scale = tf.pow(tf.constant(2.0, f32), b - i)
            v = x * scale
            v = tf.floor(v) if self.RND == "TRN" else tf.floor(v + 0.5) if self.RND == "RND" else tf.round(v)
            hi = tf.pow(tf.constant(2.0, f32), b - k) - 1.0  # the largest raw value of b bits (one is the sign if k)
            lo = -hi * k if self.SAT == "SAT_SYM" else -(hi + 1.0) * k
            if self.SAT == "WRAP":
                v = tf.math.floormod(v - lo, hi - lo + 1.0) + lo
            else:
                v = tf.minimum(tf.maximum(v, lo), hi)
            return v / scale * tf.cast(tf.not_equal(b, 0.0), f32)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "RND": self.RND, "SAT": self.SAT, "shape": list(self.bw_shape),
                    "overrides": self.overrides, "fusible": self.fusible}

    _CLASSES[id(tfk)] = FixedPointQuantizer
    return FixedPointQuantizer


def proxy_predict(path: Path, x: np.ndarray) -> tuple[np.ndarray | None, str]:
    """(outputs [n, k], what computed them) of the proxy model in tf_keras, or (None, why it could not run)."""
    from ..errors import BondflowError
    from .hgq_proxy import proxy_config
    try:
        proxy_config(path)  # refuse unknown layers (code-carrying ones among them) before TF builds anything
    except BondflowError as e:
        return None, f"the proxy model could not be loaded ({e})"
    tfk = import_tensorflow()
    cls = fixed_point_quantizer_class(tfk)
    try:
        model = tfk.models.load_model(str(path), custom_objects={"FixedPointQuantizer": cls, "HGQ>FixedPointQuantizer": cls},
                                      compile=False)
    except Exception as e:  # tf_keras raises many types for unreadable files
        msg = " ".join(str(e).split())[:160] or type(e).__name__
        return None, f"tf_keras could not load the proxy model ({type(e).__name__}: {msg})"
    x = np.asarray(x, dtype=np.float32)
    xin = x.reshape((len(x),) + tuple(int(d) for d in model.input_shape[1:]))
    y = np.asarray(model.predict(xin, verbose=0, batch_size=1024), dtype=np.float64)
    return y.reshape(len(x), -1), REFERENCE

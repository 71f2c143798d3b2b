"""Environment workarounds from the tested set, in one place (see ../shared/notes/environment.md)."""
from __future__ import annotations

import os
import sys

# QKeras needs Keras 2 on TF >= 2.16: route tf.keras to tf_keras before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def alias_keras_to_tf_keras() -> None:
    """hls4ml picks its Keras-3 parser when ``import keras`` is 3.x; make ``keras`` mean tf_keras first."""
    import tf_keras

    sys.modules["keras"] = tf_keras


def import_tensorflow():
    """Import TensorFlow + tf_keras lazily (3-6 s) with the workarounds applied; return tf_keras."""
    from .errors import MissingDependencyError

    try:
        import tensorflow  # noqa: F401
        import tf_keras
    except ImportError as e:
        raise MissingDependencyError("tensorflow/tf-keras", f"reading Keras models ({e})") from None
    return tf_keras

"""bondflow's own tf_keras stand-ins for the BinaryDense/TernaryDense layers and binary_tanh/ternary_tanh of early Keras BNN code."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bnn_custom_objects", "uses_bnn", "BNN_SOURCE"]

#: What the fidelity record names as its reference when a model uses these stand-ins.
BNN_SOURCE = "Keras predict (bondflow's BinaryDense/TernaryDense, binary_tanh/ternary_tanh)"

#: Names in a model config that need the stand-ins (the layer classes and the activations, by string).
_NAMES = ("BinaryDense", "TernaryDense", "binary_tanh", "ternary_tanh", "relu1")


def uses_bnn(cfg: Any) -> bool:
    """Whether a model config names any of the BNN layers or activations."""
    if isinstance(cfg, dict):
        return any(uses_bnn(v) for v in cfg.values())
    if isinstance(cfg, list):
        return any(uses_bnn(v) for v in cfg)
    return isinstance(cfg, str) and cfg in _NAMES


def bnn_custom_objects() -> dict[str, Any]:
    """The stand-in classes and functions, for a ``custom_objects`` scope (never registered globally).

    They implement the forward pass as published in the BinaryNet/TernaryNet Keras code (DingKe's nn_playground, which
    hls4ml's example models were trained with), in TensorFlow ops, including its straight-through forms; bondflow's
    importer computes the same values independently in numpy (``frontend/bnn.py``), so a test comparing the two can fail.
    """
    import tensorflow as tf
    import tf_keras

    def hard_sigmoid(x: Any) -> Any:
        return tf.clip_by_value(0.5 * x + 0.5, 0.0, 1.0)

    def round_through(x: Any) -> Any:
        return x + tf.stop_gradient(tf.round(x) - x)  # tf.round: half to even

    def binary_tanh(x: Any) -> Any:
        return 2.0 * round_through(hard_sigmoid(x)) - 1.0

    def ternarize(w: Any, h: Any = 1.0) -> Any:
        x = w / h
        t = tf.where(x > 0.5, tf.ones_like(x), tf.where(x <= -0.5, -tf.ones_like(x), tf.zeros_like(x))) * h
        return w + tf.stop_gradient(t - w)

    def ternary_tanh(x: Any) -> Any:
        return ternarize(tf.clip_by_value(x, -1.0, 1.0))

    def relu1(x: Any) -> Any:  # hls4ml's relu1 (relu_max<1>); the zoo's relu_max model names it
        return tf.clip_by_value(x, 0.0, 1.0)

    class _BnnDense(tf_keras.layers.Dense):
        """Dense whose forward kernel is a function of the stored one; H and the learning-rate multipliers are kept."""

        def __init__(self, units: int, H: Any = 1.0, kernel_lr_multiplier: Any = "Glorot",
                     bias_lr_multiplier: Any = None, **kwargs: Any) -> None:
            super().__init__(units, **kwargs)
            self.H, self.kernel_lr_multiplier, self.bias_lr_multiplier = H, kernel_lr_multiplier, bias_lr_multiplier

        def build(self, input_shape: Any) -> None:
            n_in = int(input_shape[-1])
            if self.H == "Glorot":  # as the source code resolves it
                self.H = np.float32(np.sqrt(1.5 / (n_in + self.units)))
            if self.kernel_lr_multiplier == "Glorot":
                self.kernel_lr_multiplier = np.float32(1.0 / np.sqrt(1.5 / (n_in + self.units)))
            super().build(input_shape)

        def forward_kernel(self) -> Any:
            raise NotImplementedError

        def call(self, inputs: Any) -> Any:
            out = tf.matmul(inputs, self.forward_kernel())
            if self.use_bias:
                out = tf.nn.bias_add(out, self.bias)
            return self.activation(out) if self.activation is not None else out

        def get_config(self) -> dict[str, Any]:
            cfg = super().get_config()
            cfg.update(H=float(self.H) if isinstance(self.H, (float, np.floating, int)) else self.H,
                       kernel_lr_multiplier=self.kernel_lr_multiplier, bias_lr_multiplier=self.bias_lr_multiplier)
            return cfg

    class BinaryDense(_BnnDense):
        """H * binary_tanh(W / H): +-H."""

        def forward_kernel(self) -> Any:
            h = tf.cast(self.H, self.kernel.dtype)
            return h * binary_tanh(self.kernel / h)

    class TernaryDense(_BnnDense):
        """ternarize(W, H): +H above 0.5 H, -H at or below -0.5 H, else 0."""

        def forward_kernel(self) -> Any:
            return ternarize(self.kernel, tf.cast(self.H, self.kernel.dtype))

    return {"BinaryDense": BinaryDense, "TernaryDense": TernaryDense, "binary_tanh": binary_tanh,
            "ternary_tanh": ternary_tanh, "relu1": relu1}

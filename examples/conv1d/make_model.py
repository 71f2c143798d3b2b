"""Train the bundled Conv1D example: a QKeras 1-D CNN classifying synthetic 32-sample pulse shapes (seeded, seconds)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import seed_everything  # noqa: E402

import numpy as np  # noqa: E402

SEED = 5
N = 32


def pulses(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three pulse shapes (fast, slow, double) at random times and heights, with noise: a detector-like task."""
    t = np.arange(N)
    y = rng.integers(0, 3, n)
    t0 = rng.uniform(4, 20, n)[:, None]
    a = rng.uniform(1.0, 3.0, n)[:, None]
    fast = np.exp(-np.clip(t - t0, 0, None) / 1.5) * (t >= t0)
    slow = np.exp(-np.clip(t - t0, 0, None) / 6.0) * (t >= t0)
    double = fast + np.exp(-np.clip(t - t0 - 6, 0, None) / 1.5) * (t >= t0 + 6)
    x = a * np.select([y[:, None] == 0, y[:, None] == 1], [fast, slow], double) + rng.normal(0, 0.1, (n, N))
    return x[..., None].astype(np.float32), y


def main() -> None:
    import tf_keras as keras
    from qkeras import QActivation, QConv1D, QDense, quantized_bits, quantized_relu

    seed_everything(SEED)
    rng = np.random.default_rng(SEED)
    x_tr, y_tr = pulses(rng, 3000)
    x_te, y_te = pulses(rng, 600)
    q = dict(bits=8, integer=0, alpha=1)
    model = keras.Sequential([
        keras.layers.InputLayer(input_shape=(N, 1), name="trace"),
        QConv1D(4, 5, kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name="conv1"),
        QActivation(quantized_relu(8, 3), name="relu1"),
        keras.layers.MaxPooling1D(2, name="pool1"),
        QConv1D(8, 3, strides=2, kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name="conv2"),
        QActivation(quantized_relu(8, 3), name="relu2"),
        keras.layers.Flatten(name="flatten"),
        QDense(3, kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name="logits"),
    ], name="pulse_conv1d")
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=10, batch_size=32, verbose=0, shuffle=True)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    model.save(HERE / "model.h5")
    (HERE / "model.h5.bondflow.json").write_text(json.dumps({"input_precision": "fixed<10,3,RND_CONV,SAT>"}, indent=1) + "\n")
    np.savez(HERE / "data.npz", x_test=x_te.reshape(len(x_te), -1), y_test=y_te)
    print(f"conv1d: test accuracy {acc:.3f}, saved {HERE / 'model.h5'}")


if __name__ == "__main__":
    main()

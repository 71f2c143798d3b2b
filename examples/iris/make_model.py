"""Train the bundled Iris example: a QKeras 4-16-8-3 MLP, 8-bit, on scikit-learn's Iris data (seeded)."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 7


def main() -> None:
    import tensorflow as tf
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    random.seed(SEED)
    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    x, y = load_iris(return_X_y=True)
    # Standardize so features sit inside fixed<8,3>'s [-4, 4) input range.
    mean, std = x.mean(axis=0), x.std(axis=0)
    x = ((x - mean) / std).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)

    q8 = dict(bits=8, integer=0, alpha=1)
    model = keras.Sequential([
        keras.layers.InputLayer(input_shape=(4,), name="features"),
        QDense(16, kernel_quantizer=quantized_bits(**q8), bias_quantizer=quantized_bits(**q8), name="fc1"),
        QActivation(quantized_relu(8, 3), name="relu1"),
        QDense(8, kernel_quantizer=quantized_bits(**q8), bias_quantizer=quantized_bits(**q8), name="fc2"),
        QActivation(quantized_relu(8, 3), name="relu2"),
        QDense(3, kernel_quantizer=quantized_bits(**q8), bias_quantizer=quantized_bits(**q8), name="logits"),
    ], name="iris_mlp")
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=60, batch_size=16, verbose=0, shuffle=True)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    model.save(HERE / "model.h5")
    (HERE / "model.h5.bondflow.json").write_text(json.dumps({"input_precision": "fixed<8,3,RND_CONV,SAT>"}, indent=1) + "\n")
    np.savez(HERE / "data.npz", x_test=x_te, y_test=y_te, feature_mean=mean, feature_std=std)
    print(f"iris: test accuracy {acc:.3f}, saved {HERE / 'model.h5'}")


if __name__ == "__main__":
    main()

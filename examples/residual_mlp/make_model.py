"""Train the bundled residual MLP: a QKeras functional model with an Add skip and a Concatenate on scikit-learn's 8x8 digits (seeded, seconds)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import seed_everything  # noqa: E402

import numpy as np  # noqa: E402

SEED = 5


def main() -> None:
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    seed_everything(SEED)
    x, y = load_digits(return_X_y=True)  # shipped inside scikit-learn: no download
    x = (x / 4.0).astype(np.float32)  # pixels 0..16 -> 0..4 in steps of 1/4: exact in the ufixed<8,3> input type
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    q = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))
    L = keras.layers
    inp = L.Input((64,), name="pixels")
    h1 = QActivation(quantized_relu(8, 3), name="relu1")(QDense(16, name="fc1", **q)(inp))
    h2 = QActivation(quantized_relu(8, 3), name="relu2")(QDense(16, name="fc2", **q)(h1))
    h3 = QDense(16, name="fc3", **q)(h2)
    res = QActivation(quantized_relu(8, 3), name="relu3")(L.Add(name="skip")([h3, h1]))  # residual block
    both = L.Concatenate(name="concat")([res, h1])  # the classifier reads the block and its input
    out = QDense(10, name="logits", **q)(both)
    model = keras.Model(inp, out, name="residual_mlp")
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=30, batch_size=32, verbose=0, shuffle=True)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    model.save(HERE / "model.h5")
    (HERE / "model.h5.bondflow.json").write_text(json.dumps({"input_precision": "ufixed<8,3,RND_CONV,SAT>"}, indent=1) + "\n")
    np.savez(HERE / "data.npz", x_test=x_te, y_test=y_te)
    print(f"residual_mlp: test accuracy {acc:.3f}, saved {HERE / 'model.h5'}")


if __name__ == "__main__":
    main()

"""Train the bundled HGQ2 CNN: per-element bit widths over every pixel learnt on scikit-learn's 8x8 digits (seeded; HGQ2 in a child).

The same network as ``examples/digits_cnn`` (conv 8 - max pool - conv 16 - average pool - dense 10) in HGQ2 layers:
each data-lane quantizer has its own width per pixel position and channel, trained down by the EBOPs penalty.
HGQ2 needs Keras 3 and lives beside bondflow's venv (requirements-hgq.lock): run from the checkout, this script
re-runs itself under HGQ's environment (bondflow.frontend.hgq_runtime.hgq_child_env).
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 3


def main() -> None:
    import keras
    import numpy as np
    from hgq.config import QuantizerConfigScope
    from hgq.layers import QAveragePooling2D, QConv2D, QDense, QMaxPooling2D
    from hgq.utils.sugar import FreeEBOPs
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(SEED)
    x, y = load_digits(return_X_y=True)  # shipped inside scikit-learn: no download
    x = (x / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    # Widths start at 6 fraction bits, saturating; the EBOPs penalty (beta) trains each element's width down.
    with QuantizerConfigScope(place="datalane", f0=6, i0=2, round_mode="RND", overflow_mode="SAT"):
        inp = keras.Input((8, 8, 1), name="image")
        h = QConv2D(8, (3, 3), padding="same", activation="relu", beta0=5e-7, name="conv1")(inp)
        h = QMaxPooling2D((2, 2), name="pool1")(h)
        h = QConv2D(16, (3, 3), padding="same", activation="relu", beta0=5e-7, name="conv2")(h)
        h = QAveragePooling2D((2, 2), name="pool2")(h)
        h = keras.layers.Flatten(name="flatten")(h)
        out = QDense(10, beta0=5e-7, name="logits")(h)
    model = keras.Model(inp, out, name="hgq_digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.005), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_tr, y_tr, epochs=80, batch_size=64, verbose=0, shuffle=True, callbacks=[FreeEBOPs()])
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    model.save(HERE / "model.keras")
    np.savez(HERE / "data.npz", x_test=x_te.reshape(len(x_te), -1), y_test=y_te)
    print(f"hgq_digits_cnn: test accuracy {acc:.3f}, saved {HERE / 'model.keras'}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    from _hgq_child import run_under_hgq
    run_under_hgq(main, __file__)

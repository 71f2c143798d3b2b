"""Train the bundled HGQ2 MLP: per-element bit widths learnt on scikit-learn's 8x8 digits (seeded, seconds; HGQ2 in a child).

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
    from hgq.layers import QDense
    from hgq.utils.sugar import FreeEBOPs
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(SEED)
    x, y = load_digits(return_X_y=True)  # shipped inside scikit-learn: no download
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    # Per-element widths start at 6 fraction bits; the EBOPs penalty (beta) trains them down (1 to 4 bits per input).
    with QuantizerConfigScope(place="datalane", f0=6, i0=2, round_mode="RND", overflow_mode="SAT"):
        inp = keras.Input((64,), name="pixels")
        h = QDense(24, activation="relu", beta0=3e-5, name="fc1")(inp)
        out = QDense(10, beta0=3e-5, name="logits")(h)
    model = keras.Model(inp, out, name="hgq_digits")
    model.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_tr, y_tr, epochs=60, batch_size=64, verbose=0, shuffle=True, callbacks=[FreeEBOPs()])
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    model.save(HERE / "model.keras")
    np.savez(HERE / "data.npz", x_test=x_te, y_test=y_te)
    print(f"hgq_digits: test accuracy {acc:.3f}, saved {HERE / 'model.keras'}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    from _hgq_child import run_under_hgq
    run_under_hgq(main, __file__)

"""Train the jet-tagger example: hls4ml's benchmark MLP 16-64-32-32-5, 6-bit QKeras, on synthetic jets (seeded).

The public jet dataset cannot be downloaded here, so five classes are drawn from Gaussian clusters in
16 features whose means differ per class; the architecture and quantization are the benchmark's.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import np, seed_everything  # noqa: E402

SEED = 11


def synthetic_jets(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    centers = rng.normal(0, 1.0, (5, 16))
    y = rng.integers(0, 5, n)
    x = centers[y] + rng.normal(0, 0.9, (n, 16))
    return x.astype(np.float32), y


def main() -> None:
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    seed_everything(SEED)
    rng = np.random.default_rng(SEED)
    x, y = synthetic_jets(6000, rng)
    x_tr, y_tr, x_te, y_te = x[:5000], y[:5000], x[5000:], y[5000:]
    q6 = dict(bits=6, integer=0, alpha=1)
    layers = [keras.layers.InputLayer(input_shape=(16,), name="jet_features")]
    for i, n in enumerate((64, 32, 32), start=1):
        layers += [QDense(n, kernel_quantizer=quantized_bits(**q6), bias_quantizer=quantized_bits(**q6), name=f"fc{i}"),
                   QActivation(quantized_relu(6, 2), name=f"relu{i}")]
    layers.append(QDense(5, kernel_quantizer=quantized_bits(**q6), bias_quantizer=quantized_bits(**q6), name="output"))
    model = keras.Sequential(layers, name="jet_tagger")
    model.compile(optimizer=keras.optimizers.Adam(0.005),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=8, batch_size=64, verbose=0)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    model.save(HERE / "model.h5")
    (HERE / "model.h5.bondflow.json").write_text(json.dumps({"input_precision": "fixed<16,6,RND_CONV,SAT>"}, indent=1) + "\n")
    np.savez(HERE / "data.npz", x_test=x_te[:500], y_test=y_te[:500])
    print(f"jet_tagger: test accuracy {acc:.3f}, saved {HERE / 'model.h5'}")


if __name__ == "__main__":
    main()

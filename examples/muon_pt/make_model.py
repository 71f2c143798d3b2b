"""Train the muon-pT example: CMS-style regressor 27-35-20-25-40-20-15-1, ReLU, ~ap_fixed<14,4>, pruned (seeded).

Synthetic data: 27 hit features whose pattern depends on 1/pT (bending), plus noise; the target is pT in
units of 100 GeV. Weights are magnitude-pruned to about 60 % zeros, then fine-tuned with the mask fixed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import np, seed_everything  # noqa: E402

SEED = 5
SPARSITY = 0.6


def synthetic_muons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    pt = rng.uniform(0.03, 1.0, n)  # x 100 GeV
    stations = np.linspace(0.2, 1.0, 27)
    bend = (1.0 / (pt[:, None] * 50.0)) * stations[None, :] * 4
    x = np.tanh(bend) * 3 + rng.normal(0, 0.1, (n, 27))
    return x.astype(np.float32), pt.astype(np.float32)


def main() -> None:
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    seed_everything(SEED)
    rng = np.random.default_rng(SEED)
    x, y = synthetic_muons(8000, rng)
    x_tr, y_tr, x_te, y_te = x[:7000], y[:7000], x[7000:], y[7000:]
    q = dict(bits=14, integer=3, alpha=1)
    layers = [keras.layers.InputLayer(input_shape=(27,), name="hits")]
    for i, n in enumerate((35, 20, 25, 40, 20, 15), start=1):
        layers += [QDense(n, kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name=f"fc{i}"),
                   QActivation(quantized_relu(14, 4), name=f"relu{i}")]
    layers.append(QDense(1, kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name="pt"))
    model = keras.Sequential(layers, name="muon_pt")
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="mse")
    model.fit(x_tr, y_tr, epochs=10, batch_size=64, verbose=0)
    # Magnitude pruning: zero the smallest weights of each layer, then fine-tune with the mask re-applied.
    masks = {}
    for layer in model.layers:
        if isinstance(layer, QDense):
            w, b = layer.get_weights()
            thr = np.quantile(np.abs(w), SPARSITY)
            masks[layer.name] = np.abs(w) > thr
            layer.set_weights([w * masks[layer.name], b])
    for _ in range(3):
        model.fit(x_tr, y_tr, epochs=1, batch_size=64, verbose=0)
        for layer in model.layers:
            if layer.name in masks:
                w, b = layer.get_weights()
                layer.set_weights([w * masks[layer.name], b])
    mse = float(model.evaluate(x_te, y_te, verbose=0))
    model.save(HERE / "model.h5")
    (HERE / "model.h5.bondflow.json").write_text(json.dumps({"input_precision": "fixed<14,4,RND_CONV,SAT>"}, indent=1) + "\n")
    np.savez(HERE / "data.npz", x_test=x_te[:500], y_test=y_te[:500])
    print(f"muon_pt: test MSE {mse:.4f} (pT/100 GeV), sparsity {SPARSITY:.0%}, saved {HERE / 'model.h5'}")


if __name__ == "__main__":
    main()

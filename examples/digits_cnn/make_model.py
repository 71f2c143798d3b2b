"""Train the bundled digits CNN: QKeras Conv2D-pool-Conv2D-pool-Dense on scikit-learn's 8x8 digits (seeded, seconds)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import digit_images, seed_everything  # noqa: E402

import numpy as np  # noqa: E402

SEED = 3


def main() -> None:
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu

    seed_everything(SEED)
    # Pixels in [0, 4]; the ufixed<8,2> input type saturates 4.0 to 3.984 (examples/residual_cnn uses ufixed<8,3>).
    x_tr, x_te, y_tr, y_te = digit_images(SEED)
    q = dict(bits=6, integer=0, alpha=1)
    model = keras.Sequential([
        keras.layers.InputLayer(input_shape=(8, 8, 1), name="image"),
        QConv2D(8, (3, 3), padding="same", kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name="conv1"),
        QActivation(quantized_relu(8, 3), name="relu1"),
        keras.layers.MaxPooling2D((2, 2), name="pool1"),
        QConv2D(16, (3, 3), padding="same", kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name="conv2"),
        QActivation(quantized_relu(8, 3), name="relu2"),
        keras.layers.AveragePooling2D((2, 2), name="pool2"),
        keras.layers.Flatten(name="flatten"),
        QDense(10, kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name="logits"),
    ], name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=15, batch_size=32, verbose=0, shuffle=True)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    model.save(HERE / "model.h5")
    (HERE / "model.h5.bondflow.json").write_text(json.dumps({"input_precision": "ufixed<8,2,RND_CONV,SAT>"}, indent=1) + "\n")
    np.savez(HERE / "data.npz", x_test=x_te.reshape(len(x_te), -1), y_test=y_te)
    print(f"digits_cnn: test accuracy {acc:.3f}, saved {HERE / 'model.h5'}")


if __name__ == "__main__":
    main()

"""Train the bundled residual CNN: a QKeras ResNet-style block (Add skip) and a channel Concatenate on scikit-learn's
8x8 digits (seeded, seconds): the branched CNN that dataflow streams through fifos."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import digit_images, seed_everything  # noqa: E402

import numpy as np  # noqa: E402

SEED = 5


def main() -> None:
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu

    seed_everything(SEED)
    # Pixels in [0, 4]: multiples of 1/4, held exactly by the ufixed<8,3> input type.
    x_tr, x_te, y_tr, y_te = digit_images(SEED)
    q = dict(bits=6, integer=0, alpha=1)

    def conv(n: int, name: str) -> QConv2D:
        return QConv2D(n, (3, 3), padding="same", kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q),
                       name=name)
    L = keras.layers
    img = L.Input((8, 8, 1), name="image")
    h = QActivation(quantized_relu(8, 3), name="relu1")(conv(8, "conv1")(img))
    r = QActivation(quantized_relu(8, 3), name="relu2")(conv(8, "conv2")(h))
    r = conv(8, "conv3")(r)
    h = QActivation(quantized_relu(8, 3), name="relu3")(L.Add(name="skip")([h, r]))  # the residual block
    h = L.Concatenate(axis=-1, name="with_image")([h, QActivation(quantized_relu(8, 3), name="relu_img")(img)])
    h = L.MaxPooling2D((2, 2), name="pool1")(h)
    h = QActivation(quantized_relu(8, 3), name="relu4")(conv(12, "conv4")(h))
    h = L.AveragePooling2D((2, 2), name="pool2")(h)
    out = QDense(10, kernel_quantizer=quantized_bits(**q), bias_quantizer=quantized_bits(**q), name="logits")(
        L.Flatten(name="flatten")(h))
    model = keras.Model(img, out, name="residual_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=15, batch_size=32, verbose=0, shuffle=True)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    model.save(HERE / "model.h5")
    (HERE / "model.h5.bondflow.json").write_text(json.dumps({"input_precision": "ufixed<8,3,RND_CONV,SAT>"}, indent=1) + "\n")
    np.savez(HERE / "data.npz", x_test=x_te.reshape(len(x_te), -1), y_test=y_te)
    print(f"residual_cnn: test accuracy {acc:.3f}, saved {HERE / 'model.h5'}")


if __name__ == "__main__":
    main()

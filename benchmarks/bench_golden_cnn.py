"""Golden-model throughput on the digits CNN (images/s), as a ratio to QKeras predict on the same images in the same run."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import best_of, write  # noqa: E402

import bondflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    out = {}
    for name in ("digits_cnn", "conv1d"):
        path = ROOT / "examples" / name / "model.h5"
        g = bondflow.load_model(path)
        n = 20_000
        t = g.input.type
        x = np.random.default_rng(0).uniform(t.min_value, t.max_value, (n, g.input.size))
        x_raw = bondflow.reference.quantize_input(g, x)
        t_golden = best_of(lambda: bondflow.reference.run_raw(g, x_raw), 3)
        from bondflow._compat import import_tensorflow
        tfk = import_tensorflow()
        from qkeras.utils import _add_supported_quantized_objects
        co: dict = {}
        _add_supported_quantized_objects(co)
        model = tfk.models.load_model(str(path), custom_objects=co, compile=False)
        xf = t.to_float(x_raw).astype(np.float32).reshape((n,) + g.input.shape)
        model.predict(xf[:1000], verbose=0)  # warm-up (graph tracing)
        t_keras = best_of(lambda: model.predict(xf, batch_size=4096, verbose=0), 3)
        same = bool(np.array_equal(bondflow.reference.run(g, x), model.predict(xf, batch_size=4096, verbose=0).reshape(n, -1)))
        out[name] = {"images": n, "macs_per_image": g.macs(), "golden_images_per_s": round(n / t_golden),
                     "qkeras_predict_images_per_s": round(n / t_keras), "golden_vs_qkeras_ratio": round(t_keras / t_golden, 3),
                     "outputs_identical": same}
        print(name, out[name])
    write("golden_cnn", out)


if __name__ == "__main__":
    main()

"""Golden-model throughput on the jet tagger, as ratios to QKeras predict() and a float32 numpy MLP measured in the same run."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import best_of, write  # noqa: E402

import bondflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    path = ROOT / "examples" / "jet_tagger" / "model.h5"
    g = bondflow.load_model(path)
    n = 100_000
    x = np.random.default_rng(0).uniform(-4, 4, (n, g.input.size))
    x_raw = bondflow.reference.quantize_input(g, x)
    t_golden = best_of(lambda: bondflow.reference.run_raw(g, x_raw), 3)

    # Second reference, no TF: the same MLP in float32 numpy (matmul + bias + ReLU), no quantization at all.
    layers = [(o.weight_type.to_float(o.weight).astype(np.float32), o.bias_type.to_float(o.bias).astype(np.float32))
              if o.kind == "dense" else getattr(o, "function", o.kind) for o in g.ops]

    def float_mlp() -> np.ndarray:
        h = x.astype(np.float32)
        for layer in layers:
            h = h @ layer[0] + layer[1] if isinstance(layer, tuple) else (np.maximum(h, 0) if layer == "relu" else h)
        return h
    t_numpy = best_of(float_mlp, 3)

    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    from qkeras.utils import _add_supported_quantized_objects
    co: dict = {}
    _add_supported_quantized_objects(co)
    model = tfk.models.load_model(str(path), custom_objects=co, compile=False)
    xf = g.input.type.to_float(x_raw).astype(np.float32)
    model.predict(xf[:1000], verbose=0)  # warm-up (graph tracing)
    t_keras = best_of(lambda: model.predict(xf, batch_size=8192, verbose=0), 3)
    res = {"model": "jet_tagger", "samples": n, "golden_samples_per_s": n / t_golden,
           "qkeras_predict_samples_per_s": n / t_keras, "golden_vs_qkeras_ratio": t_keras / t_golden,
           "numpy_float_mlp_samples_per_s": n / t_numpy, "golden_vs_numpy_float_ratio": t_numpy / t_golden}
    print(f"golden model: {res['golden_samples_per_s']:,.0f} samples/s; QKeras predict: "
          f"{res['qkeras_predict_samples_per_s']:,.0f} samples/s; ratio golden/QKeras = {res['golden_vs_qkeras_ratio']:.2f}x; "
          f"float32 numpy MLP: {res['numpy_float_mlp_samples_per_s']:,.0f} samples/s; ratio golden/numpy = "
          f"{res['golden_vs_numpy_float_ratio']:.2f}x")
    write("golden", res)


if __name__ == "__main__":
    main()

"""Golden-model throughput on the jet tagger, as a ratio to the float QKeras model's predict() in the same run."""
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
           "qkeras_predict_samples_per_s": n / t_keras, "golden_vs_qkeras_ratio": t_keras / t_golden}
    print(f"golden model: {res['golden_samples_per_s']:,.0f} samples/s; QKeras predict: "
          f"{res['qkeras_predict_samples_per_s']:,.0f} samples/s; ratio golden/QKeras = {res['golden_vs_qkeras_ratio']:.2f}x")
    write("golden", res)


if __name__ == "__main__":
    main()

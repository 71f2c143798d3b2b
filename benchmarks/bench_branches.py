"""Branched graphs through hls4ml: a QKeras residual CNN (Add + channel Concatenate, io_stream) and the bundled residual MLP;
C-simulation mismatches against the golden model, golden == QKeras, and build times."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import write  # noqa: E402

import bondflow  # noqa: E402
from bondflow.codegen.hls4ml.generator import build_project  # noqa: E402
from bondflow.sim.vectors import make_vectors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VECTORS = 1000


def residual_cnn(path: Path):
    """Seeded random weights: conv-relu-conv, Add with the block's input, relu, Concatenate with the image, pool, dense."""
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    q = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))
    L = tfk.layers
    x = L.Input((8, 8, 1), name="img")
    c1 = QActivation(quantized_relu(8, 3), name="r1")(QConv2D(4, 3, padding="same", name="c1", **q)(x))
    c2 = QConv2D(4, 3, padding="same", name="c2", **q)(c1)
    res = QActivation(quantized_relu(8, 3), name="r2")(L.Add(name="add")([c1, c2]))
    cat = L.Concatenate(name="cat")([res, c1])
    y = QDense(10, name="fc", **q)(L.Flatten(name="flat")(L.MaxPooling2D(2, name="pool")(cat)))
    m = tfk.Model(x, y, name="rescnn")
    rng = np.random.default_rng(0)
    for layer in m.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    m.save(path)
    return m


def main() -> None:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cnn = Path(tmp) / "rescnn.h5"
        model = residual_cnn(cnn)
        cases = {"residual_cnn": bondflow.load_model(cnn, input_precision="ufixed<8,2,RND_CONV,SAT>"),
                 "residual_mlp": bondflow.load_model(ROOT / "examples" / "residual_mlp" / "model.h5")}
        for name, g in cases.items():
            tv = make_vectors(g, VECTORS, 0)
            row: dict = {"ops": len(g.ops), "merges": [o.function for o in g.ops if o.kind == "merge"], "vectors": VECTORS}
            if name == "residual_cnn":
                xf = g.input.type.to_float(tv.inputs).astype(np.float32).reshape((VECTORS,) + g.input.shape)
                want = model.predict(xf, verbose=0).reshape(VECTORS, -1)
                row["golden_equals_qkeras"] = bool(np.array_equal(g.output.type.to_float(tv.expected), want))
            for source in (True, False):
                t0 = time.monotonic()
                prj = build_project(g, Path(tmp) / f"{name}_{source}", use_source=source)
                build_s = time.monotonic() - t0
                y = prj.predict_raw(tv.inputs)
                key = prj.source.replace(" ", "_")
                row[f"hls4ml_{key}_mismatches"] = int(np.count_nonzero(np.any(y != tv.expected, axis=1)))
                row[f"hls4ml_{key}_build_s"] = round(build_s, 1)
            out[name] = row
            print(name, row)
    write("branches", out)


if __name__ == "__main__":
    main()

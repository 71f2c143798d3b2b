"""The golden model runs big batches in chunks of rows: the same outputs, bounded memory."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import bondflow
from bondflow.ir import reference
from simgraphs import branchy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _raw(g, n: int) -> np.ndarray:
    t = g.input.type
    return np.random.default_rng(0).integers(t.min_raw, t.max_raw + 1, (n, g.input.size))


def test_chunked_equals_whole(monkeypatch) -> None:
    """A CNN (convolution windows counted) and a branched MLP: outputs equal whatever the chunk size."""
    cnn = bondflow.load_model(EXAMPLES / "digits_cnn" / "model.h5")
    for g, n in ((cnn, 300), (branchy(), 3000)):
        x = _raw(g, n)
        whole = reference.run_raw(g, x)
        assert reference.rows_per_chunk(g) >= n  # the default chunk holds these batches whole
        per_sample = reference.CHUNK_VALUES // reference.rows_per_chunk(g)
        monkeypatch.setattr(reference, "CHUNK_VALUES", 1)
        assert reference.rows_per_chunk(g) == 1
        assert np.array_equal(reference.run_raw(g, x), whole)
        monkeypatch.setattr(reference, "CHUNK_VALUES", per_sample * 7)  # about 7 rows per chunk, the last one partial
        assert 1 < reference.rows_per_chunk(g) < n
        assert np.array_equal(reference.run_raw(g, x), whole)
        monkeypatch.undo()


def test_big_images_get_small_chunks() -> None:
    """A 512x512 RGB convolution to 16 channels: a few samples per chunk, not the whole batch at once."""
    from bondflow.ir.graph import Graph, TensorSpec
    from bondflow.ir.tensor_ops import Conv
    from bondflow.ir.types import FixedType
    t = FixedType(8, 1)
    conv = Conv(name="c", input="x", result_type=FixedType(20, 8), weight=np.ones((3, 3, 3, 16), dtype=np.int64),
                weight_type=t, bias=np.zeros(16, dtype=np.int64), bias_type=t, accum_type=FixedType(20, 8),
                strides=(1, 1), pads=((1, 1), (1, 1)))
    g = Graph("big", TensorSpec("x", 512 * 512 * 3, t, (512, 512, 3)), (conv,))
    assert 1 <= reference.rows_per_chunk(g) <= 10

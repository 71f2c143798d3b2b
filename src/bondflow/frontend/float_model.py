"""The trained model itself, run by its own framework (Keras predict, ONNX Runtime, qonnx): what designs are judged against."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BondflowError

__all__ = ["float_predict", "source_predict", "QONNX_MAX_SAMPLES"]

#: qonnx's executor runs node by node in Python; beyond this many samples it takes minutes.
QONNX_MAX_SAMPLES = 500
#: Input values handed to Keras or ONNX Runtime in one call: big images go in small batches (ONNX Runtime held a
#: whole batch of 100 images of 512x512 with every intermediate tensor, and the process was killed for memory).
BATCH_VALUES = 1 << 20


def _batch_rows(x: np.ndarray) -> int:
    return max(1, min(1024, BATCH_VALUES // max(1, int(np.prod(x.shape[1:])))))


def float_predict(path: str | Path, x: np.ndarray, trust_model: bool = False,
                  weights: str | Path | None = None) -> tuple[np.ndarray, str] | None:
    """Outputs of the original model on ``x`` and what computed them; None when no runtime applies."""
    y, source = source_predict(path, x, trust_model, weights)
    return None if y is None else (y, source)


def source_predict(path: str | Path, x: np.ndarray, trust_model: bool = False,
                   weights: str | Path | None = None) -> tuple[np.ndarray | None, str]:
    """(outputs [n, k], what computed them), or (None, why no reference could run).

    QKeras models run with their quantizers applied in floating point, as their authors trained and
    evaluated them; early BNN code's BinaryDense/TernaryDense with bondflow's own stand-ins of those layers
    (``frontend/bnn_layers.py``, named so in the record); float ONNX runs in ONNX Runtime; QONNX (custom Quant nodes) in qonnx's executor,
    on at most ``QONNX_MAX_SAMPLES`` samples.
    """
    path = Path(path)
    x = np.asarray(x, dtype=np.float32)
    if path.suffix == ".keras":
        from .keras_files import keras3_config
        cfg3 = keras3_config(path)
        if cfg3 is not None:  # Keras 3 runs its own file (in a separate process)
            from .keras3 import keras3_predict
            y3, what3 = keras3_predict(path, x)
            if y3 is not None or '"qkeras.' not in json.dumps(cfg3):
                return y3, what3
            # QKeras for Keras 3 is not installed beside Keras 3: QKeras itself (on tf_keras) runs the same layers
            fallback = "QKeras predict on tf_keras (no QKeras for Keras 3 here)"
            y, what = _keras_predict(path, x, trust_model, weights)
            return y, (fallback if y is not None else what)
    from .hgq_proxy import is_proxy_file
    if is_proxy_file(path):  # HGQ's FixedPointQuantizer is not in tf_keras: bondflow's own TF version runs it
        from .hgq_proxy_tf import proxy_predict
        return proxy_predict(path, x)
    if path.suffix in (".h5", ".hdf5", ".keras", ".json") or path.is_dir():
        return _keras_predict(path, x, trust_model, weights)
    if path.suffix == ".onnx":
        return _onnx_predict(path, x)
    return None, f"no framework runs '{path.suffix or path.name}' files (only .h5/.keras/.json/SavedModel and .onnx)"


def _keras_predict(path: Path, x: np.ndarray, trust_model: bool, weights: str | Path | None) -> tuple[np.ndarray | None, str]:
    from .keras_files import read_model
    try:
        model = read_model(path, trust_model, weights)
    except BondflowError as e:
        return None, f"the Keras model could not be loaded ({e})"
    xin = x.reshape((len(x),) + tuple(d for d in model.input_shape[1:]))
    y = np.asarray(model.predict(xin, verbose=0, batch_size=_batch_rows(x)), dtype=np.float64)
    from .bnn_layers import BNN_SOURCE, uses_bnn  # early BNN code runs through bondflow's stand-ins: say so
    bnn = uses_bnn([[type(l).__name__, getattr(getattr(l, "activation", None), "__name__", "")] for l in model.layers])
    return y.reshape(len(x), -1), BNN_SOURCE if bnn else "Keras predict (QKeras quantizers in floating point)"


def _onnx_predict(path: Path, x: np.ndarray) -> tuple[np.ndarray | None, str]:
    try:
        import onnx
        import onnxruntime as ort
        from .onnx import strip_initializer_inputs
        proto = strip_initializer_inputs(onnx.load(str(path)))
        what = "ONNX Runtime"
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 7)
        if opset < 7:  # ONNX Runtime runs opset 7 and later: onnx's own converter brings older exports (PyTorch 0.x) up
            from onnx import version_converter
            proto = version_converter.convert_version(proto, 13)
            what = f"ONNX Runtime (opset {opset} converted to 13 by onnx's version converter)"
        _free_batch(proto)
        ort.set_default_logger_severity(4)  # a failed batched run falls back to single rows, then qonnx: its log is noise
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # its warnings, and errors of a batched run that falls back, are not the user's business
        sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        xin = x.reshape((len(x),) + tuple(int(d) for d in inp.shape[1:])) if all(isinstance(d, int) for d in inp.shape[1:]) else x
        try:
            y = _ort_rows(sess, inp.name, xin, _batch_rows(x))
        except Exception:  # an exporter that flattened its batch-1 graph from axis 0 runs one row at a time only
            y = _ort_rows(sess, inp.name, xin, 1)
            what += ", one sample per run"
        return y.reshape(len(x), -1), what
    except ImportError:
        ort_error = "onnxruntime is not installed"
    except Exception as e:  # custom domains (QONNX Quant) are not runnable by ONNX Runtime
        ort_error = f"ONNX Runtime cannot run it ({type(e).__name__})"
    try:
        return _qonnx_predict(path, x[:QONNX_MAX_SAMPLES])
    except ImportError:
        return None, f"{ort_error} and qonnx is not installed"
    except Exception as e:
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        return None, f"{ort_error} and qonnx's execute_onnx failed ({type(e).__name__}: {msg})"


def _ort_rows(sess: Any, name: str, xin: np.ndarray, rows: int) -> np.ndarray:
    """ONNX Runtime's outputs for ``xin`` in runs of ``rows`` samples, joined along the batch axis."""
    return np.concatenate([np.asarray(sess.run(None, {name: xin[i:i + rows]})[0], dtype=np.float64)
                           for i in range(0, len(xin), rows)])


def _free_batch(proto: Any, batch: int | str = "batch") -> Any:
    """Let a model run any batch: exporters may fix the batch dimension (e.g. at the training set's size)."""
    del proto.graph.value_info[:]  # stale per-tensor shapes of that batch; shape inference redoes them
    for v in (*proto.graph.input, *proto.graph.output):
        dims = v.type.tensor_type.shape.dim
        if len(dims) > 1:
            if isinstance(batch, str):
                dims[0].dim_param = batch
            else:
                dims[0].dim_value = batch
    return proto


def _qonnx_predict(path: Path, x: np.ndarray) -> tuple[np.ndarray, str]:
    """qonnx's reference executor, one sample at a time (QONNX exports usually fix the batch size at 1)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    import onnx

    from .onnx import strip_initializer_inputs
    proto = strip_initializer_inputs(onnx.load(str(path)))
    dims = proto.graph.input[0].type.tensor_type.shape.dim if len(proto.graph.input) == 1 else []
    if len(dims) > 1 and dims[0].dim_value != 1:  # a batch of 1 keeps its value_info: qonnx infers channels-last ops' shapes from it
        _free_batch(proto, 1)
    model = cleanup_model(ModelWrapper(proto))
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    shape = [int(d) for d in model.get_tensor_shape(iname)]
    rows = [np.asarray(execute_onnx(model, {iname: xi.reshape([1] + shape[1:])})[oname], dtype=np.float64).reshape(-1)
            for xi in x]
    return np.stack(rows), "qonnx execute_onnx"

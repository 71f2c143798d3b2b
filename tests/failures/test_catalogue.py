"""A catalogue of bad inputs and faults: each a typed error, one line naming expected and found, exit != 0, no traceback."""
from __future__ import annotations

import re

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.cli.main import main
from simgraphs import one_layer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IRIS = str(EXAMPLES / "iris" / "model.h5")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Shared bad inputs, built once."""
    w = tmp_path_factory.mktemp("bad")
    from bondflow._compat import import_tensorflow
    tfk = import_tensorflow()
    (w / "text.h5").write_text("not a model")
    (w / "trunc.h5").write_bytes(Path(IRIS).read_bytes()[:4000])
    (w / "corrupt.onnx").write_bytes(b"\x08\x07garbage" * 20)
    (w / "model.txt").write_text("x")
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(8, 8, 1)), tfk.layers.Conv2DTranspose(1, 2, name="up"),
                        tfk.layers.Flatten(), tfk.layers.Dense(2)])
    m.save(w / "conv.h5")
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(4,)), tfk.layers.Lambda(lambda x: x, name="lam"), tfk.layers.Dense(2)])
    m.save(w / "lambda.h5")
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(4,)), tfk.layers.Dense(3, name="fc")])
    m.save(w / "float.h5")
    m.layers[-1].set_weights([np.full((4, 3), np.nan), np.zeros(3)])
    m.save(w / "nan.h5")
    m.layers[-1].set_weights([np.full((4, 3), 100.0), np.zeros(3)])
    m.save(w / "big.h5")
    from qkeras import QDense, quantized_bits
    m = tfk.Sequential([tfk.layers.InputLayer(input_shape=(4,)),
                        QDense(2, kernel_quantizer=quantized_bits(8, 0, alpha="auto"), bias_quantizer=quantized_bits(8, 0), name="qa")])
    m.save(w / "alpha.h5")
    g = bondflow.load_model(IRIS)
    d = json.loads(g.to_json())
    d.pop("digest")
    cyc = json.loads(json.dumps(d))
    cyc["ops"][0]["input"] = cyc["ops"][-1]["name"]
    (w / "cycle.json").write_text(json.dumps(cyc))
    dang = json.loads(json.dumps(d))
    dang["ops"][1]["input"] = "nowhere"
    (w / "dangling.json").write_text(json.dumps(dang))
    edited = json.loads(g.to_json())
    edited["ops"][0]["weight"][0][0] += 1
    (w / "edited.json").write_text(json.dumps(edited))
    (w / "wrongformat.json").write_text(json.dumps({"format": "something-else"}))
    (w / "notjson.json").write_text("{nope")
    (w / "exists").mkdir()
    bondflow.generate(one_layer(), "reference").write(w / "ref")
    bondflow.generate(g, "dataflow").write(w / "iris_df")
    shutil.copytree(w / "ref", w / "syntax")
    v = (w / "syntax" / "rtl" / "bondflow_reference_fc.v")
    v.write_text(v.read_text().replace("always @(posedge clk) begin", "always @(posedge clk) begin oops;", 1))
    (w / "nomanifest").mkdir()
    crash = w / "crash_yosys"
    crash.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n")
    crash.chmod(crash.stat().st_mode | stat.S_IEXEC)
    # a 10,000-neuron layer
    rng = np.random.default_rng(0)
    from bondflow.ir.graph import Graph, TensorSpec
    from bondflow.ir.ops import Dense
    from bondflow.ir.types import FixedType
    acc = FixedType(32, 16)
    huge = Graph("huge", TensorSpec("x", 16, FixedType(8, 3)), (Dense(name="wide", input="x", result_type=acc,
                 weight=rng.integers(1, 8, (16, 10_000)), weight_type=FixedType(6, 1), bias=np.zeros(10_000),
                 bias_type=FixedType(6, 1), accum_type=acc),))
    bondflow.generate(huge, "dataflow").write(w / "huge")
    hls = bondflow.generate(one_layer(), "hls4ml", vectors=10)
    hls.write(w / "hls")
    return w


# (id, argv with {w} for the work dir, expected text in the message, environment overrides)
CASES: list[tuple[str, list[str], str, dict[str, str]]] = [
    ("missing-model", ["info", "{w}/none.h5"], "must exist", {}),
    ("text-as-h5", ["info", "{w}/text.h5"], "HDF5", {}),
    ("truncated-h5", ["info", "{w}/trunc.h5"], "must be a", {}),
    ("corrupt-onnx", ["info", "{w}/corrupt.onnx"], "valid ONNX", {}),
    ("unknown-extension", ["info", "{w}/model.txt"], "must be .h5", {}),
    ("unsupported-layer", ["info", "{w}/conv.h5", "--default-precision", "fixed<16,6>"], "'Conv2DTranspose' is not supported", {}),
    ("lambda-layer", ["info", "{w}/lambda.h5", "--default-precision", "fixed<16,6>"], "execute code", {}),
    ("float-no-precision", ["info", "{w}/float.h5"], "default precision must be given", {}),
    ("nan-weights", ["info", "{w}/nan.h5", "--default-precision", "fixed<16,6>"], "finite", {}),
    ("overflowing-weights", ["info", "{w}/big.h5", "--default-precision", "fixed<8,3>"], "must fit", {}),
    ("unsupported-quantizer", ["info", "{w}/alpha.h5"], "alpha must be 1", {}),
    ("bad-precision-text", ["info", "{w}/float.h5", "--default-precision", "float32"], "precision must look like", {}),
    ("graph-cycle", ["info", "{w}/cycle.json"], "must", {}),
    ("graph-dangling", ["info", "{w}/dangling.json"], "dangling", {}),
    ("graph-edited", ["info", "{w}/edited.json"], "digest", {}),
    ("graph-wrong-format", ["info", "{w}/wrongformat.json"], "format 'bondflow-graph'", {}),
    ("graph-not-json", ["info", "{w}/notjson.json"], "must be JSON", {}),
    ("import-output-exists", ["import", IRIS, "-o", "{w}/exists"], "--force", {}),
    ("generate-unknown-arch", ["generate", IRIS, "--arch", "fpga9000", "-o", "{w}/g1"], "must be one of", {}),
    ("generate-output-exists", ["generate", IRIS, "--arch", "dataflow", "-o", "{w}/exists"], "--force", {}),
    ("generate-rf-zero", ["generate", IRIS, "--arch", "dataflow", "--reuse-factor", "0", "-o", "{w}/g2"], "must be >= 1", {}),
    ("generate-rf-invalid", ["generate", IRIS, "--arch", "dataflow", "--reuse-factor", "3", "-o", "{w}/g3"], "must be one of [1, 2, 4", {}),
    ("generate-opt-format", ["generate", IRIS, "--arch", "dataflow", "--opt", "oops", "-o", "{w}/g4"], "KEY=VALUE", {}),
    ("generate-opt-unknown", ["generate", IRIS, "--arch", "dataflow", "--opt", "color=red", "-o", "{w}/g5"], "options must be among", {}),
    ("generate-stream-width", ["generate", IRIS, "--arch", "dataflow", "--stream-width", "12", "-o", "{w}/g6"], "multiple of", {}),
    ("generate-reference-multilayer", ["generate", IRIS, "--arch", "reference", "-o", "{w}/g7"], "not supported by the reference core", {}),
    ("generate-bondmachine-missing", ["generate", IRIS, "--arch", "bondmachine", "-o", "{w}/g8"], "must be installed",
     {"BONDFLOW_NEURALBOND": "/nonexistent/neuralbond"}),
    ("sim-no-manifest", ["sim", "{w}/nomanifest"], "design.json", {}),
    ("sim-not-a-dir", ["sim", "{w}/none"], "must be a directory", {}),
    ("sim-zero-vectors", ["sim", "{w}/ref", "--vectors", "0"], "must be >= 1", {}),
    ("sim-missing-simulator", ["sim", "{w}/ref"], "must be installed", {"BONDFLOW_IVERILOG": "/nonexistent/iverilog"}),
    ("sim-syntax-error", ["sim", "{w}/syntax", "--vectors", "10"], "bondflow_reference_fc.v:", {}),
    ("sim-hls-design", ["sim", "{w}/hls"], "Verilog RTL", {}),
    ("synth-unknown-target", ["synth", "{w}/ref", "--target", "xc9000"], "target must be one of", {}),
    ("synth-bad-clock", ["synth", "{w}/ref", "--clock-mhz", "-5"], "--clock-mhz must be", {}),
    ("synth-no-design", ["synth"], "design directory must be given", {}),
    ("synth-tool-crash", ["synth", "{w}/ref", "--target", "xc7z020", "--force"], "must exit 0, not 139", {"BONDFLOW_YOSYS": "{w}/crash_yosys"}),
    ("synth-timeout", ["synth", "{w}/ref", "--target", "xc7z020", "--force", "--timeout", "0.01"], "yosys must finish within 0.01 s", {}),
    ("synth-vivado-missing", ["synth", "{w}/ref", "--vivado"], "vivado", {"BONDFLOW_VIVADO": "/nonexistent/vivado"}),
    ("synth-xilinx-bitstream-no-vivado", ["synth", "{w}/ref", "--bitstream"], "vivado", {"BONDFLOW_VIVADO": "/nonexistent/vivado"}),
    ("synth-huge-layer", ["synth", "{w}/huge", "--target", "ice40-up5k", "--bitstream"], "160000 multipliers", {}),
    ("synth-hls-design", ["synth", "{w}/hls"], "Vitis HLS", {}),
    ("deploy-unknown-board", ["deploy", "{w}/ref", "--board", "pynq-z9", "-o", "{w}/b1"], "board must be one of", {}),
    ("deploy-hls-design", ["deploy", "{w}/hls", "--board", "pynq-z2", "-o", "{w}/b2"], "RTL behind the stream shell", {}),
    ("deploy-output-exists", ["deploy", "{w}/ref", "--board", "pynq-z2", "-o", "{w}/exists"], "--force", {}),
    ("compare-unknown-arch", ["compare", IRIS, "--arch", "nope", "-o", "{w}/c1"], "architecture must be one of", {}),
    ("compare-unknown-target", ["compare", IRIS, "--target", "nope", "-o", "{w}/c2"], "target must be one of", {}),
    ("compare-bad-arch-option", ["compare", IRIS, "--arch", "dataflow:speed=9", "-o", "{w}/c3"], "rf=N, cores=N, lanes=N, stage_adders=N or parallelism=N", {}),
]


#: A progress line in plain mode ends with its elapsed time: "[1.5 s]" or ", 26.4 s".
PROGRESS_LINE = re.compile(r"(\[\d+\.\d s\]|, \d+\.\d s)$")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_failure_case(case, work, capsys, monkeypatch) -> None:
    _, argv, expected, env = case
    for k, v in env.items():
        monkeypatch.setenv(k, v.format(w=work))
    from bondflow.tools import tool_version
    tool_version.cache_clear()
    before = sorted(p.name for p in work.iterdir())
    rc = main([a.format(w=work) for a in argv])
    lines = capsys.readouterr().err.strip().splitlines()
    err = lines[-1] if lines else ""
    assert rc != 0, f"exit code must be non-zero; stderr: {lines}"
    assert not any("Traceback" in line for line in lines)
    # Progress lines (stderr, timed) may come before the error; the error itself is one line, and the last.
    progress = [line for line in lines[:-1] if not PROGRESS_LINE.search(line)]
    assert not progress, f"message must be one line after progress lines, not:\n" + "\n".join(lines)
    assert err.startswith("bondflow: error: ") and expected in err, err
    assert sorted(p.name for p in work.iterdir()) == before  # nothing written, nothing half-written


def test_full_disk_is_one_line(work, capsys, monkeypatch) -> None:
    """ENOSPC while writing: one line, exit != 0, and the target file is not left half-written."""
    import errno
    import bondflow.fsutil as fs

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device", str(work / "g.json"))
    monkeypatch.setattr(fs.os, "fsync", full)
    rc = main(["import", IRIS, "-o", str(work / "g.json")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "No space left" in err and "\n" not in err
    assert not (work / "g.json").exists() and not list(work.glob(".g.json.*"))

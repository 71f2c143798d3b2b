#!/usr/bin/env bash
# The main job on the bundled Iris example: import, generate, verify (both simulators), synthesize.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
OUT=build/demo
rm -rf "$OUT" && mkdir -p "$OUT"
set -x
bondflow doctor
bondflow info examples/iris/model.h5
bondflow import examples/iris/model.h5 -o "$OUT/iris.json" --onnx "$OUT/iris.onnx"
bondflow generate examples/iris/model.h5 --arch hls4ml -o "$OUT/hls4ml"
bondflow generate examples/iris/model.h5 --arch dataflow -o "$OUT/dataflow"
bondflow generate examples/iris/model.h5 --arch dataflow --reuse-factor 4 -o "$OUT/dataflow_rf4"
bondflow sim "$OUT/dataflow" --simulator icarus --vectors 1000
bondflow sim "$OUT/dataflow" --simulator verilator --vectors 1000
bondflow sim "$OUT/dataflow_rf4" --simulator icarus --vectors 1000
bondflow synth "$OUT/dataflow" --target xc7z020
bondflow synth "$OUT/dataflow_rf4" --target ecp5-25k --bitstream

#!/usr/bin/env bash
# The main job on the bundled Iris example.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
OUT=build/demo
mkdir -p "$OUT"
set -x
bondflow info examples/iris/model.h5
bondflow import examples/iris/model.h5 -o "$OUT/iris.json" --onnx "$OUT/iris.onnx" --force

#!/usr/bin/env bash
# The main job on the bundled Iris example: import it, then compare every architecture available here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
OUT=build/demo
mkdir -p "$OUT"
set -x
bondflow doctor
bondflow info examples/iris/model.h5
bondflow import examples/iris/model.h5 -o "$OUT/iris.json" --onnx "$OUT/iris.onnx" --force
# Every generator side by side (exit 1 = an architecture failed: the report says why), then the choice under constraints.
# BondMachine's Iris design takes yosys about 45 minutes on 2 cores: past 10 minutes it stays verified, unsynthesized.
bondflow compare examples/iris/model.h5 --arch dataflow,dataflow:multipliers=lut,dataflow:rf=4,moldable,moldable:cores=16:lanes=4,da4ml,hls4ml,bondmachine --target xc7z020 \
    --vectors 500 --synth-timeout 600 -o "$OUT/compare" || true
bondflow choose "$OUT/compare" --max-latency-ns 200 --objective lut
# CNNs: shapes per layer, hls4ml's C simulation of the digits CNN against the golden model, and our streaming
# pipeline (one pixel per cycle, multiplier-free) verified on Verilator.
bondflow info examples/digits_cnn/model.h5
bondflow generate examples/digits_cnn/model.h5 --arch hls4ml -o "$OUT/digits_hls4ml" --force
bondflow generate examples/digits_cnn/model.h5 --arch dataflow --multipliers lut -o "$OUT/digits_dataflow" --force
bondflow sim "$OUT/digits_dataflow" --simulator verilator --vectors 300
bondflow generate examples/iris/model.h5 --arch dataflow --reuse-factor 4 -o "$OUT/dataflow_rf4" --force
bondflow synth "$OUT/dataflow_rf4" --target ecp5-25k --bitstream
bondflow generate examples/iris/model.h5 --arch dataflow --tlast batch -o "$OUT/dataflow_batch" --force
bondflow deploy "$OUT/dataflow_batch" --board pynq-z2 -o "$OUT/bundle" --force
bondflow deploy "$OUT/dataflow_rf4" --board alveo-u55c -o "$OUT/card_bundle" --force
echo "report: $OUT/compare/report.html"

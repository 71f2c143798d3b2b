"""Architecture "dataflow": hls4ml's fully parallel layer pipeline as vendor-free Verilog."""

"""Architecture "hls4ml": the real hls4ml HLS project, its C simulation, and vendor HLS when present."""

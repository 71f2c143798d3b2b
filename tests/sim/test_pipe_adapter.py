"""bondflow_pipe_adapter alone: no sample lost or repeated under any stall pattern; II = 1 when DEPTH >= LATENCY + 1."""
from __future__ import annotations

import json
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from bondflow.codegen.render import static_rtl

pytestmark = pytest.mark.sim

WRAPPER = """`timescale 1ns/1ps
`default_nettype none
module adapter_dut #(parameter integer LATENCY = 3, parameter integer DEPTH = 5) (
    input  wire clk, input wire rst_n,
    input  wire [15:0] in_data, input wire in_valid, output wire in_ready,
    output wire [15:0] out_data, output wire out_valid, input wire out_ready
);
    // A fake always-running pipeline: y = x + 1 after LATENCY cycles, a valid bit alongside.
    wire pipe_in_valid;
    reg [LATENCY-1:0] v;
    reg [15:0] d [0:LATENCY-1];
    integer k;
    always @(posedge clk) begin
        if (!rst_n) v <= {LATENCY{1'b0}};
        else begin
            v[0] <= pipe_in_valid;
            for (k = 1; k < LATENCY; k = k + 1) v[k] <= v[k-1];
        end
        d[0] <= in_data + 16'd1;
        for (k = 1; k < LATENCY; k = k + 1) d[k] <= d[k-1];
    end
    bondflow_pipe_adapter #(.LATENCY(LATENCY), .WIDTH(16), .DEPTH(DEPTH)) u_adapter (
        .clk(clk), .rst_n(rst_n), .in_valid(in_valid), .in_ready(in_ready), .pipe_in_valid(pipe_in_valid),
        .pipe_out_valid(v[LATENCY-1]), .pipe_out_data(d[LATENCY-1]),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
endmodule
`default_nettype wire
"""


@pytest.mark.parametrize("latency,depth", [(1, 3), (3, 5), (7, 9), (6, 3)])
def test_adapter(latency: int, depth: int, tmp_path: Path, need_tool) -> None:
    need_tool("iverilog")
    from cocotb_tools.runner import get_results, get_runner
    (tmp_path / "adapter.v").write_text(static_rtl("bondflow_pipe_adapter.v"))
    (tmp_path / "dut.v").write_text(WRAPPER)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"seed": latency * 10 + depth, "n": 1500, "latency": latency, "result": str(tmp_path / "r.json")}))
    runner = get_runner("icarus")
    with redirect_stdout(StringIO()):
        runner.build(sources=[tmp_path / "adapter.v", tmp_path / "dut.v"], hdl_toplevel="adapter_dut",
                     build_dir=tmp_path / "b", parameters={"LATENCY": latency, "DEPTH": depth}, timescale=("1ns", "1ps"),
                     log_file=tmp_path / "build.log")
        try:
            xml = runner.test(test_module="adapter_tb", hdl_toplevel="adapter_dut", build_dir=tmp_path / "b",
                              test_dir=tmp_path, extra_env={"ADAPTER_TB_CONFIG": str(cfg)}, log_file=tmp_path / "sim.log",
                              timescale=("1ns", "1ps"))
            failed = get_results(xml)[1]
        except SystemExit:  # cocotb's runner exits on a failed test
            failed = -1
    assert failed == 0, (tmp_path / "sim.log").read_text()[-3000:]
    ii = json.loads((tmp_path / "r.json").read_text())["ii"]
    if depth >= latency + 1:
        assert ii == pytest.approx(1.0, abs=0.01)
    else:  # fewer credits than the round trip: slower, never wrong
        assert ii > 1.0

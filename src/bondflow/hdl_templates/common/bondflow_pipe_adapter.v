// bondflow_pipe_adapter: valid/ready on both sides for a fixed-latency pipeline that never stalls.
//   Upstream:   in_valid / in_ready          (a sample enters when both are high)
//   Pipeline:   pipe_in_valid -> the pipeline's first stage; the pipeline returns pipe_out_valid and
//               pipe_out_data exactly LATENCY cycles later (a valid bit travels alongside the data)
//   Downstream: out_valid / out_ready / out_data (show-ahead FIFO of DEPTH entries)
// Parameters: LATENCY >= 1 (pipeline depth in cycles), WIDTH (pipe_out_data/out_data bits), DEPTH >= 1 (FIFO entries).
// Credits: at most DEPTH samples are in the pipeline or the FIFO, so the FIFO can never overflow while
// the pipeline runs freely. DEPTH >= LATENCY + 1 keeps II = 1 when downstream is always ready (measured:
// tests/sim/test_pipe_adapter.py); LATENCY + 2 is the usual choice. A smaller DEPTH is slower, never wrong.
// Timing: in_ready comes from registers only (no combinational path from out_ready); out_data is the
// FIFO head (show-ahead); an output appears the cycle after pipe_out_valid.
// Part of bondflow's static RTL library; do not edit generated copies.
`timescale 1ns/1ps
`default_nettype none
module bondflow_pipe_adapter #(
    parameter integer LATENCY = 3,
    parameter integer WIDTH = 8,
    parameter integer DEPTH = LATENCY + 2
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire             in_valid,
    output wire             in_ready,
    output wire             pipe_in_valid,
    input  wire             pipe_out_valid,
    input  wire [WIDTH-1:0] pipe_out_data,
    output wire             out_valid,
    input  wire             out_ready,
    output wire [WIDTH-1:0] out_data
);
    localparam integer CW = $clog2(DEPTH + 1);
    localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam [CW-1:0] DEPTH_C = DEPTH[CW-1:0];
    localparam [AW-1:0] LAST_C = DEPTH_C[AW-1:0] - 1'b1;

    reg [CW-1:0] credits_used;  // samples in the pipeline + in the FIFO
    reg [CW-1:0] fill;          // samples in the FIFO
    reg [AW-1:0] wptr, rptr;
    reg [WIDTH-1:0] mem [0:DEPTH-1];

    wire accept = in_valid && in_ready;
    wire pop = out_valid && out_ready;
    assign in_ready = credits_used < DEPTH_C;
    assign pipe_in_valid = accept;
    assign out_valid = fill != 0;
    assign out_data = mem[rptr];

    always @(posedge clk) begin
        if (!rst_n) begin
            credits_used <= 0;
            fill <= 0;
            wptr <= 0;
            rptr <= 0;
        end else begin
            credits_used <= credits_used + {{(CW-1){1'b0}}, accept} - {{(CW-1){1'b0}}, pop};
            fill <= fill + {{(CW-1){1'b0}}, pipe_out_valid} - {{(CW-1){1'b0}}, pop};
            if (pipe_out_valid) wptr <= (wptr == LAST_C) ? {AW{1'b0}} : wptr + 1'b1;
            if (pop) rptr <= (rptr == LAST_C) ? {AW{1'b0}} : rptr + 1'b1;
        end
    end
    always @(posedge clk) begin
        if (pipe_out_valid) mem[wptr] <= pipe_out_data;
    end
endmodule
`default_nettype wire

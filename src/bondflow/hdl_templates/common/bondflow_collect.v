// bondflow_collect: a stream of N pixels -> one vector of N pixels (pixel k in out_data[k*PIX +: PIX]).
//   The next image's first pixel may enter in the cycle the full vector leaves, so images follow without a gap.
// Part of bondflow's static RTL library; do not edit generated copies.
`timescale 1ns/1ps
`default_nettype none
module bondflow_collect #(
    parameter integer N = 4,   // pixels per image
    parameter integer PIX = 8  // bits per pixel
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire [PIX-1:0]   in_data,
    input  wire             in_valid,
    output wire             in_ready,
    output wire [N*PIX-1:0] out_data,
    output wire             out_valid,
    input  wire             out_ready
);
    localparam integer NW = (N > 1) ? $clog2(N) : 1;
    localparam [NW-1:0] N_LAST = N[NW-1:0] - 1'b1;

    reg             full;
    reg [NW-1:0]    cnt;
    reg [N*PIX-1:0] vec;
    wire take = in_valid && in_ready;
    assign out_valid = full;
    assign out_data = vec;
    assign in_ready = !full || out_ready;

    always @(posedge clk) begin
        if (!rst_n) begin
            full <= 1'b0;
            cnt <= {NW{1'b0}};
        end else begin
            if (full && out_ready) full <= 1'b0;
            if (take) begin
                cnt <= cnt == N_LAST ? {NW{1'b0}} : cnt + 1'b1;
                if (cnt == N_LAST) full <= 1'b1;
            end
        end
    end
    // One write enable per slot (a decoder of cnt), not vec[cnt * PIX +: PIX]: synthesis may map that index
    // product to a DSP block, which a design sized to the part's DSPs has none left for.
    genvar k;
    generate
        for (k = 0; k < N; k = k + 1) begin : g_slot
            always @(posedge clk) begin
                if (take && cnt == k[NW-1:0]) vec[k * PIX +: PIX] <= in_data;
            end
        end
    endgenerate
endmodule
`default_nettype wire

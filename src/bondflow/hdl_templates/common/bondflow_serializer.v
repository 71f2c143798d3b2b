// bondflow_serializer: beats of K pixels -> one pixel per transfer, for images of N pixels.
//   The last beat of an image may hold fewer than K pixels (N not a multiple of K); its unused lanes are dropped.
//   in_ready is high while the held beat gives out its last pixel, so beats follow each other without a gap.
// Part of bondflow's static RTL library; do not edit generated copies.
`timescale 1ns/1ps
`default_nettype none
module bondflow_serializer #(
    parameter integer K = 2,    // pixels per input beat (>= 2)
    parameter integer PIX = 8,  // bits per pixel
    parameter integer N = 4     // pixels per image
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire [K*PIX-1:0] in_data,
    input  wire             in_valid,
    output wire             in_ready,
    output wire [PIX-1:0]   out_data,
    output wire             out_valid,
    input  wire             out_ready
);
    localparam integer KW = $clog2(K);
    localparam integer NW = (N > 1) ? $clog2(N) : 1;
    localparam [KW-1:0] K_LAST = K[KW-1:0] - 1'b1;
    localparam [NW-1:0] N_LAST = N[NW-1:0] - 1'b1;

    reg             full;
    reg [K*PIX-1:0] beat;
    reg [KW-1:0]    idx;  // pixel of the held beat being offered
    reg [NW-1:0]    pix;  // pixel of the image being offered
    wire last_of_beat = idx == K_LAST || pix == N_LAST;
    wire pop = full && out_ready;
    assign out_valid = full;
    // a multiplexer over the beat's lanes, not beat[idx * PIX +: PIX] (synthesis may spend a DSP on that product)
    wire [PIX-1:0] lane [0:K-1];
    genvar k;
    generate
        for (k = 0; k < K; k = k + 1) begin : g_lane
            assign lane[k] = beat[k * PIX +: PIX];
        end
    endgenerate
    assign out_data = lane[idx];
    assign in_ready = !full || (out_ready && last_of_beat);

    always @(posedge clk) begin
        if (!rst_n) begin
            full <= 1'b0;
            idx <= {KW{1'b0}};
            pix <= {NW{1'b0}};
        end else begin
            if (pop) begin
                idx <= last_of_beat ? {KW{1'b0}} : idx + 1'b1;
                pix <= pix == N_LAST ? {NW{1'b0}} : pix + 1'b1;
                if (last_of_beat) full <= 1'b0;
            end
            if (in_valid && in_ready) full <= 1'b1;
        end
    end
    always @(posedge clk) begin
        if (in_valid && in_ready) beat <= in_data;
    end
endmodule
`default_nettype wire

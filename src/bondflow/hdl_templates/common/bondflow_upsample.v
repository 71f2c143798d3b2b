// bondflow_upsample: nearest-neighbour upsampling of a row-major pixel stream, images W pixels wide.
//   Each input pixel leaves FW times in a row (it is taken when its last copy leaves); with FH > 1 the row is kept
//   in a buffer as it passes and sent FH - 1 more times before the next input row is taken. Valid and ready pass
//   straight through while the first copy of a row streams, so the stage adds no latency.
// Part of bondflow's static RTL library; do not edit generated copies.
`timescale 1ns/1ps
`default_nettype none
module bondflow_upsample #(
    parameter integer PIX = 8,  // bits per pixel
    parameter integer W = 4,    // input pixels per row
    parameter integer FW = 2,   // copies of each pixel along a row
    parameter integer FH = 2    // copies of each row
) (
    input  wire           clk,
    input  wire           rst_n,
    input  wire [PIX-1:0] in_data,
    input  wire           in_valid,
    output wire           in_ready,
    output wire [PIX-1:0] out_data,
    output wire           out_valid,
    input  wire           out_ready
);
    localparam integer CW = (W > 1) ? $clog2(W) : 1;
    localparam integer XW = (FW > 1) ? $clog2(FW) : 1;
    localparam integer YW = (FH > 1) ? $clog2(FH) : 1;
    localparam [CW-1:0] COL_LAST = W[CW-1:0] - 1'b1;
    localparam [XW-1:0] X_LAST = FW[XW-1:0] - 1'b1;
    localparam [YW-1:0] Y_LAST = FH[YW-1:0] - 1'b1;

    reg [CW-1:0] col;  // input pixel of the row being sent
    reg [XW-1:0] rx;   // its copy along the row
    reg [YW-1:0] ry;   // the row's copy (0: the input row itself, streaming through)
    wire first = ry == {YW{1'b0}};
    wire step = out_valid && out_ready;
    assign out_valid = first ? in_valid : 1'b1;
    assign in_ready = out_ready && first && rx == X_LAST;

    generate
        if (FH > 1) begin : g_rows
            reg [PIX-1:0] row [0:W-1];
            always @(posedge clk) begin
                if (in_valid && in_ready) row[col] <= in_data;
            end
            assign out_data = first ? in_data : row[col];
        end else begin : g_direct
            assign out_data = in_data;
        end
    endgenerate

    always @(posedge clk) begin
        if (!rst_n) begin
            col <= {CW{1'b0}};
            rx <= {XW{1'b0}};
            ry <= {YW{1'b0}};
        end else if (step) begin
            if (rx == X_LAST) begin
                rx <= {XW{1'b0}};
                if (col == COL_LAST) begin
                    col <= {CW{1'b0}};
                    ry <= ry == Y_LAST ? {YW{1'b0}} : ry + 1'b1;
                end else begin
                    col <= col + 1'b1;
                end
            end else begin
                rx <= rx + 1'b1;
            end
        end
    end
endmodule
`default_nettype wire

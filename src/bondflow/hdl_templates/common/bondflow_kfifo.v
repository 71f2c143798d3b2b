// bondflow_kfifo: a synchronous show-ahead FIFO (dout is the head while !empty); part of bondflow.
`timescale 1ns/1ps
`default_nettype none
module bondflow_kfifo #(
    parameter integer WIDTH = 64,
    parameter integer LOG2_DEPTH = 4
) (
    input  wire                  clk,
    input  wire                  rst_n,
    input  wire                  push,
    input  wire [WIDTH-1:0]      din,
    input  wire                  pop,
    output wire [WIDTH-1:0]      dout,
    output wire                  empty,
    output wire                  full,
    output wire [LOG2_DEPTH:0]   count
);
    reg [WIDTH-1:0] mem [0:(1 << LOG2_DEPTH) - 1];
    reg [LOG2_DEPTH:0] wr_ptr, rd_ptr;  // one extra bit tells full from empty
    assign count = wr_ptr - rd_ptr;
    assign empty = wr_ptr == rd_ptr;
    assign full  = count[LOG2_DEPTH];
    assign dout  = mem[rd_ptr[LOG2_DEPTH-1:0]];
    always @(posedge clk) begin
        if (!rst_n) begin
            wr_ptr <= 0;
            rd_ptr <= 0;
        end else begin
            if (push && !full) wr_ptr <= wr_ptr + 1'b1;
            if (pop && !empty) rd_ptr <= rd_ptr + 1'b1;
        end
    end
    always @(posedge clk) begin
        if (push && !full) mem[wr_ptr[LOG2_DEPTH-1:0]] <= din;
    end
endmodule
`default_nettype wire

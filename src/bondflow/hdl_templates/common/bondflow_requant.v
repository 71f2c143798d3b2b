// bondflow_requant: cast a fixed-point value to another fixed-point type, bit-exactly as ap_fixed does.
//   x (IN_W bits, IN_FRAC fractional, IN_SIGNED) -> y (OUT_W bits, OUT_FRAC fractional, OUT_SIGNED)
//   ROUND:    0 TRN (floor), 1 TRN_ZERO, 2 RND (ties up), 3 RND_ZERO, 4 RND_MIN_INF, 5 RND_INF, 6 RND_CONV
//   OVERFLOW: 0 WRAP, 1 SAT, 2 SAT_ZERO, 3 SAT_SYM
//   RELU:     1 applies max(x, 0) first (hls4ml's relu is this cast of the clipped value)
// Purely combinational; the same semantics as bondflow.ir.types.FixedType.requantize.
// Part of bondflow's static RTL library; do not edit generated copies.
`timescale 1ns/1ps
`default_nettype none
module bondflow_requant #(
    parameter integer IN_W = 16,
    parameter integer IN_FRAC = 8,
    parameter integer IN_SIGNED = 1,
    parameter integer OUT_W = 8,
    parameter integer OUT_FRAC = 4,
    parameter integer OUT_SIGNED = 1,
    parameter integer ROUND = 0,
    parameter integer OVERFLOW = 0,
    parameter integer RELU = 0
) (
    input  wire [IN_W-1:0]  x,
    output wire [OUT_W-1:0] y
);
    localparam integer SHIFT = IN_FRAC - OUT_FRAC;          // > 0: drop bits (round); <= 0: append zeros
    localparam integer ASH = (SHIFT > 0) ? SHIFT : -SHIFT;
    localparam integer XW = IN_W + 1;                         // signed view of x (room for an unsigned MSB)
    localparam integer IW = XW + ASH + 2;                     // working width: never overflows internally

    wire x_neg = (IN_SIGNED != 0) && x[IN_W-1];
    wire [IN_W-1:0] xr = (RELU != 0 && x_neg) ? {IN_W{1'b0}} : x;
    wire neg = (RELU != 0) ? 1'b0 : x_neg;
    wire signed [XW-1:0] xs = {neg, xr};

    wire signed [IW-1:0] q;  // value on the output grid, before overflow handling
    generate
        if (SHIFT > 0) begin : g_round
            wire signed [IW-1:0] xw = {{(IW-XW){xs[XW-1]}}, xs};
            wire signed [IW-1:0] fl = xw >>> SHIFT;           // floor
            wire [ASH-1:0] rem = xw[ASH-1:0];  // low bits of the two's-complement value (sign-extended)
            wire nonzero = |rem;
            wire half_bit = rem[ASH-1];
            wire rest = (ASH > 1) ? |(rem & {1'b0, {(ASH-1){1'b1}}}) : 1'b0;
            wire is_half = half_bit && !rest;
            wire above = half_bit && rest;
            reg inc;
            always @(*) begin
                case (ROUND)
                    1: inc = nonzero && neg;
                    2: inc = above || is_half;
                    3: inc = above || (is_half && neg);
                    4: inc = above;
                    5: inc = above || (is_half && !neg);
                    6: inc = above || (is_half && fl[0]);
                    default: inc = 1'b0;
                endcase
            end
            assign q = fl + {{(IW-1){1'b0}}, inc};
        end else begin : g_shift
            wire signed [IW-1:0] xw = {{(IW-XW){xs[XW-1]}}, xs};
            assign q = xw <<< ASH;
        end
    endgenerate

    // Output range as IW-bit signed constants.
    localparam signed [IW-1:0] ONE = 1;
    localparam signed [IW-1:0] MAXV = (OUT_SIGNED != 0) ? ((ONE <<< (OUT_W - 1)) - 1) : ((ONE <<< OUT_W) - 1);
    localparam signed [IW-1:0] MINV = (OUT_SIGNED != 0) ? -(ONE <<< (OUT_W - 1)) : 0;
    localparam signed [IW-1:0] SYMV = (OUT_SIGNED != 0 && OUT_W > 1) ? -MAXV : MINV;

    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [IW-1:0] r;  // WRAP keeps only the low OUT_W bits
    /* verilator lint_on UNUSEDSIGNAL */
    always @(*) begin
        case (OVERFLOW)
            1: r = (q > MAXV) ? MAXV : (q < MINV) ? MINV : q;
            2: r = (q > MAXV || q < MINV) ? {IW{1'b0}} : q;
            3: r = (q > MAXV) ? MAXV : (q < SYMV) ? SYMV : q;
            default: r = q;
        endcase
    end
    assign y = r[OUT_W-1:0];
endmodule
`default_nettype wire

"""bondflow_requant.v against FixedType.requantize: every input of a 10-bit value, for many type pairs."""
from __future__ import annotations

import itertools
import subprocess

import numpy as np
import pytest

from bondflow.codegen.render import static_rtl
from bondflow.ir.types import FixedType, Overflow, Rounding
from bondflow.tools import require_tool

ROUNDS = list(Rounding)
OVFS = list(Overflow)
IN_W = 10


def configs() -> list[tuple[FixedType, FixedType, bool]]:
    rng = np.random.default_rng(5)
    out = []
    for r, o in itertools.product(ROUNDS, OVFS):
        for _ in range(3):
            src = FixedType(IN_W, int(rng.integers(-2, 12)), signed=bool(rng.integers(0, 2)))
            dst = FixedType(int(rng.integers(2, 12)), int(rng.integers(-2, 10)), bool(rng.integers(0, 2)), r, o)
            out.append((src, dst, bool(rng.integers(0, 2))))
    return out


@pytest.mark.sim
def test_requant_exhaustive(tmp_path, need_tool) -> None:
    need_tool("iverilog")
    cfgs = configs()
    lines = ["`timescale 1ns/1ps", "module tb;", f"  reg [{IN_W - 1}:0] x;", "  integer i, f;"]
    for k, (s, d, relu) in enumerate(cfgs):
        lines.append(f"  wire [{d.width - 1}:0] y{k};")
        lines.append(
            f"  bondflow_requant #(.IN_W({IN_W}),.IN_FRAC({s.frac_bits}),.IN_SIGNED({int(s.signed)}),.OUT_W({d.width}),"
            f".OUT_FRAC({d.frac_bits}),.OUT_SIGNED({int(d.signed)}),.ROUND({ROUNDS.index(d.rounding)}),"
            f".OVERFLOW({OVFS.index(d.overflow)}),.RELU({int(relu)})) u{k}(.x(x),.y(y{k}));")
    fmt = " ".join(["%0d"] * len(cfgs))
    outs = ", ".join(f"y{k}" for k in range(len(cfgs)))
    lines += ["  initial begin", f'    f = $fopen("{tmp_path}/out.txt", "w");',
              f"    for (i = 0; i < {1 << IN_W}; i = i + 1) begin x = i; #1; $fdisplay(f, \"{fmt}\", {outs}); end",
              "    $fclose(f); $finish;", "  end", "endmodule"]
    (tmp_path / "tb.v").write_text("\n".join(lines))
    (tmp_path / "rq.v").write_text(static_rtl("bondflow_requant.v"))
    subprocess.run([require_tool("iverilog"), "-g2012", "-o", str(tmp_path / "sim"), str(tmp_path / "tb.v"),
                    str(tmp_path / "rq.v")], check=True, capture_output=True)
    subprocess.run(["vvp", "-n", str(tmp_path / "sim")], check=True, capture_output=True, cwd=tmp_path)
    got = np.loadtxt(tmp_path / "out.txt", dtype=np.int64).reshape(1 << IN_W, len(cfgs))
    bits = np.arange(1 << IN_W, dtype=np.int64)
    for k, (s, d, relu) in enumerate(cfgs):
        raw = np.where(bits >= (1 << (IN_W - 1)), bits - (1 << IN_W), bits) if s.signed else bits
        if relu:
            raw = np.maximum(raw, 0)
        want = d.requantize(raw, s.frac_bits) & ((1 << d.width) - 1)  # RTL prints the bits unsigned
        bad = np.nonzero(got[:, k] != want)[0]
        assert bad.size == 0, f"{s} -> {d} relu={relu}: input {raw[bad[0]]} gives {got[bad[0], k]}, want {want[bad[0]]}"

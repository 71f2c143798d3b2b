"""bondflow's ReLU neuron under both BondMachine semantics of `cir` (simulator and RTL), and golden bondmachine -sim outputs."""
from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from bondflow.bondmachine.netjson import plan
from bondflow.bondmachine.numbers import parse_number_type
from bondflow.bondmachine.numerics import input_to_bm, run_net

ROOT = Path(__file__).resolve().parents[2]

# BondMachine (c9e6992) pkg/procbuilder/op_cir.go: the RTL shifts the named register (`_rX >> 1`), but Simulate
# reads a second register field that `cir` does not have (the zero padding), so the simulator computes rX = r0 >> 1.
SEMANTICS = ("rtl", "bm_sim")

# The fragment bondflow shipped before (shifts r1): right in the RTL, wrong in bondmachine -sim (0 of 30 Iris vectors).
OLD_TAIL = ["cpy r1,r0", *["cir r1"] * 15, "dec r1", "mult r0,r1", "clr r1", "dec r1", "mult r0,r1"]


def render_relu(inputs: int, bias_raw: int, bits: int) -> list[str]:
    """Expand the three template constructs of frag-relu.basm (the test fails if the fragment grows others)."""
    text = (files("bondflow") / "hdl_templates" / "bondmachine" / "neurons" / "frag-relu.basm").read_text()
    body = text.split("%meta literal resin", 1)[1].split("\n", 1)[1].split("%endfragment")[0]
    sums = "".join(f"add r0,r{y}\n" for y in range(1, inputs + 1))
    body = body.replace('{{with $last := incs .Params.inputs}}{{range $y := intRange "1" $last}}{{$.Params.addop}}'
                        '{{printf " r0,r%d\\n" $y}}{{end}}{{end}}', sums)
    body = re.sub(r'\{\{range \$y := intRange "0" \.Params\.signshift\}\}\{\{printf "(.*?)\\n" \}\}\{\{end\}\}',
                  lambda m: (m.group(1) + "\n") * (bits - 1), body)
    body = body.replace("{{.Params.bias}}", str(bias_raw)).replace("{{.Params.addop}}", "add")
    assert "{{" not in body, f"frag-relu.basm must only use the constructs this test expands, not {body!r}"
    return [l.split(";")[0].strip() for l in body.splitlines() if l.split(";")[0].strip()]


def execute(program: list[str], regs: dict[str, np.ndarray], bits: int, semantics: str) -> np.ndarray:
    """Run straight-line fragment code on ``bits``-wide unsigned registers (vectorized over samples); returns r0."""
    mask = np.uint64((1 << bits) - 1)
    r = {k: np.asarray(v, dtype=np.uint64) & mask for k, v in regs.items()}
    for line in program:
        op, _, args = line.replace("\t", " ").partition(" ")
        a = [s.strip() for s in args.replace("\t", " ").split(",")] if args.strip() else []
        if op == "clr":
            r[a[0]] = np.zeros_like(r["r0"])
        elif op in ("add", "mult"):  # addfps is a plain wrapping add; integer mult keeps the low bits
            r[a[0]] = ((r[a[0]] + r[a[1]]) if op == "add" else (r[a[0]] * r[a[1]])) & mask
        elif op == "mov":
            r[a[0]] = np.full_like(r["r0"], int(a[1]) & int(mask))
        elif op == "cpy":
            r[a[0]] = r[a[1]].copy()
        elif op == "cir":
            r[a[0]] = (r[a[0]] if semantics == "rtl" else r["r0"]) >> np.uint64(1)
        elif op == "dec":
            r[a[0]] = (r[a[0]] - np.uint64(1)) & mask
        else:
            raise AssertionError(f"fragment opcode must be one the test models, not {op!r}")
    out = r["r0"].astype(np.int64)
    return np.where(out >> (bits - 1), out - (1 << bits), out)


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("bits", [8, 16, 32])
def test_relu_fragment_same_in_simulator_and_rtl(semantics: str, bits: int) -> None:
    """Every sum (all of them for 8/16 bits) comes out as max(sum, 0) under both meanings of `cir`."""
    rng = np.random.default_rng(bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    acc = np.arange(lo, hi + 1) if bits <= 16 else np.concatenate([rng.integers(lo, hi + 1, 20000), [lo, -1, 0, 1, hi]])
    a = rng.integers(lo, hi + 1, acc.size)
    bias = 5
    b = acc - a - bias  # two inputs and a bias that wrap-add to acc
    got = execute(render_relu(2, bias, bits), {"r0": np.zeros_like(acc), "r1": a, "r2": b}, bits, semantics)
    assert np.array_equal(got, np.maximum(acc, 0))


def test_old_relu_tail_differs_in_simulator() -> None:
    """Golden value: sum -3840 (fps16f10 -3.75) -> 28928 (0fp<16.10>28.25), what bondmachine -sim printed for the
    old fragment on one_layer(n_in=2, n_out=1) with inputs -4, -4; the RTL semantics give 0."""
    acc = np.array([-3840])
    assert execute(OLD_TAIL, {"r0": acc, "r1": np.zeros(1)}, 16, "bm_sim").tolist() == [28928]
    assert execute(OLD_TAIL, {"r0": acc, "r1": np.zeros(1)}, 16, "rtl").tolist() == [0]


def test_iris_model_matches_recorded_bondmachine_sim() -> None:
    """Golden outputs of ``bondmachine -sim`` (snapshot c9e6992, fps16f10, bondflow's ReLU) for six Iris inputs
    (graph raw values, fixed<8,3>), read at tick 400; bondflow's model must give the same raw fps16f10 values."""
    import bondflow
    g = bondflow.load_model(ROOT / "examples" / "iris" / "model.h5")
    nt = parse_number_type("fps16f10")
    x = np.array([[-128, -128, -128, -128], [127, 127, 127, 127], [0, 0, 0, 0], [-29, -41, -14, -4], [10, -19, 4, 4],
                  [33, -41, 37, 25]])
    bm_sim = [[23945, -15125, -1935], [-19976, -11011, 32447], [-2121, 4564, -4987], [-1563, 3957, -4494],
              [-3930, 4980, -3645], [-7193, -502, 7628]]
    assert run_net(plan(g, nt), input_to_bm(x, g.input.type, nt)).tolist() == bm_sim

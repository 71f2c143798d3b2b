"""Fully parallel RTL for Dense(+activation) layers: constant multipliers, pipelined adder trees, exact casts."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, UnsupportedOpError
from ..ir.ops import Activation, Dense
from ..ir.types import FixedType, Overflow, Rounding
from .render import render, vlog_literal

__all__ = ["ProductShape", "product_shape", "LayerRTL", "dense_layer", "activation_layer", "requant_params", "LEVELS_PER_STAGE",
           "MULTIPLIER_MODES", "LUT_STAGE_ADDERS", "check_arith_options"]

#: Adder-tree levels between pipeline registers (three levels sum eight terms per cycle).
LEVELS_PER_STAGE = 3
#: How a Dense multiplies by its constant weights: "dsp" one ``x * w`` per weight (synthesis maps them to DSP
#: blocks), "lut" shared shift-and-add graphs (codegen.cmvm), "auto" per layer what fits the target's DSPs.
MULTIPLIER_MODES = ("lut", "dsp", "auto")
#: Adder levels per pipeline stage of "lut" layers by default (da4ml's default cutoff, so the two compare alike).
LUT_STAGE_ADDERS = 5
_ROUND_CODE = {r: i for i, r in enumerate(Rounding)}
_OVF_CODE = {o: i for i, o in enumerate(Overflow)}


@dataclass(frozen=True)
class LayerRTL:
    """One generated pipeline stage: its module name, Verilog text, latency and I/O widths."""

    module: str
    text: str
    latency: int
    n_in: int
    in_width: int
    n_out: int
    out_width: int
    multipliers: int
    extra: tuple[tuple[str, str], ...] = ()  # further (design path, Verilog) files it instantiates, e.g. ROMs


def requant_params(src: FixedType, dst: FixedType, relu: bool) -> str:
    return (f"#(.IN_W({src.width}), .IN_FRAC({src.frac_bits}), .IN_SIGNED({int(src.signed)}), .OUT_W({dst.width}), "
            f".OUT_FRAC({dst.frac_bits}), .OUT_SIGNED({int(dst.signed)}), .ROUND({_ROUND_CODE[dst.rounding]}), "
            f".OVERFLOW({_OVF_CODE[dst.overflow]}), .RELU({int(relu)}))")


@dataclass(frozen=True)
class ProductShape:
    """How a Dense layer's exact products ``x * w`` sit on its (exact, wrapping) accumulator."""

    x_view: int  # bits of x read as a signed number (one more when x is unsigned)
    w_view: int  # bits of a weight read as a signed number
    shift: int  # left shift of a product onto the accumulator grid

    @property
    def width(self) -> int:
        return self.x_view + self.w_view


def product_shape(op: Dense, x_type: FixedType, where: str = "the RTL generator") -> ProductShape:
    """The products' geometry; every RTL generator needs an accumulator that keeps every product bit and wraps."""
    acc = op.accum_type
    shift = acc.frac_bits - (x_type.frac_bits + op.weight_type.frac_bits)
    if shift < 0 or acc.overflow is not Overflow.WRAP or shift >= acc.width:
        # Only then is one exact sum followed by one cast what the golden model computes.
        raise UnsupportedOpError("dense with a rounding or saturating accumulator", op.name,
                                 ["dense whose accumulator keeps every product bit and wraps"], where)
    return ProductShape(x_type.width + (0 if x_type.signed else 1),
                        op.weight_type.width + (0 if op.weight_type.signed else 1), shift)


def _term(p: str, pw: int, aw: int, shift: int) -> str:
    """Product ``p`` (``pw`` bits) moved onto the accumulator grid and sign-extended or wrapped to ``aw`` bits."""
    zeros = f", {shift}'d0" if shift else ""
    if aw >= pw + shift:
        ext = aw - pw - shift
        sign = f"{{{ext}{{{p}[{pw - 1}]}}}}, " if ext else ""
        return f"{{{sign}{p}{zeros}}}" if (sign or zeros) else p
    return f"{{{p}[{aw - shift - 1}:0]{zeros}}}" if zeros else f"{p}[{aw - 1}:0]"


def _block(lines: list[str], indent: int) -> list[str]:
    """``lines`` as the one item of a dense_layer.v.j2 loop that indents each item by ``indent`` spaces.

    The template's text is unchanged, but Jinja emits one string per line instead of several per item: its
    per-item loop was a quarter of the generation time of a 1M-MAC MLP (millions of lines).
    """
    return [("\n" + " " * indent).join(lines)] if lines else []


def check_arith_options(multipliers: object, stage_adders: object, modes: tuple[str, ...] = MULTIPLIER_MODES) -> None:
    """ConfigError (one line) unless ``multipliers`` is one of ``modes`` and ``stage_adders`` is None or an integer >= 1."""
    if multipliers not in modes:
        raise ConfigError(f"multipliers must be one of {', '.join(modes)}, not {multipliers!r}")
    if stage_adders is not None and (isinstance(stage_adders, bool) or not isinstance(stage_adders, int) or stage_adders < 1):
        raise ConfigError(f"stage_adders must be an integer >= 1, not {stage_adders!r}")


def dense_layer(module: str, op: Dense, x_type: FixedType, act: Activation | None, hdr: str, *,
                multipliers: str = "dsp", stage_adders: int | None = None) -> LayerRTL:
    """Dense with its exact accumulator, then its result cast, then an optional fused activation cast.

    ``multipliers`` "dsp" (the default) registers one constant multiplier per non-zero weight, then adder trees
    with a register every ``stage_adders`` levels (default LEVELS_PER_STAGE); "lut" builds the products from
    shared shifts and adds (default LUT_STAGE_ADDERS levels per stage). Both are bit-exact with the golden model.
    """
    check_arith_options(multipliers, stage_adders, ("lut", "dsp"))
    acc = op.accum_type
    shape = product_shape(op, x_type)
    if multipliers == "lut":
        from .dense_lut import dense_lut_layer
        text, latency, _ = dense_lut_layer(module, op, x_type, act, hdr, shape.shift, stage_adders or LUT_STAGE_ADDERS,
                                           requant_params)
        return LayerRTL(module, text, latency, op.n_in, x_type.width, op.n_out, (act or op).result_type.width, 0)
    levels_per_stage = stage_adders or LEVELS_PER_STAGE
    shift, pw = shape.shift, shape.width
    xw, aw = x_type.width, acc.width
    decls: list[str] = []
    assigns: list[str] = []
    regs: list[str] = []
    insts: list[str] = []
    used = np.any(op.weight != 0, axis=1)  # inputs whose weights are all pruned need no wires
    for i in range(op.n_in):
        if not used[i]:
            continue
        decls.append(f"wire signed [{pw - 1}:0] xe_{i};")
        src = f"x[{i * xw + xw - 1}:{i * xw}]"
        ext = f"x[{i * xw + xw - 1}]" if x_type.signed else "1'b0"
        assigns.append(f"assign xe_{i} = {{{{{pw - xw}{{{ext}}}}}, {src}}};")
    # Stage 1: one registered constant multiplier per non-zero weight (pruned weights cost nothing).
    leaves: list[list[str]] = []
    n_mult = 0
    # Plain Python lists, comprehensions and one literal per distinct weight: these loops run once per weight
    # (a million in large MLPs), so each line is built by joining fixed parts around the product's name.
    weights = np.asarray(op.weight).T.tolist()
    biases = acc.requantize(np.asarray(op.bias), op.bias_type.frac_bits).tolist()
    literal = {w: vlog_literal(w, pw) for w in np.unique(np.asarray(op.weight)).tolist()}
    term = _term("{p}", pw, aw, shift).split("{p}")
    wrapped = aw < pw + shift  # the wrapping accumulator keeps only the product's low bits
    decl = ("/* verilator lint_off UNUSEDSIGNAL */ reg signed [{w}:0] {p}; /* verilator lint_on UNUSEDSIGNAL */" if wrapped
            else "reg signed [{w}:0] {p};").replace("{w}", str(pw - 1)).split("{p}")
    for j, row in enumerate(weights):
        nz = [(i, w) for i, w in enumerate(row) if w != 0]
        names = [f"p_{i}_{j}" for i, _ in nz]
        n_mult += len(names)
        decls += [p.join(decl) for p in names]
        regs += [f"{p} <= xe_{i} * $signed({literal[w]});" for p, (i, w) in zip(names, nz)]
        leaves.append([p.join(term) for p in names])
        bias = int(biases[j])
        if bias != 0:
            leaves[j].append(vlog_literal(bias, aw))
    # Adder trees, registered every levels_per_stage levels; every output gets the same number of stages.
    def levels(n: int) -> int:
        return max(n - 1, 0).bit_length()
    stages = max((levels(len(t)) + levels_per_stage - 1) // levels_per_stage for t in leaves) if leaves else 0
    sums: list[str] = []
    for j in range(op.n_out):
        terms = leaves[j] or [f"{aw}'d0"]
        for s in range(stages):
            for lvl in range(levels_per_stage):
                if len(terms) == 1:
                    break
                pairs = range(0, len(terms) - 1, 2)
                nxt = [f"s{j}_{s}_{lvl}_{k // 2}" for k in pairs]
                decls += [f"wire [{aw - 1}:0] {name};" for name in nxt]
                assigns += [f"assign {name} = {terms[k]} + {terms[k + 1]};" for name, k in zip(nxt, pairs)]
                if len(terms) % 2:
                    nxt.append(terms[-1])
                terms = nxt
            regged = [f"r{j}_{s}_{k}" for k in range(len(terms))]
            decls += [f"reg [{aw - 1}:0] {name};" for name in regged]
            regs += [f"{name} <= {t};" for name, t in zip(regged, terms)]
            terms = regged
        sums.append(terms[0])
    # Casts: accumulator -> dense result type -> activation type, then the output register.
    y_type = act.result_type if act else op.result_type
    yw = y_type.width
    for j in range(op.n_out):
        decls.append(f"wire [{aw - 1}:0] acc_{j};")
        assigns.append(f"assign acc_{j} = {sums[j]};")
        decls.append(f"wire [{op.result_type.width - 1}:0] d_{j};")
        insts.append(f"bondflow_requant {requant_params(acc, op.result_type, False)} u_rq_{j} (.x(acc_{j}), .y(d_{j}));")
        if act:
            decls.append(f"wire [{yw - 1}:0] a_{j};")
            insts.append(f"bondflow_requant {requant_params(op.result_type, act.result_type, act.function == 'relu')} "
                         f"u_act_{j} (.x(d_{j}), .y(a_{j}));")
        decls.append(f"reg [{yw - 1}:0] y_{j};")
        regs.append(f"y_{j} <= {'a' if act else 'd'}_{j};")
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    latency = 1 + stages + 1
    text = render("layers/dense_layer.v.j2", header=hdr, module=module, n_in=op.n_in, n_out=op.n_out, x_w=xw,
                  y_w=yw, n_mult=n_mult, act=(act.function if act else None), latency=latency, x_type=str(x_type),
                  w_type=str(op.weight_type), acc_type=str(acc), y_type=str(y_type), decls=_block(decls, 4),
                  assigns=_block(assigns, 4), regs=_block(regs, 8), insts=_block(insts, 4),
                  x_partly_unused=not bool(np.all(used)))
    return LayerRTL(module, text, latency, op.n_in, xw, op.n_out, yw, n_mult)


def activation_layer(module: str, op: Activation, x_type: FixedType, n: int, hdr: str) -> LayerRTL:
    """A standalone element-wise cast (ReLU or linear), registered."""
    decls, assigns, regs, insts = [], [], [], []
    xw, yw = x_type.width, op.result_type.width
    for j in range(n):
        decls += [f"wire [{yw - 1}:0] a_{j};", f"reg [{yw - 1}:0] y_{j};"]
        insts.append(f"bondflow_requant {requant_params(x_type, op.result_type, op.function == 'relu')} "
                     f"u_act_{j} (.x(x[{j * xw + xw - 1}:{j * xw}]), .y(a_{j}));")
        regs.append(f"y_{j} <= a_{j};")
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")
    text = render("layers/dense_layer.v.j2", header=hdr, module=module, n_in=n, n_out=n, x_w=xw, y_w=yw, n_mult=0,
                  act=op.function, latency=1, x_type=str(x_type), w_type="-", acc_type="-", y_type=str(op.result_type),
                  decls=decls, assigns=assigns, regs=regs, insts=insts, x_partly_unused=False)
    return LayerRTL(module, text, 1, n, xw, n, yw, 0)

"""Fully parallel RTL for a Merge: element-wise add/subtract/multiply/maximum/minimum (exact, one cast) or ``concatenate``
(a cast per input), registered."""
from __future__ import annotations

from ..errors import UnsupportedOpError
from ..ir.merge import ELEMENTWISE, Merge, merge_result_type
from ..ir.ops import Activation
from ..ir.types import FixedType
from .layers import LayerRTL, requant_params
from .render import render

__all__ = ["merge_layer"]


def merge_layer(module: str, op: Merge, in_types: list[FixedType], in_sizes: list[int], hdr: str,
                act: Activation | None = None, registered: bool = False) -> LayerRTL:
    """``x`` is the inputs' buses side by side, ``op.inputs[0]`` in the low bits; ``act`` (the merge's only reader)
    is fused as a second cast. Latency 1 (the output register), or 0 for a concatenation whose casts are all
    wiring (every input type held by the result type, no activation): registering it would only add a cycle.
    ``registered`` keeps the register anyway (a streaming stage behind a pipe adapter needs latency >= 1).

    Flat tensors only: a concatenation of images along an axis other than the last interleaves pixels, which the
    streaming CNN generator would have to do instead.
    """
    if len(set(in_sizes)) != 1 and op.function in ELEMENTWISE:
        raise UnsupportedOpError(f"{op.function} of unequal sizes", op.name, [f"{op.function} of equal shapes"], "the dataflow generator")
    yt = (act or op).result_type
    yw = yt.width
    mt = op.result_type  # the merge's own result, before the fused activation
    comb = not registered and op.function == "concatenate" and act is None and all(mt.holds(t) for t in in_types)
    decls: list[str] = []
    assigns: list[str] = []
    regs: list[str] = []
    insts: list[str] = []
    base = [sum(n * t.width for n, t in zip(in_sizes[:k], in_types[:k])) for k in range(len(in_types))]

    def element(k: int, i: int) -> str:
        w = in_types[k].width
        lo = base[k] + i * w
        return f"x[{lo + w - 1}:{lo}]"

    def _output(j: int, c: str) -> None:
        """Element ``j`` of the merge (wire ``c``): the fused activation's cast, then the register unless ``comb``."""
        if act is not None:
            decls.append(f"wire [{yw - 1}:0] a_{j};")
            insts.append(f"bondflow_requant {requant_params(mt, yt, act.function == 'relu')} u_act_{j} (.x({c}), .y(a_{j}));")
            c = f"a_{j}"
        if comb:
            assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = {c};")
            return
        decls.append(f"reg [{yw - 1}:0] y_{j};")
        regs.append(f"y_{j} <= {c};")
        assigns.append(f"assign y[{j * yw + yw - 1}:{j * yw}] = y_{j};")

    if op.function in ELEMENTWISE:
        st = merge_result_type(op.function, in_types)  # the exact result: never wraps
        sw, sf = st.width, st.frac_bits
        n = in_sizes[0]
        for j in range(n):
            terms = []
            for k, t in enumerate(in_types):
                shift = 0 if op.function == "multiply" else sf - t.frac_bits  # a product keeps every fraction bit
                ext = sw - t.width - shift  # room to the exact result's width (0 for a max/min of one widest input)
                sign = f"x[{base[k] + j * t.width + t.width - 1}]" if t.signed else "1'b0"
                zeros = f", {shift}'d0" if shift else ""
                pad = "{" + f"{ext}" + "{" + sign + "}}, " if ext else ""
                terms.append("{" + pad + element(k, j) + zeros + "}")
            decls.append(f"wire [{sw - 1}:0] s_{j};")
            assigns.append(f"assign s_{j} = {_combine(op.function, terms, st.signed)};")
            decls.append(f"wire [{mt.width - 1}:0] c_{j};")
            insts.append(f"bondflow_requant {requant_params(st, mt, False)} u_rq_{j} (.x(s_{j}), .y(c_{j}));")
            _output(j, f"c_{j}")
        n_out, acc = n, str(st)
    else:
        j = 0
        for k, (t, n) in enumerate(zip(in_types, in_sizes)):
            for i in range(n):
                decls.append(f"wire [{mt.width - 1}:0] c_{j};")
                insts.append(f"bondflow_requant {requant_params(t, mt, False)} u_rq_{j} (.x({element(k, i)}), .y(c_{j}));")
                _output(j, f"c_{j}")
                j += 1
        n_out, acc = j, "-"
    in_bits = sum(n * t.width for n, t in zip(in_sizes, in_types))
    text = render("layers/merge_layer.v.j2", header=hdr, module=module, function=op.function, inputs=list(op.inputs),
                  in_types=[str(t) for t in in_types], in_sizes=in_sizes, in_bits=in_bits, n_out=n_out, y_w=yw,
                  y_type=str(yt), acc_type=acc, act=act.function if act else None, latency=0 if comb else 1,
                  decls=decls, assigns=assigns, regs=regs, insts=insts)
    return LayerRTL(module, text, 0 if comb else 1, sum(in_sizes), max(t.width for t in in_types), n_out, yw, 0)


def _combine(function: str, terms: list[str], signed: bool) -> str:
    """The exact element-wise result of ``terms`` (each already extended to the result's width and fraction bits)."""
    if function == "add":
        return " + ".join(terms)
    if function == "subtract":
        return f"{terms[0]} - {terms[1]}"
    if function == "multiply":
        cast = (lambda e: f"$signed({e})") if signed else (lambda e: e)
        return " * ".join(cast(t) for t in terms)
    pick = ">" if function == "maximum" else "<"
    out = terms[0]
    for t in terms[1:]:  # a running max/min over the inputs, compared as the exact type's values
        a, b = (f"$signed({out})", f"$signed({t})") if signed else (out, t)
        out = f"(({a} {pick} {b}) ? {out} : {t})"
    return out

"""dataflow's arithmetic options: multiplier mode per Dense (lut, dsp, or auto to fit the target's DSPs), adders per stage."""
from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np

from ...errors import ConfigError
from ...ir.graph import Graph
from ...ir.ops import Activation, Dense
from ...ir.types import FixedType
from ..layers import check_arith_options, product_shape
from ..pipeline import fused_activation

__all__ = ["dense_options", "layer_options", "shared_options", "dsp_estimate", "auto_modes", "AUTO_TARGET"]

#: The device whose DSP count "auto" fits when no target is named (the seeds' board, PYNQ-Z2).
AUTO_TARGET = "xc7z020"


def dsp_estimate(op: Dense) -> int:
    """DSP blocks a "dsp" layer takes: one per non-zero weight that is not a power of two (those are shifts)."""
    w = np.abs(np.asarray(op.weight, dtype=np.int64))
    return int(np.count_nonzero((w != 0) & ((w & (w - 1)) != 0)))


def _dense_inputs(graph: Graph) -> list[tuple[Dense, FixedType, Activation | None]]:
    """Every Dense with the type it reads and the activation fused after it, as pipeline_layers walks the graph."""
    out: list[tuple[Dense, FixedType, Activation | None]] = []
    ops, cur = list(graph.ops), graph.input.type
    for i, op in enumerate(ops):
        if isinstance(op, Dense):
            out.append((op, cur, fused_activation(ops, i)))
        cur = op.result_type
    return out


def auto_modes(layers: list[tuple[Dense, FixedType]], dsp_budget: int) -> list[str]:
    """Per layer "dsp" or "lut": the most LUT bits saved by DSP layers whose DSP estimate fits ``dsp_budget`` together.

    LUT-mode cost is the adder bits of the layer's CMVM graph; a DSP layer keeps only its adder trees, so the
    saving is the difference. Up to 16 layers are searched exhaustively, more greedily by saving per DSP.
    """
    from ..dense_lut import cmvm_graph, lut_cost
    items = []
    for op, xt in layers:
        shape = product_shape(op, xt)
        lut_bits = lut_cost(cmvm_graph(op, xt, shape.shift), op.accum_type.width)
        tree_bits = max(int(np.count_nonzero(op.weight)) - op.n_out, 0) * op.accum_type.width
        items.append((dsp_estimate(op), max(lut_bits - tree_bits, 0)))
    n = len(items)
    if n <= 16:
        best, best_saved = (0,) * n, -1
        for choice in product((0, 1), repeat=n):
            dsp = sum(c * d for c, (d, _) in zip(choice, items))
            saved = sum(c * s for c, (_, s) in zip(choice, items))
            if dsp <= dsp_budget and saved > best_saved:
                best, best_saved = choice, saved
    else:
        best_l, used = [0] * n, 0
        for k in sorted(range(n), key=lambda k: -items[k][1] / max(items[k][0], 1)):
            if used + items[k][0] <= dsp_budget:
                best_l[k], used = 1, used + items[k][0]
        best = tuple(best_l)
    return ["dsp" if c else "lut" for c in best]


def dense_options(graph: Graph, multipliers: str, stage_adders: int | None, target: str | None,
                  dsp_budget: int | None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(per-Dense dense_layer options, what to record in the design's info) for dataflow's arithmetic options."""
    return layer_options([(op, xt) for op, xt, _ in _dense_inputs(graph)], multipliers, stage_adders, target, dsp_budget)


def layer_options(layers: list[tuple[Dense, FixedType]], multipliers: str, stage_adders: int | None, target: str | None,
                  dsp_budget: int | None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The same for any constant layers given as (Dense, input type), e.g. a CNN's convolutions as Dense per window."""
    check_arith_options(multipliers, stage_adders)
    if dsp_budget is not None and (isinstance(dsp_budget, bool) or not isinstance(dsp_budget, int) or dsp_budget < 0):
        raise ConfigError(f"dsp_budget must be an integer >= 0, not {dsp_budget!r}")
    if multipliers != "auto" and (target is not None or dsp_budget is not None):
        raise ConfigError(f"target and dsp_budget must come with multipliers=auto, not multipliers={multipliers}")
    if multipliers == "auto":
        if dsp_budget is None:
            from ...synth.targets import get_target
            dsp_budget = get_target(target or AUTO_TARGET).dsps
        modes = auto_modes(layers, dsp_budget)
    else:
        modes = [multipliers] * len(layers)
    opts: dict[str, dict[str, Any]] = {}
    for (op, _), mode in zip(layers, modes):
        o: dict[str, Any] = {"multipliers": mode}
        if stage_adders is not None:
            o["stage_adders"] = stage_adders
        opts[op.name] = o
    info = {"multiplier_mode": multipliers, "layer_multipliers": {op.name: m for (op, _), m in zip(layers, modes)},
            "stage_adders": stage_adders, "dsp_estimate": sum(dsp_estimate(op) for (op, _), m in zip(layers, modes) if m == "dsp")}
    if multipliers == "auto":
        info["dsp_budget"] = dsp_budget
    return opts, info


def shared_options(constant: list[tuple[Dense, FixedType]], shared: list[tuple[str, int]], multipliers: str,
                   stage_adders: int | None, target: str | None, dsp_budget: int | None
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """layer_options for a design that also has layers sharing ``n`` generic multipliers each (name, n).

    "dsp" writes every shared multiplier as a product (DSP blocks), "lut" as shift-and-add; "auto" gives the
    target's DSPs to shared multipliers first, in layer order (a generic multiplier built from LUTs costs
    several times a constant one), and the DSPs left to the constant layers as layer_options does.
    """
    check_arith_options(multipliers, stage_adders)
    budget = dsp_budget
    if multipliers == "auto" and budget is None:
        from ...synth.targets import get_target
        budget = get_target(target or AUTO_TARGET).dsps
    if multipliers == "auto" and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
        raise ConfigError(f"dsp_budget must be an integer >= 0, not {budget!r}")
    split: dict[str, int] = {}
    left = budget if budget is not None else 0
    for name, n in shared:
        split[name] = n if multipliers == "dsp" else min(n, left) if multipliers == "auto" else 0
        left -= split[name] if multipliers == "auto" else 0
    opts, info = layer_options(constant, multipliers, stage_adders, None if multipliers == "auto" else target,
                               max(left, 0) if multipliers == "auto" else dsp_budget)
    for name, _ in shared:
        opts[name] = {"dsp": split[name]}
    info["shared_dsp"] = split
    info["dsp_estimate"] += sum(split.values())
    if multipliers == "auto":
        info["dsp_budget"] = budget
    return opts, info

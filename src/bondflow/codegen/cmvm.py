"""Multiplier-free constant matrix-vector products: CSD digits, shared two-term subexpressions, depth-balanced adder trees.

The method follows the published line of work on multiple constant multiplication (Hartley's two-term common
subexpression elimination over canonical signed digits, as used by da4ml), written here from the description:

1. every weight becomes its canonical signed digits, so ``y_j = sum_i w_ij x_i`` is a sum of terms ``±x_i << k``;
2. the pair of terms (same two sources, same relative shift and sign) that occurs in the most outputs becomes a new
   node ``x_a ± (x_b << d)``, computed once and substituted everywhere it occurs; repeat while a pair repeats;
3. each output's remaining terms are summed by a tree that always adds the two shallowest terms (minimum depth).

The result is an :class:`AdderGraph` of integer nodes; :func:`evaluate` runs it on integers, and
``codegen.dense_lut`` renders it as pipelined Verilog.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from .cse import share_pairs

__all__ = ["csd", "Node", "Term", "AdderGraph", "build_cmvm", "evaluate", "MAX_PAIRS"]

#: Above this many term pairs in a layer (summed over outputs, before sharing), pairs are not searched: the search
#: time grows with the pairs (a 200x200 layer of 8-bit weights has about 29M, a 500x500 one of 6-bit weights
#: about 250M); the layer is then plain CSD adder trees, still multiplier-free and bit-exact.
MAX_PAIRS = 32_000_000


def csd(value: int) -> list[tuple[int, int]]:
    """Canonical signed digits of ``value``: (shift, sign) pairs, no two adjacent, ``sum(sign << shift) == value``."""
    digits: list[tuple[int, int]] = []
    v, k = int(value), 0
    while v:
        if v & 1:
            d = 2 - (v & 3)  # +1 when v = 1 mod 4, -1 when v = 3 mod 4: leaves a run of zeros above
            digits.append((k, d))
            v -= d
        v >>= 1
        k += 1
    return digits


@dataclass
class Node:
    """An integer signal: an input, a constant, or ``a + sign * (b << shift)``; ``lo..hi`` bounds its exact value."""

    kind: str  # "in", "const" or "add"
    lo: int
    hi: int
    depth: int = 0  # adders between the layer input and this node
    index: int = 0  # input index ("in") or value ("const")
    a: int = -1
    b: int = -1
    shift: int = 0  # b's left shift (a is never shifted: its low bits pass through without an adder)
    sign: int = 1
    neg_a: bool = False  # ``(b << shift) - a`` instead: only where a sum's root would otherwise come out negative


@dataclass(frozen=True)
class Term:
    """``sign * (node << shift)``."""

    node: int
    shift: int
    sign: int


@dataclass
class AdderGraph:
    """Nodes in topological order, and for every output one positive root term (``None``: the output is zero)."""

    nodes: list[Node] = field(default_factory=list)
    outputs: list[Term | None] = field(default_factory=list)
    shared: int = 0  # nodes made by subexpression sharing

    def add(self, a: int, b: int, shift: int, sign: int, neg_a: bool = False) -> int:
        na, nb = self.nodes[a], self.nodes[b]
        blo, bhi = (nb.lo << shift, nb.hi << shift) if sign > 0 else (-(nb.hi << shift), -(nb.lo << shift))
        alo, ahi = (-na.hi, -na.lo) if neg_a else (na.lo, na.hi)
        self.nodes.append(Node("add", alo + blo, ahi + bhi, max(na.depth, nb.depth) + 1, a=a, b=b, shift=shift, sign=sign,
                               neg_a=neg_a))
        return len(self.nodes) - 1

    def const(self, value: int) -> int:
        self.nodes.append(Node("const", value, value, index=value))
        return len(self.nodes) - 1

    @property
    def adders(self) -> int:
        return sum(n.kind == "add" for n in self.nodes)

    @property
    def depth(self) -> int:
        return max((self.nodes[t.node].depth for t in self.outputs if t is not None), default=0)


def _combine(g: AdderGraph, t1: Term, t2: Term, positive: bool = False) -> Term:
    """One adder for ``t1 + t2``: the less shifted term is the unshifted operand, and carries the sign out.

    With ``positive`` the result is made positive: ``(t2 << d) - t1`` when only the unshifted term is negative
    (a full-width adder: t1's low bits no longer pass through), ``0 - (t1 + t2)`` when both are.
    """
    if (t2.shift, -t2.sign, t2.node) < (t1.shift, -t1.sign, t1.node):  # on equal shifts the positive term leads
        t1, t2 = t2, t1
    d = t2.shift - t1.shift
    if positive and t1.sign < 0 < t2.sign:
        return Term(g.add(t1.node, t2.node, d, 1, neg_a=True), t1.shift, 1)
    t = Term(g.add(t1.node, t2.node, d, t1.sign * t2.sign), t1.shift, t1.sign)
    return _negate(g, t) if positive and t.sign < 0 else t


def _negate(g: AdderGraph, t: Term) -> Term:
    """``-t`` as a positive term: one adder ``0 - node``."""
    return Term(g.add(t.node, g.const(0), 0, 1, neg_a=True), t.shift, 1)


def build_cmvm(weight: np.ndarray, x_lo: int, x_hi: int, shift: int = 0, bias: list[int] | None = None,
               cse: bool = True, max_depth: int = 3, used: np.ndarray | None = None) -> AdderGraph:
    """The adder graph of ``y_j = bias_j + sum_i (weight[i, j] * x_i) << shift`` for integer ``x_i`` in ``x_lo..x_hi``.

    ``max_depth`` bounds the adder depth of shared nodes (deeper sharing saves adders but lengthens every tree).
    """
    n_in, n_out = weight.shape
    g = AdderGraph()
    for i in range(n_in):
        g.nodes.append(Node("in", x_lo, x_hi, index=i))
    terms: list[dict[tuple[int, int], int]] = []
    for j in range(n_out):
        ts: dict[tuple[int, int], int] = {}
        for i in range(n_in):
            for k, sg in csd(int(weight[i, j])):
                ts[(i, k + shift)] = sg
        terms.append(ts)
    if cse and sum(len(t) ** 2 for t in terms) // 2 <= MAX_PAIRS:
        terms = share_pairs(g, terms, max_depth)
    for j in range(n_out):
        leaves = [Term(n, s, sg) for (n, s), sg in sorted(terms[j].items())]
        if bias is not None and bias[j]:
            leaves.append(Term(g.const(int(bias[j])), 0, 1))
        g.outputs.append(_tree(g, leaves))
    return g


def _tree(g: AdderGraph, leaves: list[Term]) -> Term | None:
    """Sum ``leaves`` adding the two shallowest first (Huffman on depth: the least total depth); the root is positive."""
    if not leaves:
        return None
    heap = [(g.nodes[t.node].depth, t.shift, k, t) for k, t in enumerate(leaves)]
    heapq.heapify(heap)
    seq = len(heap)
    while len(heap) > 1:
        _, _, _, t1 = heapq.heappop(heap)
        _, _, _, t2 = heapq.heappop(heap)
        t = _combine(g, t1, t2, positive=not heap)  # the root must come out positive
        heapq.heappush(heap, (g.nodes[t.node].depth, t.shift, seq, t))
        seq += 1
    root = heap[0][3]
    return _negate(g, root) if root.sign < 0 else root  # a single negative term


def evaluate(g: AdderGraph, x: np.ndarray) -> list[int]:
    """The graph's exact output values (Python integers) for one input vector ``x``."""
    vals: list[int] = []
    for n in g.nodes:
        if n.kind == "in":
            vals.append(int(x[n.index]))
        elif n.kind == "const":
            vals.append(n.index)
        else:
            vals.append((-vals[n.a] if n.neg_a else vals[n.a]) + n.sign * (vals[n.b] << n.shift))
    return [0 if t is None else vals[t.node] << t.shift for t in g.outputs]

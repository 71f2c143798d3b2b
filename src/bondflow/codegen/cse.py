"""Two-term common-subexpression search over a layer's CSD terms: lazy greedy on pair counts, counted with numpy.

Every step shares the pattern ``x_a ± (x_b << d)`` that occurs most often over all outputs (ties: the shallower
pattern, then the one counted first). Counts are kept as upper bounds: a substitution only ever removes occurrences
of old patterns, so instead of decrementing the pairs of every removed term (the cost of a naive search, the square
of the terms per output), the popped pattern is recounted from an index of where each node occurs, and pushed back
with its true count when that is lower. Only the new node's patterns are counted at substitution time, with numpy.
"""
from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .cmvm import AdderGraph

__all__ = ["share_pairs"]

_NB = 22  # bits of a node index in a term code and in a pattern key (4M nodes per layer)
_NMASK = (1 << _NB) - 1
_DB = 11  # bits of a shift difference in a pattern key
_DMASK = (1 << _DB) - 1
_A = _NB + _DB + 1  # a pattern key is a << _A | b << _B | d << 1 | (signs differ): 56 bits, an int64 for numpy
_B = _DB + 1
_KEY = (1 << 56) - 1
_SEQ = 36  # bits of the sequence number in a bucket entry: (depth << _SEQ | seq) << 56 | key


def _keys(c1: np.ndarray, g1: np.ndarray, c2: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """Pattern keys of term pairs given as codes ``shift << _NB | node`` with ``c1 < c2`` elementwise, and signs."""
    d = (c2 >> _NB) - (c1 >> _NB)
    return ((c1 & _NMASK) << _A) | ((c2 & _NMASK) << _B) | (d << 1) | (g1 != g2)


class _Search:
    """The state of one layer's search: terms per output, where each node occurs, and buckets of count bounds."""

    def __init__(self, g: AdderGraph, terms: list[dict[tuple[int, int], int]], max_depth: int) -> None:
        self.g, self.max_depth = g, max_depth
        shifts = [s for ts in terms for (_, s) in ts]
        self.s0 = min(shifts, default=0)  # codes hold shift - s0, never negative
        if max(shifts, default=0) - self.s0 > _DMASK or len(g.nodes) > _NMASK:
            raise ValueError("layer too large for the pattern keys of the subexpression search")
        #: per output: code -> sign; the codes order terms as (shift, node), the order that picks the unshifted operand
        self.t: list[dict[int, int]] = [{((s - self.s0) << _NB) | n: sg for (n, s), sg in ts.items()} for ts in terms]
        #: per node, bit ``j * span + shift - s0`` set where output j holds the node at that shift, positive (pos) or
        #: negative (neg): a pattern's occurrences are then a few big-integer ANDs, shifts and popcounts, not a scan.
        #: The span leaves a gap above the largest shift, so a shifted mask never carries one output into the next.
        self.span = 2 * (max(shifts, default=0) - self.s0 + 1)
        self.pos: list[int] = [0] * len(g.nodes)
        self.neg: list[int] = [0] * len(g.nodes)
        for j, tj in enumerate(self.t):
            for c, sg in tj.items():
                bit = 1 << (j * self.span + (c >> _NB))
                if sg > 0:
                    self.pos[c & _NMASK] |= bit
                else:
                    self.neg[c & _NMASK] |= bit
        self.depth = np.zeros(max(64, 2 * len(g.nodes)), dtype=np.int64)
        self.depth[:len(g.nodes)] = [n.depth for n in g.nodes]
        #: count bound -> heap of (depth, seq, key) entries as one integer each; top: the highest non-empty bound
        self.buckets: dict[int, list[int]] = {}
        self.top = 0
        self.seq = 0
        self._push_counts([self._output_pairs(tj) for tj in self.t])

    def _output_pairs(self, tj: dict[int, int]) -> np.ndarray:
        """Keys of all pairs of terms within one output (the initial counting: numpy, not a Python double loop)."""
        if len(tj) < 2:
            return np.zeros(0, dtype=np.int64)
        order = sorted(tj)
        c = np.array(order, dtype=np.int64)
        sg = np.array([tj[k] for k in order], dtype=np.int64)
        i, k = np.triu_indices(len(c), 1)
        return _keys(c[i], sg[i], c[k], sg[k])

    def _push_counts(self, chunks: list[np.ndarray]) -> None:
        """Push every pattern that occurs at least twice in ``chunks`` and is shallow enough to share, in key order."""
        chunks = [c for c in chunks if len(c)]
        if not chunks:
            return
        keys, counts = np.unique(np.concatenate(chunks), return_counts=True)
        keep = counts >= 2
        keys, counts = keys[keep], counts[keep]
        dk = np.maximum(self.depth[keys >> _A], self.depth[(keys >> _B) & _NMASK]) + 1
        keep = dk <= self.max_depth  # sharing deeper than allowed would lengthen the pipeline
        buckets, push = self.buckets, heapq.heappush
        fill: set[int] = set()
        for key, c, d in zip(keys[keep].tolist(), counts[keep].tolist(), dk[keep].tolist()):
            e = (((d << _SEQ) | self.seq) << 56) | key  # within a count: shallower first, then first counted
            self.seq += 1
            b = buckets.get(c)
            if b is None or c in fill:  # a new bucket: appended, made a heap once below
                buckets.setdefault(c, []).append(e)
                fill.add(c)
            else:
                push(b, e)
            self.top = max(self.top, c)
        for c in fill:
            heapq.heapify(buckets[c])

    def _matches(self, key: int) -> int:
        """Bits ``j * span + s`` where output j holds the pattern: node a at shift s, node b at s + d, signs as keyed."""
        a, b, d = key >> _A, (key >> _B) & _NMASK, (key >> 1) & _DMASK
        if key & 1:
            return (self.pos[a] & (self.neg[b] >> d)) | (self.neg[a] & (self.pos[b] >> d))
        return (self.pos[a] & (self.pos[b] >> d)) | (self.neg[a] & (self.neg[b] >> d))

    def count(self, key: int) -> int:
        """The pattern's occurrences now (pairs over all outputs)."""
        return self._matches(key).bit_count()

    def run(self) -> None:
        """Share the pattern with the most occurrences until none repeats: the bucket of the highest count bound holds
        the candidates; a popped pattern whose true count is lower moves down to that bucket (bounds only ever fall)."""
        buckets, pop, push = self.buckets, heapq.heappop, heapq.heappush
        while self.top >= 2:
            b = buckets.get(self.top)
            if not b:
                self.top -= 1
                continue
            e = pop(b)
            key = e & _KEY
            c = self._matches(key).bit_count()
            if c == self.top:
                self._share(key)
            elif c >= 2:
                push(buckets.setdefault(c, []), e)

    def _share(self, key: int) -> None:
        """Make the pattern's node and substitute it at every occurrence; count the patterns the new node forms."""
        a, b, d, rel = key >> _A, (key >> _B) & _NMASK, (key >> 1) & _DMASK, -1 if key & 1 else 1
        g = self.g
        x = g.add(a, b, d, rel)
        g.shared += 1
        if x >= len(self.depth):
            self.depth = np.concatenate([self.depth, np.zeros(len(self.depth), dtype=np.int64)])
        self.depth[x] = g.nodes[x].depth
        pairable = g.nodes[x].depth < self.max_depth
        self.pos.append(0)
        self.neg.append(0)
        span, pos, neg = self.span, self.pos, self.neg
        m = self._matches(key)
        chunks: list[np.ndarray] = []
        j_made, made = -1, []
        while m:  # ascending: output by output, and a chain like a, a<<2, a<<4 pairs from the bottom
            low = m & -m
            m ^= low
            j, s = divmod(low.bit_length() - 1, span)
            if j != j_made:
                if made and pairable:
                    chunks.append(self._new_pairs(self.t[j_made], made))
                j_made, made = j, []
            tj = self.t[j]
            ca, cb = (s << _NB) | a, ((s + d) << _NB) | b
            ga, gb = tj.get(ca), tj.get(cb)
            if ga is None or gb is None:  # taken by an earlier match of the same chain
                continue
            for c, sg in ((ca, ga), (cb, gb)):
                del tj[c]
                clear = ~(1 << (j * span + (c >> _NB)))
                if sg > 0:
                    pos[c & _NMASK] &= clear
                else:
                    neg[c & _NMASK] &= clear
            cx = (s << _NB) | x
            tj[cx] = ga
            if ga > 0:
                pos[x] |= 1 << (j * span + s)
            else:
                neg[x] |= 1 << (j * span + s)
            made.append(cx)
        if made and pairable:
            chunks.append(self._new_pairs(self.t[j_made], made))
        self._push_counts(chunks)

    def _new_pairs(self, tj: dict[int, int], made: list[int]) -> np.ndarray:
        """Keys of the pairs that the new terms ``made`` form in one output (each pair once)."""
        c = np.fromiter(tj.keys(), dtype=np.int64, count=len(tj))
        sg = np.fromiter(tj.values(), dtype=np.int64, count=len(tj))
        out = []
        for cx in made:
            gx = tj[cx]
            keep = c != cx
            cc, gg = c[keep], sg[keep]
            lo = cc < cx
            c1, c2 = np.where(lo, cc, cx), np.where(lo, cx, cc)
            out.append(_keys(c1, np.where(lo, gg, gx), c2, np.where(lo, gx, gg)))
            c, sg = cc, gg  # a pair of two new terms is counted at the first of them only
        return np.concatenate(out)

    def terms(self) -> list[dict[tuple[int, int], int]]:
        return [{(c & _NMASK, (c >> _NB) + self.s0): sg for c, sg in tj.items()} for tj in self.t]


def share_pairs(g: AdderGraph, terms: list[dict[tuple[int, int], int]], max_depth: int) -> list[dict[tuple[int, int], int]]:
    """Share repeated two-term patterns of ``terms`` (per output: (node, shift) -> sign) as new nodes of ``g``.

    Returns each output's remaining terms. Deterministic: every order used is that of integer keys or of outputs.
    """
    s = _Search(g, terms, max_depth)
    s.run()
    return s.terms()

"""Cycle model of the streaming CNN pipeline's handshakes: the latency and II the generator declares and the harness checks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Timing", "PartSpec", "measure_net"]


@dataclass(frozen=True)
class Timing:
    latency: int  # first input beat -> first output beat, one sample, nothing in flight
    ii: float  # mean output spacing over a burst of 64 samples sent back to back


class _Part(Protocol):
    def ready(self, out_ready: bool) -> bool: ...
    def valid(self, in_valid: bool, out_ready: bool) -> bool: ...
    def tick(self, in_fire: bool, out_fire: bool) -> None: ...


class _Adapter:
    """A never-stalling pipeline of ``lat`` cycles behind bondflow_pipe_adapter (DEPTH lat + 2)."""

    def __init__(self, lat: int) -> None:
        self.lat, self.depth = lat, lat + 2
        self.credits, self.fill, self.t, self.arrivals = 0, 0, 0, []

    def ready(self, out_ready: bool) -> bool:
        return self.credits < self.depth

    def valid(self, in_valid: bool, out_ready: bool) -> bool:
        return self.fill > 0

    def tick(self, in_fire: bool, out_fire: bool) -> None:
        self.credits += int(in_fire) - int(out_fire)
        arrived = bool(self.arrivals) and self.arrivals[0] == self.t
        if arrived:
            self.arrivals.pop(0)
        self.fill += int(arrived) - int(out_fire)
        if in_fire:
            self.arrivals.append(self.t + self.lat)
        self.t += 1


class _Reuse:
    """reuse_layer's control: one sample per ``rf`` cycles, an output register frozen while it is held."""

    def __init__(self, rf: int) -> None:
        self.rf = rf
        self.busy = self.v1 = self.v2 = self.full = False
        self.k = self.k1 = self.k2 = 0

    def _en(self, out_ready: bool) -> bool:
        return not self.full or out_ready

    def ready(self, out_ready: bool) -> bool:
        return self._en(out_ready) and (not self.busy or self.k == self.rf - 1)

    def valid(self, in_valid: bool, out_ready: bool) -> bool:
        return self.full

    def tick(self, in_fire: bool, out_fire: bool) -> None:
        en = not self.full or out_fire
        last, last2 = self.k == self.rf - 1, self.v2 and self.k2 == self.rf - 1
        full = self.full and not out_fire
        if en:
            self.v1, self.k1, self.v2, self.k2 = self.busy, self.k, self.v1, self.k1
            if last2:
                full = True
            if self.busy:
                if last:
                    self.busy = False
                else:
                    self.k += 1
            if in_fire:
                self.busy, self.k = True, 0
        self.full = full


class _Window:
    """The window generator (window.v.j2): a shift per pixel, empty shifts to finish an image's padded end."""

    def __init__(self, g: Any) -> None:
        self.g = g
        self.pos, self.due, self.orow, self.ocol, self.b = 0, g.d0, 0, 0, 0
        self._shift = self._real = False

    def _fires(self) -> bool:
        return self.pos == self.due

    def _flushing(self) -> bool:
        return self.g.tail > 0 and self.pos > self.g.h * self.g.w - 1

    def ready(self, out_ready: bool) -> bool:
        slot = not self._fires() or out_ready
        return slot and (self.g.overlap or not self._flushing())

    def valid(self, in_valid: bool, out_ready: bool) -> bool:
        slot = not self._fires() or out_ready
        real = in_valid and self.ready(out_ready)
        if not self._flushing():
            virt = False
        elif self.g.overlap:
            virt = slot and not in_valid and self.b == 0
        else:
            virt = slot
        self._real, self._shift = real, real or virt
        return self._shift and self._fires()

    def tick(self, in_fire: bool, out_fire: bool) -> None:
        if not self._shift:
            return
        g, flushing, fires = self.g, self._flushing(), self._fires()
        if self.pos == g.last:
            self.pos = (self.b + 1 if (self._real and flushing) else self.b) if g.tail > 0 else 0
            self.b = 0
        else:
            self.pos += 1
            if self._real and flushing:
                self.b += 1
        if fires:
            if self.ocol == (g.wo - 1) * g.sw:
                self.ocol = 0
                if self.orow == (g.ho - 1) * g.sh:
                    self.orow, self.due = 0, g.d0
                else:
                    self.orow, self.due = self.orow + g.sh, self.due + g.row_step
            else:
                self.ocol, self.due = self.ocol + g.sw, self.due + g.sw


class _Serializer:
    def __init__(self, k: int, n: int) -> None:
        self.k, self.n, self.full, self.idx, self.pix = k, n, False, 0, 0

    def _last(self) -> bool:
        return self.idx == self.k - 1 or self.pix == self.n - 1

    def ready(self, out_ready: bool) -> bool:
        return not self.full or (out_ready and self._last())

    def valid(self, in_valid: bool, out_ready: bool) -> bool:
        return self.full

    def tick(self, in_fire: bool, out_fire: bool) -> None:
        full = self.full
        if out_fire:
            last = self._last()
            self.idx = 0 if last else self.idx + 1
            self.pix = 0 if self.pix == self.n - 1 else self.pix + 1
            if last:
                full = False
        self.full = full or in_fire


class _Collect:
    def __init__(self, n: int) -> None:
        self.n, self.full, self.cnt = n, False, 0

    def ready(self, out_ready: bool) -> bool:
        return not self.full or out_ready

    def valid(self, in_valid: bool, out_ready: bool) -> bool:
        return self.full

    def tick(self, in_fire: bool, out_fire: bool) -> None:
        full = self.full and not out_fire
        if in_fire:
            if self.cnt == self.n - 1:
                full, self.cnt = True, 0
            else:
                self.cnt += 1
        self.full = full


class _ShellOut:
    """The shell's output register: a result leaves as ``beats`` beats; the sink is always ready."""

    def __init__(self, beats: int) -> None:
        self.beats, self.full, self.cnt = beats, False, 0

    def ready(self, out_ready: bool) -> bool:
        return not self.full or self.cnt == self.beats - 1

    def valid(self, in_valid: bool, out_ready: bool) -> bool:
        return self.full

    def tick(self, in_fire: bool, out_fire: bool) -> None:
        full = self.full
        if out_fire:
            last = self.cnt == self.beats - 1
            self.cnt = 0 if last else self.cnt + 1
            if last:
                full = False
        self.full = full or in_fire


class _Fifo:
    """bondflow_kfifo at a merge's input (show-ahead; ``depth`` None: unbounded, to size it); records its peak fill."""

    def __init__(self, depth: int | None) -> None:
        self.depth, self.count, self.peak = depth, 0, 0

    def ready(self, out_ready: bool) -> bool:
        return self.depth is None or self.count < self.depth

    def valid(self, in_valid: bool, out_ready: bool) -> bool:
        return self.count > 0

    def tick(self, in_fire: bool, out_fire: bool) -> None:
        self.count += int(in_fire) - int(out_fire)
        self.peak = max(self.peak, self.count)


class _Upsample:
    """bondflow_upsample: a row's first copy streams through (each input pixel held for ``fw`` copies), then the
    buffered row leaves ``fh - 1`` more times while the input waits."""

    def __init__(self, a: tuple[int, int, int]) -> None:
        self.w, self.fw, self.fh = a
        self.col = self.rx = self.ry = 0

    def ready(self, out_ready: bool) -> bool:
        return out_ready and self.ry == 0 and self.rx == self.fw - 1

    def valid(self, in_valid: bool, out_ready: bool) -> bool:
        return in_valid if self.ry == 0 else True

    def tick(self, in_fire: bool, out_fire: bool) -> None:
        if not out_fire:
            return
        self.rx += 1
        if self.rx == self.fw:
            self.rx, self.col = 0, self.col + 1
            if self.col == self.w:
                self.col, self.ry = 0, (self.ry + 1) % self.fh


@dataclass(frozen=True)
class PartSpec:
    """One part of the network: ``kind`` (serializer, window, adapter, reuse, collect, shell, fifo, upsample, fork, join), its
    argument, and the channels (valid/ready pairs) it reads and drives. Channel 0 is the input, the last the output."""

    kind: str
    arg: Any
    ins: tuple[int, ...]
    outs: tuple[int, ...]


def _make(p: PartSpec) -> Any:
    a = p.arg
    return {"serializer": lambda: _Serializer(*a), "window": lambda: _Window(a), "adapter": lambda: _Adapter(a),
            "reuse": lambda: _Reuse(a), "collect": lambda: _Collect(a), "shell": lambda: _ShellOut(a),
            "fifo": lambda: _Fifo(a), "upsample": lambda: _Upsample(a), "fork": lambda: None, "join": lambda: None}[p.kind]()


def run_net(net: list[PartSpec], beats_in: int, beats_out: int, samples: int, pixels: int
            ) -> tuple[list[int], list[int], list[int]]:
    """Cycle by cycle: input and output beat cycles, and each fifo's peak fill (in ``net`` order).

    ``net`` is in topological order. Each cycle, readies settle backwards and valids forwards until nothing
    changes (no combinational loop: every path into a join passes a fifo).
    """
    parts = [_make(p) for p in net]
    n_ch = 1 + max(o for p in net for o in p.outs)
    sink = n_ch - 1
    beats_left = samples * beats_in
    ins: list[int] = []
    outs: list[int] = []
    cycle = 0
    limit = 1000 + samples * (beats_in + pixels) * 200
    valid = [False] * n_ch
    ready = [False] * n_ch
    while len(outs) < samples * beats_out:
        valid[0] = beats_left > 0
        ready[sink] = True  # the sink takes every beat offered
        for _ in range(4 * len(net) + 4):
            before = (valid[:], ready[:])
            for spec, part in zip(reversed(net), reversed(parts)):
                if spec.kind == "fork":
                    ready[spec.ins[0]] = all(ready[o] for o in spec.outs)
                elif spec.kind == "join":
                    every = all(valid[i] for i in spec.ins)
                    for i in spec.ins:
                        ready[i] = every and ready[spec.outs[0]]
                else:
                    ready[spec.ins[0]] = part.ready(ready[spec.outs[0]])
            for spec, part in zip(net, parts):
                if spec.kind == "fork":
                    go = valid[spec.ins[0]] and all(ready[o] for o in spec.outs)
                    for o in spec.outs:
                        valid[o] = go
                elif spec.kind == "join":
                    valid[spec.outs[0]] = all(valid[i] for i in spec.ins)
                else:
                    valid[spec.outs[0]] = part.valid(valid[spec.ins[0]], ready[spec.outs[0]])
            if (valid, ready) == before:
                break
        else:
            raise RuntimeError("streaming pipeline model does not settle: a combinational loop (generator bug)")
        fire = [v and r for v, r in zip(valid, ready)]
        if fire[0]:
            ins.append(cycle)
            beats_left -= 1
        if fire[sink]:
            outs.append(cycle)
        for spec, part in zip(net, parts):
            if part is not None:
                part.tick(fire[spec.ins[0]], fire[spec.outs[0]])
        cycle += 1
        if cycle > limit:
            raise RuntimeError("streaming pipeline model does not finish: a generator bug (or a merge fifo too shallow)")
    return ins, outs, [part.peak for part in parts if isinstance(part, _Fifo)]


def measure_net(net: list[PartSpec], pixels: int, beats_in: int, beats_out: int, burst: int = 64
                ) -> tuple[Timing, list[int]]:
    """Latency and II as the harness measures them (phase 1: one sample; phase 2: a back-to-back burst of ``burst``),
    and each fifo's peak fill over both phases."""
    ins, outs, peak1 = run_net(net, beats_in, beats_out, 1, pixels)
    latency = outs[0] - ins[0]
    _, outs, peak2 = run_net(net, beats_in, beats_out, burst, pixels)
    starts = outs[::beats_out]
    return Timing(latency=latency, ii=(starts[-1] - starts[0]) / (len(starts) - 1)), [max(a, b) for a, b in zip(peak1, peak2)]

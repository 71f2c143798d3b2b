"""Cycle model of the streaming CNN pipeline's handshakes: the latency and II the generator declares and the harness checks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["StageTiming", "Timing", "measure"]


@dataclass(frozen=True)
class StageTiming:
    """One streaming stage: its window geometry (cnn.WindowGeom), compute latency and cycles per window."""

    geom: Any
    compute_latency: int
    reuse: int = 1


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


def _run(stages: list[StageTiming], pixels: int, k: int, beats_in: int, out_pixels: int, tail_latency: int | None,
         beats_out: int, samples: int) -> tuple[list[int], list[int]]:
    parts: list[_Part] = []
    if k > 1:
        parts.append(_Serializer(k, pixels))
    for s in stages:
        parts.append(_Window(s.geom))
        parts.append(_Reuse(s.reuse) if s.reuse > 1 else _Adapter(s.compute_latency - 1))
    parts.append(_Collect(out_pixels))
    if tail_latency is not None:
        parts.append(_Adapter(tail_latency))
    shell = _ShellOut(beats_out)
    parts.append(shell)
    beats_left = samples * beats_in
    ins: list[int] = []
    outs: list[int] = []
    cycle = 0
    limit = 1000 + samples * (beats_in + pixels) * 200
    while len(outs) < samples * beats_out:
        readies = [False] * (len(parts) + 1)
        readies[-1] = True  # the sink
        for n in range(len(parts) - 1, -1, -1):
            readies[n] = parts[n].ready(readies[n + 1])
        valid = beats_left > 0
        fires_in = []
        for n, part in enumerate(parts):
            fires_in.append(valid and readies[n])
            valid = part.valid(valid, readies[n + 1])
        if fires_in[0]:
            ins.append(cycle)
            beats_left -= 1
        if valid:  # the sink takes every beat offered
            outs.append(cycle)
        for n, part in enumerate(parts):
            out_fire = fires_in[n + 1] if n + 1 < len(parts) else valid
            part.tick(fires_in[n], out_fire)
        cycle += 1
        if cycle > limit:
            raise RuntimeError("streaming pipeline model does not finish: a generator bug")
    return ins, outs


def measure(stages: list[StageTiming], pixels: int, pixels_per_beat: int, beats_in: int, out_pixels: int,
            tail_latency: int | None, beats_out: int, burst: int = 64) -> Timing:
    """Latency and II as the harness measures them (phase 1: one sample; phase 2: a back-to-back burst)."""
    ins, outs = _run(stages, pixels, pixels_per_beat, beats_in, out_pixels, tail_latency, beats_out, 1)
    latency = outs[0] - ins[0]
    _, outs = _run(stages, pixels, pixels_per_beat, beats_in, out_pixels, tail_latency, beats_out, burst)
    starts = outs[::beats_out]
    return Timing(latency=latency, ii=(starts[-1] - starts[0]) / (len(starts) - 1))

"""The one AXI-Stream lane packing used by the shell, the simulator and the PYNQ drivers (numpy only).

Contract (documented in docs/interface.md):
* each fixed-point value occupies a *lane* of ``lane_bits`` in {8, 16, 32, 64}, the smallest that holds
  the type, sign-extended for signed types and zero-extended otherwise;
* lanes are little-endian inside a beat: lane 0 in TDATA's least significant bits;
* a sample of ``n`` values is ``beats = ceil(n / lanes_per_beat)`` beats; unused lanes of the last beat are 0;
* TLAST is high on the last beat of every output sample; input TLAST is ignored (samples are counted);
* reset is ``rst_n``, active low, synchronous, everywhere.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["StreamFormat", "lane_bits_for", "pack", "unpack", "pack_slots", "unpack_slots", "RESET"]

RESET = "rst_n"  # active-low synchronous reset, the only polarity bondflow uses
_LANES = (8, 16, 32, 64)


def lane_bits_for(width: int) -> int:
    """Smallest container of 8/16/32/64 bits that holds ``width`` bits."""
    for b in _LANES:
        if width <= b:
            return b
    raise ValueError(f"lane width must be <= 64 bits, not {width}")


@dataclass(frozen=True)
class StreamFormat:
    """How one tensor of ``n`` values of ``width`` bits travels on an AXI-Stream."""

    n: int
    width: int
    signed: bool
    lane_bits: int
    lanes_per_beat: int

    @classmethod
    def for_tensor(cls, n: int, width: int, signed: bool, tdata_bits: int | None = None) -> "StreamFormat":
        """Default: a whole sample in one beat; ``tdata_bits`` narrows the bus (a multiple of the lane)."""
        lane = lane_bits_for(width)
        if tdata_bits is None:
            lanes = n
        else:
            if tdata_bits % lane or tdata_bits < lane:
                raise ValueError(f"TDATA width must be a multiple of the {lane}-bit lane, not {tdata_bits}")
            lanes = min(n, tdata_bits // lane)
        return cls(n=n, width=width, signed=signed, lane_bits=lane, lanes_per_beat=lanes)

    @property
    def tdata_bits(self) -> int:
        return self.lane_bits * self.lanes_per_beat

    @property
    def beats(self) -> int:
        return math.ceil(self.n / self.lanes_per_beat)

    @property
    def bytes_per_sample(self) -> int:
        return self.beats * self.tdata_bits // 8

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(f"{'' if self.signed else 'u'}int{self.lane_bits}").newbyteorder("<")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(tdata_bits=self.tdata_bits, beats=self.beats)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StreamFormat":
        return cls(**{k: d[k] for k in ("n", "width", "signed", "lane_bits", "lanes_per_beat")})


def pack(fmt: StreamFormat, raw: np.ndarray) -> bytes:
    """Raw integers [batch, n] -> the stream's bytes (batch * bytes_per_sample)."""
    a = np.asarray(raw, dtype=np.int64).reshape(-1, fmt.n)
    lo = -(1 << (fmt.width - 1)) if fmt.signed else 0
    hi = (1 << (fmt.width - 1)) - 1 if fmt.signed else (1 << fmt.width) - 1
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"values must fit {fmt.width}-bit {'signed' if fmt.signed else 'unsigned'}, not {a.min()}..{a.max()}")
    padded = np.zeros((a.shape[0], fmt.beats * fmt.lanes_per_beat), dtype=fmt.dtype)
    padded[:, : fmt.n] = a
    return padded.tobytes()


def unpack(fmt: StreamFormat, data: bytes) -> np.ndarray:
    """The stream's bytes -> raw integers [batch, n]; lanes are read back in the type's width."""
    if len(data) % fmt.bytes_per_sample:
        raise ValueError(f"stream length must be a multiple of {fmt.bytes_per_sample} bytes, not {len(data)}")
    lanes = np.frombuffer(data, dtype=fmt.dtype).reshape(-1, fmt.beats * fmt.lanes_per_beat)[:, : fmt.n]
    return lanes.astype(np.int64)


def pack_slots(fmt: StreamFormat, raw: np.ndarray, slot_bytes: int) -> bytes:
    """Raw integers [batch, n] -> device-memory bytes: each sample's stream bytes, zero padded to ``slot_bytes``."""
    if slot_bytes < fmt.bytes_per_sample:
        raise ValueError(f"slot must hold {fmt.bytes_per_sample} bytes, not {slot_bytes}")
    packed = np.frombuffer(pack(fmt, raw), dtype=np.uint8).reshape(-1, fmt.bytes_per_sample)
    slots = np.zeros((packed.shape[0], slot_bytes), dtype=np.uint8)
    slots[:, : fmt.bytes_per_sample] = packed
    return slots.tobytes()


def unpack_slots(fmt: StreamFormat, data: bytes, slot_bytes: int) -> np.ndarray:
    """Device-memory bytes of whole slots -> raw integers [batch, n] (the padding is ignored)."""
    if len(data) % slot_bytes:
        raise ValueError(f"slot data length must be a multiple of {slot_bytes} bytes, not {len(data)}")
    slots = np.frombuffer(data, dtype=np.uint8).reshape(-1, slot_bytes)[:, : fmt.bytes_per_sample]
    return unpack(fmt, slots.tobytes())

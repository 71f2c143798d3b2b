"""A watchdog that kills bondflow's child processes (simulators, yosys, Dask workers) if bondflow itself is killed.

SIGKILL cannot be caught, and the kernel leaves children running when their parent dies: an orphaned
simulator or yosys would go on writing into a work directory that a rerun already uses. A forked watchdog
records the process tree below bondflow every half second and, once bondflow is gone, kills what it recorded
(checking each process's start time, so a reused pid is never hit). Linux only (/proc); elsewhere a no-op.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["start_reaper"]

_POLL_S = 0.5


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may contain spaces and parentheses
    return int(fields[1]), int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live process below ``root``."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry.name))
                starts[int(entry.name)] = st[1]
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in starts and pid not in found:
            found[pid] = starts[pid]
            todo.extend(children.get(pid, []))
    return found


def _watch(parent: int, me: int) -> None:
    seen: dict[int, int] = {}
    while os.getppid() == parent:
        seen.update({p: s for p, s in _descendants(parent).items() if p != me})
        seen = {p: s for p, s in seen.items() if (st := _stat(p)) is not None and st[1] == s}
        time.sleep(_POLL_S)
    for pid, start in seen.items():  # bondflow is gone: its recorded children must not outlive it
        st = _stat(pid)
        if st is not None and st[1] == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def start_reaper() -> None:
    """Fork the watchdog; call first thing in the program (before threads exist, so fork is safe)."""
    if not Path("/proc/self/stat").exists() or os.environ.get("BONDFLOW_NO_REAPER"):
        return
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return
    try:  # the watchdog: no stdio (a pipe reader must see EOF when bondflow exits), its own session
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        _watch(parent, os.getpid())
    finally:
        os._exit(0)

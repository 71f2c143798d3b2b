"""Atomic file and directory writes and output-directory locks: a kill never leaves a half-written output visible."""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputExistsError, OutputLockedError

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_dir", "lock_dir", "check_unlocked", "remove_stale_tmp", "LOCK_NAME"]

LOCK_NAME = ".bondflow.lock"
# Directories this process has locked, with a nesting count: flock would refuse a second lock from us too.
_held: dict[Path, int] = {}


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


@contextmanager
def atomic_dir(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"output directory must not exist (or pass --force), not exist: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _locked_error(fd: int, path: Path) -> OutputLockedError:
    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    return OutputLockedError(f"output directory must not be in use by another bondflow run, not locked by pid {holder}: {path}")


def check_unlocked(path: Path) -> None:
    """Raise OutputLockedError if another process holds ``path``'s lock; creates nothing (a cheap early check)."""
    path = Path(path)
    if path.resolve() in _held:
        return
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR)
    except OSError:  # no lock file (or no directory): nobody has locked it
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _locked_error(fd, path) from None
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def lock_dir(path: Path) -> Iterator[Path]:
    """Hold an exclusive lock on directory ``path`` (created if needed) for the block; fail at once if it is taken.

    The lock is ``flock`` on ``<path>/.bondflow.lock``, so the kernel releases it when the holder dies, even by SIGKILL.
    Nested use in one process is allowed.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    key = path.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield path
        finally:
            _held[key] -= 1
        return
    fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _locked_error(fd, path) from None
        # The file is never deleted (a delete would race with a waiting locker); only its content, the pid, changes.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[key] = 1
        try:
            yield path
        finally:
            del _held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def remove_stale_tmp(root: Path) -> list[Path]:
    """Delete the leftovers of atomic writes killed midway (``.NAME.*.tmp``, ``.NAME.old``) under ``root``.

    Only safe while holding ``lock_dir(root)``: otherwise they may belong to a live writer.
    """
    gone = []
    for p in sorted(Path(root).rglob(".*"), key=lambda q: len(q.parts)):
        if (p.name.endswith(".tmp") or p.name.endswith(".old")) and p.exists():
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            gone.append(p)
    return gone

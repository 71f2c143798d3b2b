"""Progress on stderr: rich bars on a terminal, plain timed lines in logs and CI, nothing under ``-q``."""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, TextIO

__all__ = ["Reporter", "Task", "Mode", "detect_mode", "get_reporter", "use", "follow_file", "PLAIN_FRACTION", "PLAIN_MIN_SECONDS"]

Mode = Literal["rich", "plain", "quiet"]
#: Plain mode prints a task's count each time it passes another tenth of its total: ten lines, not thousands.
PLAIN_FRACTION = 0.1
#: ... but not more often than this: a fast task says its 100 % once instead of ten lines in the same instant.
PLAIN_MIN_SECONDS = 1.0


def detect_mode(quiet: bool = False, stream: TextIO | None = None) -> Mode:
    """quiet under -q; rich bars when ``stream`` (stderr) is a terminal that can redraw; plain lines otherwise."""
    if quiet:
        return "quiet"
    stream = stream or sys.stderr
    tty = getattr(stream, "isatty", lambda: False)()
    return "rich" if tty and os.environ.get("TERM") != "dumb" else "plain"


class Task:
    """One measurable activity of a Reporter: vectors simulated, synthesis phases, sweep points, compare steps."""

    def __init__(self, reporter: Reporter, description: str, total: int | None, unit: str, plain_lines: bool = True) -> None:
        self.reporter, self.description, self.total, self.unit = reporter, description, total, unit
        self.plain_lines = plain_lines
        self.completed = 0
        self.phase: str | None = None
        self.t0 = time.monotonic()
        self._next_tenth = 1  # plain mode: the next tenth of the total that earns a line
        self._last_line = self.t0
        self._rich_id: Any = None

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def update(self, completed: int) -> None:
        """Set how much is done (a count read from a simulator may only grow)."""
        total = self.total if self.total is not None else completed
        completed = max(self.completed, min(int(completed), total))
        if completed != self.completed:
            self.completed = completed
            self.reporter._changed(self)

    def advance(self, n: int = 1) -> None:
        self.update(self.completed + n)

    def start_phase(self, name: str) -> None:
        """Begin the next named phase; the one before it counts as done."""
        if self.phase is not None:
            self.completed = min(self.completed + 1, self.total or self.completed + 1)
        self.phase = name
        self.reporter._phase(self)

    def extend(self, n: int = 1) -> None:
        """One more phase than planned (yosys run again without DSPs)."""
        if self.total is not None:
            self.total += n
            self.reporter._bar(self, total=self.total)

    def note(self, text: str) -> None:
        """Detail inside the current phase (a yosys pass): shown on a bar, too chatty for a log."""
        self.reporter._note(self, text)


class Reporter:
    """Owns progress output: ``step(message)`` lines and ``task(description, total)`` counts, in one of three modes."""

    def __init__(self, mode: Mode = "quiet", stream: TextIO | None = None, console: Any = None) -> None:
        self.mode: Mode = mode
        self.stream = stream
        self.t0 = time.monotonic()
        self._lock = threading.RLock()
        self._console = console
        self._bars: Any = None  # rich.progress.Progress while a task is open
        self._open = 0

    @property
    def quiet(self) -> bool:
        return self.mode == "quiet"

    def _out(self) -> TextIO:
        return self.stream or sys.stderr  # looked up late: pytest's capsys swaps sys.stderr

    def _line(self, text: str) -> None:
        with self._lock:
            if self.mode == "rich":
                from rich.text import Text
                self._rich_console().print(Text(text), highlight=False, soft_wrap=True)
            else:
                print(text, file=self._out(), flush=True)

    def step(self, message: str) -> None:
        """One line per step, with the time since the command started (the bracketed prefixes stay first: logs grep them)."""
        if self.quiet:
            return
        self._line(f"{message}  [{time.monotonic() - self.t0:.1f} s]")

    @contextmanager
    def task(self, description: str, total: int | None, unit: str = "", plain_lines: bool = True) -> Iterator[Task]:
        """A counted activity; plain mode prints every tenth, rich mode draws a bar that becomes one line when done.

        ``plain_lines=False`` when each unit already has its own step line (compare's steps, sweep's points): a bar only.
        """
        t = Task(self, description, total, unit, plain_lines)
        if self.mode == "rich":
            with self._lock:
                self._open += 1
                t._rich_id = self._rich_bars().add_task(description, total=total, unit=unit)
        ok = False
        try:
            yield t
            ok = True
        finally:
            self._close(t, ok)

    # -- mode-specific output ------------------------------------------------------------------------------------

    def _rich_console(self) -> Any:
        if self._console is None:
            from rich.console import Console
            self._console = Console(file=self._out(), highlight=False)
        return self._console

    def _rich_bars(self) -> Any:
        if self._bars is None:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                       TimeElapsedColumn)
            # stdout is not redirected: results printed there must reach `> file`, never the terminal's bar area.
            self._bars = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("{task.fields[unit]}", markup=False),
                                  TimeElapsedColumn(), console=self._rich_console(), redirect_stdout=False,
                                  transient=True)
            self._bars.start()
        return self._bars

    def _describe(self, t: Task, note: str | None = None) -> str:
        return t.description + (f": {t.phase}" if t.phase else "") + (f" ({note})" if note else "")

    def _bar(self, t: Task, **fields: Any) -> None:
        bars = self._bars
        if bars is not None:  # None once close() stopped the display (an error is being reported)
            bars.update(t._rich_id, **fields)

    def _changed(self, t: Task) -> None:
        if self.mode == "rich":
            self._bar(t, completed=t.completed)
        elif self.mode == "plain" and t.total and t.plain_lines:
            with self._lock:
                now = time.monotonic()
                if t.completed >= t.total * PLAIN_FRACTION * t._next_tenth - 1e-9 and \
                        (t.completed == t.total or now - t._last_line >= PLAIN_MIN_SECONDS):
                    while t.completed >= t.total * PLAIN_FRACTION * t._next_tenth - 1e-9:
                        t._next_tenth += 1
                    t._last_line = now
                    self._line(f"  {t.description}: {t.completed}/{t.total} {t.unit} "
                               f"({100 * t.completed / t.total:.0f}%), {t.elapsed():.1f} s")

    def _phase(self, t: Task) -> None:
        if self.mode == "rich":
            self._bar(t, completed=t.completed, description=self._describe(t))
        elif self.mode == "plain":
            total = f"/{t.total}" if t.total else ""
            self._line(f"  {t.description}: {t.phase} ({t.completed + 1}{total}), {t.elapsed():.1f} s")

    def _note(self, t: Task, text: str) -> None:
        if self.mode == "rich":
            self._bar(t, description=self._describe(t, text))

    def _close(self, t: Task, ok: bool) -> None:
        if self.mode == "rich":
            with self._lock:
                if self._bars is None:
                    return
                self._bars.remove_task(t._rich_id)
                self._open -= 1
                if self._open == 0:  # no bar left: stop redrawing so ordinary output follows cleanly
                    self._bars.stop()
                    self._bars = None
            if ok and t.plain_lines:
                done = f"{t.completed}/{t.total} {t.unit}" if t.total and not t.phase else "done"
                self._line(f"  {t.description}: {done}, {t.elapsed():.1f} s")
        elif self.mode == "plain" and ok and t.phase:  # a phased task ends with one line; counts already said 100%
            self._line(f"  {t.description}: done, {t.elapsed():.1f} s")

    def close(self) -> None:
        """Stop any live display (before an error is printed, or at exit)."""
        with self._lock:
            if self._bars is not None:
                self._bars.stop()
                self._bars = None
                self._open = 0


#: Library calls print nothing; the CLI installs a reporter for its mode (main.py).
_current = Reporter("quiet")


def get_reporter() -> Reporter:
    """The reporter of this process: the CLI's, or a quiet one (library use, Dask workers)."""
    return _current


@contextmanager
def use(reporter: Reporter) -> Iterator[Reporter]:
    """Make ``reporter`` the process's reporter for the block; its live display stops when the block ends."""
    global _current
    before, _current = _current, reporter
    try:
        yield reporter
    finally:
        reporter.close()
        _current = before


@contextmanager
def follow_file(path: Path | str, on_line: Callable[[str], None], interval: float = 0.2) -> Iterator[None]:
    """Call ``on_line`` for each line another process appends to ``path`` (a simulator's count, a tool's log) while the block runs."""
    path = Path(path)
    stop = threading.Event()
    state = {"pos": 0, "rest": ""}

    def read() -> None:
        try:
            with path.open("r", errors="replace") as f:
                if os.fstat(f.fileno()).st_size < state["pos"]:  # rewritten (a tool run again): start over
                    state["pos"], state["rest"] = 0, ""
                f.seek(state["pos"])
                chunk = f.read()
                state["pos"] = f.tell()
        except OSError:  # not created yet
            return
        *lines, state["rest"] = (state["rest"] + chunk).split("\n")
        for line in lines:
            on_line(line)

    def loop() -> None:
        while not stop.wait(interval):
            read()

    th = threading.Thread(target=loop, name=f"follow-{path.name}", daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()
        read()  # what was written after the last poll

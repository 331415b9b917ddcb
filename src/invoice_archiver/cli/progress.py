"""Progress for long work: a rich progress bar on a terminal, a plain line every few seconds otherwise.

Progress goes to stderr, so stdout stays the command's result (a report, `--json`, a tree) and can be
piped. Trackers are thread-safe: workers advance them directly. A count never runs past its total: when
there is more work than announced (messages a run before this one left in the queue), the total grows.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

PLAIN_INTERVAL_SECONDS = 5.0


class Tracker(Protocol):
    def advance(self, amount: int = 1) -> None: ...

    def set_total(self, total: int) -> None: ...

    def set_completed(self, completed: int) -> None: ...

    def note(self, text: str) -> None: ...


class _RichTracker:
    def __init__(self, progress: Progress, label: str, total: int | None) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=total, note="")

    def advance(self, amount: int = 1) -> None:
        self._progress.update(self._task, advance=amount)
        self._keep_total()

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)
        self._keep_total()

    def set_completed(self, completed: int) -> None:
        self._progress.update(self._task, completed=completed)
        self._keep_total()

    def _keep_total(self) -> None:
        task = self._progress.tasks[self._task]
        if task.total is not None and task.completed > task.total:
            self._progress.update(self._task, total=task.completed)

    def note(self, text: str) -> None:
        self._progress.update(self._task, note=text)


class _PlainTracker:
    """`label: 120/648 invoices, 3 failed` at most every few seconds, and once at the end."""

    def __init__(self, stream: TextIO, label: str, total: int | None, unit: str, interval: float) -> None:
        self._stream, self._label, self._unit, self._interval = stream, label, unit, interval
        self._total, self._completed, self._note = total, 0, ""
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._printed = ""

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self._completed += amount
        self._maybe_print()

    def set_total(self, total: int) -> None:
        with self._lock:
            self._total = total

    def set_completed(self, completed: int) -> None:
        with self._lock:
            self._completed = completed
        self._maybe_print()

    def note(self, text: str) -> None:
        with self._lock:
            self._note = text

    def _maybe_print(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval:
                return
            self._last = now
        self.print_line()

    def print_line(self) -> None:
        with self._lock:
            if self._total is not None:
                self._total = max(self._total, self._completed)
            done = f"{self._completed}/{self._total}" if self._total is not None else str(self._completed)
            note = f", {self._note}" if self._note else ""
            line = f"{self._label}: {done} {self._unit}{note}"
            if line == self._printed:
                return
            self._printed = line
        print(line, file=self._stream, flush=True)


@contextlib.contextmanager
def track(
    label: str,
    total: int | None = None,
    *,
    unit: str = "items",
    stream: TextIO | None = None,
    interval: float = PLAIN_INTERVAL_SECONDS,
) -> Iterator[Tracker]:
    """A progress tracker for one piece of work; a bar on a terminal, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        plain = _PlainTracker(out, label, total, unit, interval)
        yield plain
        plain.print_line()  # where it ended; not after an error, which says enough on its own line
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=Console(file=out),
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with progress:
        yield _RichTracker(progress, label, total)

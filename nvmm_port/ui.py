"""Progress for long steps: a live line on a terminal (rich), plain lines elsewhere (CI, pipes).

Library code never prints.  A function whose work can take more than a second takes a
:class:`Progress` (default :data:`SILENT`) and wraps the work in ``with progress.task(label) as
update:``, calling ``update(detail)`` as it goes (the file being parsed, the object being
compiled).  The command line passes :func:`for_stream`'s choice:

* on a terminal, a rich status line with a spinner, the label, the latest detail and the elapsed
  time, cleared when the step ends; a step that took longer than a second leaves one line
  ``label: done in 2.1 s``;
* elsewhere, plain lines: ``label ...`` once the step has run for a second, the latest detail at
  most every ``interval`` seconds, and ``label: done in 2.1 s`` (a quicker step says nothing).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

Update = Callable[[str], None]


class Progress:
    """Reports nothing: the default for library callers and tests."""

    @contextlib.contextmanager
    def task(self, label: str) -> Iterator[Update]:
        yield _ignore


def _ignore(detail: str) -> None:
    return None


SILENT_UPDATE: Update = _ignore     # the update of a step nobody watches (a default for ``update`` parameters)


SILENT = Progress()


class PlainProgress(Progress):
    """Plain lines, for CI logs and pipes.  A step says nothing until it has run for ``delay``
    seconds (so quick steps, and a command's one-line error, stay alone on the stream): then
    ``label ...`` at its next update, its latest detail at most every ``interval`` seconds, and
    ``label: done in 2.1 s`` when it ends."""

    def __init__(self, stream: TextIO, interval: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 delay: float = 1.0):
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.delay = delay

    @contextlib.contextmanager
    def task(self, label: str) -> Iterator[Update]:
        start = self.clock()
        last = start
        started = False

        def begin(now: float) -> bool:
            nonlocal started
            if not started and now - start >= self.delay:
                started = True
                print(f"{label} ...", file=self.stream, flush=True)
                return True
            return False

        def update(detail: str) -> None:
            nonlocal last
            now = self.clock()
            if begin(now):
                return
            if started and now - last >= self.interval:
                last = now
                print(f"  {label}: {detail} ({now - start:.0f} s)", file=self.stream, flush=True)
        begin(start)
        yield update
        end = self.clock()
        if started or end - start >= self.delay:
            print(f"{label}: done in {end - start:.1f} s", file=self.stream, flush=True)


class RichProgress(Progress):
    """A live status line on a terminal."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        self.console = Console(file=stream, highlight=False)

    @contextlib.contextmanager
    def task(self, label: str) -> Iterator[Update]:
        start = time.monotonic()
        with self.console.status(label) as status:
            def update(detail: str) -> None:
                status.update(f"{label}: {detail} [dim]({time.monotonic() - start:.0f} s)[/dim]")
            yield update
        took = time.monotonic() - start
        if took >= 1.0:
            self.console.print(f"{label}: done in {took:.1f} s", markup=False)


def for_stream(stream: TextIO | None = None) -> Progress:
    """Rich on a terminal, plain lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        return RichProgress(stream)
    return PlainProgress(stream)

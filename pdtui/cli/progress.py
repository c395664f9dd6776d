"""Progress of a wait: each stage as it is reached, with the elapsed time.

On a terminal one line is rewritten in place (the current stage and a ticking clock), and each
stage reached stays as a line above it; piped, each stage is one plain line and nothing is
rewritten. So a user never wonders whether pdtui is stuck, and a log file stays readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import TextIO

from pdtui.text import printable


def clock_text(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour)."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.start = clock()
        self.current: str | None = None
        self._last: str | None = None
        self._drawn = False

    def elapsed(self) -> str:
        return clock_text(self.clock() - self.start)

    def stage(self, text: str, summary: str | None = None) -> None:
        """A stage reached: one line with the elapsed time; the progress line then shows
        ``summary`` (default: the stage). The same stage twice in a row is printed once."""
        text = printable(text)
        if text != self._last:
            self._last = text
            self.line(f"{self.elapsed():>5} {text}")
        self.current = printable(summary) if summary is not None else text
        self.draw()

    def line(self, text: str) -> None:
        """A line of output that stays (the progress line is redrawn below it)."""
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def draw(self) -> None:
        """Rewrite the progress line (terminals only)."""
        if not self.tty or self.current is None:
            return
        self.stream.write(f"\r\x1b[K◌ {self.current} {self.elapsed()}")
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False

    def done(self) -> None:
        self.clear()
        self.current = None
        self.stream.flush()

    @contextlib.asynccontextmanager
    async def ticking(self, every: float = 1.0) -> AsyncIterator[Progress]:
        """Redraw the clock every ``every`` seconds while the block runs (terminals only)."""

        async def tick() -> None:
            while True:
                await asyncio.sleep(every)
                self.draw()

        task = asyncio.create_task(tick()) if self.tty else None
        try:
            yield self
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.done()

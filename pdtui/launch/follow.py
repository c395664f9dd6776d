"""A followed log on its way to a screen: held lines bounded, handed on at a readable rate,
what is skipped counted (the file keeps every line; ``pdtui logs`` shows them all)."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence

#: Lines a pane keeps, and the most held between two takes.
KEEP = 5000
#: Lines a second handed on while a log grows faster; a burst of up to KEEP lines passes whole.
RATE = 2000


class LogFeed:
    """Lines pushed as they arrive (batches of any size), taken once a
    screen tick: the newest ones within a budget that refills at ``rate`` lines a second up to
    ``keep``; older ones beyond it are skipped and counted."""

    def __init__(
        self, keep: int = KEEP, rate: int = RATE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._keep = keep
        self._rate = rate
        self._clock = clock
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._dropped = 0
        self._budget = float(keep)
        self._at = clock()

    def __len__(self) -> int:
        return len(self._lines)

    def push(self, lines: Sequence[str]) -> None:
        """Hold ``lines``; the oldest held ones beyond ``keep`` are skipped."""
        self._dropped += max(0, len(self._lines) + len(lines) - self._keep)
        self._lines.extend(lines)

    def clear(self) -> None:
        """Forget what is held (another log is followed now)."""
        self._lines.clear()
        self._dropped = 0
        self._budget = float(self._keep)

    def take(self) -> tuple[int, list[str]]:
        """``(lines skipped since the last take, the lines to show now)``."""
        now = self._clock()
        self._budget = min(float(self._keep), self._budget + (now - self._at) * self._rate)
        self._at = now
        n = min(len(self._lines), int(self._budget))
        skipped = self._dropped + len(self._lines) - n
        out = list(self._lines)[len(self._lines) - n :] if n else []
        self._lines.clear()
        self._dropped = 0
        self._budget -= n
        return skipped, out

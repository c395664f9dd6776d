"""A log pane that keeps every line it was given, shows only those matching a filter (``/``
in the view), and wraps long lines or scrolls sideways (a key switches)."""

from __future__ import annotations

import collections
from collections.abc import Iterable

from textual.widgets import Log


class FilteredLog(Log):
    """A :class:`Log` with a filter (case-insensitive substring) and a wrap switch."""

    def __init__(self, *, max_lines: int, **kwargs: object) -> None:
        super().__init__(max_lines=max_lines, **kwargs)  # type: ignore[arg-type]
        self.all_lines: collections.deque[str] = collections.deque(maxlen=max_lines)
        self.pattern = ""
        self.wrap = True

    def _wrap_width(self) -> int:
        return max(20, self.scrollable_content_region.width - 1)

    def _shown(self, lines: Iterable[str]) -> list[str]:
        p = self.pattern.lower()
        kept = [line for line in lines if not p or p in line.lower()]
        if not self.wrap:
            return kept
        w = self._wrap_width()
        return [line[i : i + w] for line in kept for i in range(0, max(len(line), 1), w)]

    def add(self, lines: list[str], *, scroll_end: bool) -> None:
        """Keep ``lines`` and show the ones that match the filter."""
        self.all_lines.extend(lines)
        shown = self._shown(lines)
        if shown:
            self.write_lines(shown, scroll_end=scroll_end)

    def reset(self) -> None:
        """Forget every line (another process's log follows)."""
        self.all_lines.clear()
        self.clear()

    def redraw(self) -> None:
        """Show the kept lines again (the filter, the wrap switch or the width changed)."""
        self.clear()
        shown = self._shown(self.all_lines)
        if shown:
            self.write_lines(shown, scroll_end=True)

    def set_filter(self, pattern: str) -> None:
        self.pattern = pattern.strip()
        self.redraw()

    def toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.redraw()

    def on_resize(self) -> None:
        if self.wrap and self.all_lines:
            self.redraw()

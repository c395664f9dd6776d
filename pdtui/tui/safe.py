"""Untrusted text (from a node or a server) as Rich text that cannot reach the terminal raw.

The sanitising itself is :mod:`pdtui.text` (shared with the CLI); this module adds the Rich
side: a :class:`~rich.text.Text` is never parsed for markup, so ``[`` in a node's message
stays a bracket.
"""

from __future__ import annotations

from rich.text import Text

from pdtui.text import plain, printable

__all__ = ["plain", "printable", "safe_text"]


def safe_text(text: str, style: str = "", *, limit: int | None = None) -> Text:
    """``printable(text)`` (cut to ``limit`` characters) as Rich text in ``style``."""
    shown = printable(text)
    return Text(shown if limit is None else shown[:limit], style=style)

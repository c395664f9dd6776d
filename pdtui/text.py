"""Text that came from a node or a server, made safe to show in a terminal.

Tool output, server answers and SSH messages may hold terminal control sequences (an ESC
starts one): written as they are, they would reach the operator's terminal and could clear
it, retitle it or hide text. ``printable`` shows every control character as ``\\xNN``;
``plain`` first drops colour and other escape sequences (coloured logs). Shared by the CLI
and the TUI: no Rich or Textual import here.
"""

from __future__ import annotations

import re

_CONTROL: dict[int, str | None] = {
    c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c not in (0x09, 0x0A)
}
_CONTROL[0x0D] = None  # the \r of \r\n line ends goes (a terminal would return the cursor)


_ANSI = re.compile(r"\x1b\[[0-9;:?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")


def plain(text: str) -> str:
    """``printable`` after dropping colour and other escape sequences (coloured logs)."""
    return printable(_ANSI.sub("", text))


def printable(text: str) -> str:
    """``text`` with control characters (ESC, NUL, ...) shown as ``\\xNN``; tabs and newlines
    stay."""
    return text.translate(_CONTROL)


def words(value: object) -> str:
    """A value from a server's JSON said in words, never as a Python repr: ``True`` is
    "yes", a list is comma-separated, a mapping is "key value" pairs, None is "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {words(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(words(v) for v in value) or "none"
    return printable(str(value))


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 device``, ``2 devices`` (``plural`` for an irregular one: ``count(n, "process",
    "processes")``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"

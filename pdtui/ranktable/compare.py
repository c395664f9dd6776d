"""Differences between two ranktables: a unified diff of the text, or one line per change."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any


def diff(old_text: str, new_text: str, old_name: str, new_name: str) -> str:
    """A unified diff (``diff -u`` style) of two ranktable texts; "" when equal.

    Files without a final newline (what json.dump writes) get the usual
    ``\\ No newline at end of file`` marker, so every diff line ends with a newline.
    """
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True), new_text.splitlines(keepends=True), old_name, new_name
    )
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _fmt(value: object) -> str:
    if value is None:
        return "(missing)"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _entry_changes(where: str, x: Any, y: Any) -> list[str]:
    """``where.key: old -> new`` per changed key of two device entries (or the whole item)."""
    if not (isinstance(x, dict) and isinstance(y, dict)):
        return [f"{where}: {_fmt(x)} -> {_fmt(y)}"]
    keys = [*x, *(k for k in y if k not in x)]
    return [
        f"{where}.{k}: {_fmt(x.get(k))} -> {_fmt(y.get(k))}" for k in keys if x.get(k) != y.get(k)
    ]


def _list_changes(key: str, a: list[Any], b: list[Any]) -> list[str]:
    out: list[str] = []
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            out.extend(_entry_changes(f"{key}[{i}]", x, y))
    n = abs(len(b) - len(a))
    if n:
        what = "added" if len(b) > len(a) else "removed"
        out.append(f"{key}: {n} {'entry' if n == 1 else 'entries'} {what}")
    return out


def summary_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One line per changed value or entry, old -> new, in file order."""
    out: list[str] = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list):
            out.extend(_list_changes(key, a, b))
        else:
            out.append(f"{key}: {_fmt(a)} -> {_fmt(b)}")
    return out

"""Flag values: typed as TOML holds them, split into shared and per-instance tables."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

from pdtui.cluster import FlagValue
from pdtui.launch.plan import compact_json

_INT_RE = re.compile(r"-?[0-9]+")
_FLOAT_RE = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

V = TypeVar("V")


def _has_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_none(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_none(v) for v in value)
    return False


def typed_value(text: str) -> FlagValue:
    """A flag value as TOML would hold it, only when it prints back to the same text."""
    if _INT_RE.fullmatch(text) and str(int(text)) == text:
        return int(text)
    if _FLOAT_RE.fullmatch(text) and str(float(text)) == text:
        return float(text)
    if text[:1] in "{[":
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, (dict, list)) and not _has_none(value):
            return value
    return text


def is_flag(word: str) -> bool:
    return (
        word.startswith("-")
        and word != "-"
        and not _INT_RE.fullmatch(word)
        and not _FLOAT_RE.fullmatch(word)
    )


def parse_flags(args: Sequence[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """``(positionals, [(flag, values)])``; ``--k=v`` is one value, ``--k a b`` two."""
    positional: list[str] = []
    flags: list[tuple[str, list[str]]] = []
    for word in args:
        if is_flag(word):
            name, eq, value = word.lstrip("-").partition("=")
            flags.append((name, [value] if eq else []))
        elif flags:
            flags[-1][1].append(word)
        else:
            positional.append(word)
    return positional, flags


def _table_like(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _toml_stable(value: Any) -> bool:
    """Whether a TOML file keeps this value's key order (tables are written after plain keys)."""
    if isinstance(value, list):
        return all(_toml_stable(v) for v in value)
    if not isinstance(value, dict):
        return True
    seen_table = False
    for v in value.values():
        if _table_like(v):
            seen_table = True
            if not _toml_stable(v):
                return False
        elif seen_table:
            return False
    return True


def stabilize(table: dict[str, FlagValue]) -> dict[str, FlagValue]:
    """Keep a table's flag order through ``dump_spec``: a table-valued flag that TOML would
    move (or reorder inside) is kept as its compact JSON text, which renders the same argv."""
    out = dict(table)
    keys = list(out)
    later_plain = False
    for key in reversed(keys):
        value = out[key]
        if _table_like(value) and (later_plain or not _toml_stable(value)):
            out[key] = compact_json(value)
        if not _table_like(out[key]):
            later_plain = True
    return out


def _vkey(value: Any) -> str:
    return json.dumps([type(value).__name__, value])


def split_common(
    items: list[list[tuple[str, V]]],
) -> tuple[dict[str, V], list[dict[str, V]]]:
    """Shared keys -> one table, the rest per item, keeping every item's resolved order.

    Resolution is ``{**shared, **own}``, so only a common *prefix* of keys can be shared;
    a shared key whose value differs keeps the most common value and is overridden per item.
    """
    if not items:
        return {}, []
    maps = [dict(it) for it in items]
    prefix = _common_prefix(items, maps)
    shared: dict[str, V] = {}
    for key in prefix:
        counts = Counter(_vkey(m[key]) for m in maps)
        best = max(counts.values())
        shared[key] = next(m[key] for m in maps if counts[_vkey(m[key])] == best)
    own = [
        {k: v for k, v in it if not (k in shared and _vkey(shared[k]) == _vkey(v))} for it in items
    ]
    return shared, own


def _common_prefix(items: list[list[tuple[str, V]]], maps: list[dict[str, V]]) -> list[str]:
    """The keys every item starts with, up to the last one whose value differs somewhere."""
    prefix: list[str] = []
    for col in zip(*([k for k, _ in it] for it in items), strict=False):
        if any(k != col[0] for k in col):
            break
        prefix.append(col[0])
    while prefix and len({_vkey(m[prefix[-1]]) for m in maps}) > 1:
        prefix.pop()
    return prefix

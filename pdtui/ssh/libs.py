"""A quicker ``import asyncssh``: its optional liboqs lookup answered from the loader cache.

At import, asyncssh asks ``ctypes.util.find_library`` for ``oqs`` and ``liboqs`` (post-quantum
key exchange). On Linux a name that is not installed makes ``find_library`` run ``ldconfig``,
``gcc`` and ``ld`` in turn, twice: about 0.2 s of every command's start-up. A library that
``ld.so.cache`` does not list is not found by the loader either, so those two names are
answered from the cache file; any other name, or a listed liboqs, takes the normal path.
"""

from __future__ import annotations

import ctypes.util
from collections.abc import Callable
from pathlib import Path

LD_CACHE = Path("/etc/ld.so.cache")
_OQS = ("oqs", "liboqs")
_original: Callable[[str], str | None] = ctypes.util.find_library


def _listed(cache: Path) -> bool | None:
    try:
        return b"liboqs.so" in cache.read_bytes()
    except OSError:
        return None


def _find_library(name: str) -> str | None:
    if name in _OQS and _listed(LD_CACHE) is False:
        return None
    return _original(name)


def install() -> None:
    """Answer the liboqs lookup from the loader cache (idempotent)."""
    ctypes.util.find_library = _find_library

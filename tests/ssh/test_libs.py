"""The liboqs lookup answered from the loader cache, and everything else left alone."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import pytest

from pdtui.ssh import libs


def test_oqs_not_in_the_cache_is_not_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "ld.so.cache"
    cache.write_bytes(b"ld.so-1.7.0\x00libc.so.6\x00libm.so.6\x00")
    monkeypatch.setattr(libs, "LD_CACHE", cache)
    asked: list[str] = []

    def original(name: str) -> str:
        asked.append(name)
        return "found"

    monkeypatch.setattr(libs, "_original", original)
    assert libs._find_library("oqs") is None and libs._find_library("liboqs") is None
    assert libs._find_library("c") == "found" and asked == ["c"]


def test_a_listed_or_unreadable_cache_takes_the_normal_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(libs, "_original", lambda name: f"real:{name}")
    cache = tmp_path / "ld.so.cache"
    cache.write_bytes(b"\x00liboqs.so.5\x00")
    monkeypatch.setattr(libs, "LD_CACHE", cache)
    assert libs._find_library("oqs") == "real:oqs"
    monkeypatch.setattr(libs, "LD_CACHE", tmp_path / "missing")
    assert libs._find_library("oqs") == "real:oqs"


def test_importing_pdtui_ssh_installs_it() -> None:
    import pdtui.ssh  # noqa: F401

    assert ctypes.util.find_library is libs._find_library

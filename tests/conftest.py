"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Never read or write the developer's own pdtui settings."""
    cfg = tmp_path_factory.mktemp("pdtui-config")
    monkeypatch.setenv("PDTUI_CONFIG_DIR", str(cfg))
    yield cfg

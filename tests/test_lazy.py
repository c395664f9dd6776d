"""Lazy re-exports (PEP 562): a name's submodule is imported on first use, then kept."""

from __future__ import annotations

from typing import Any

import pytest
from procs import modules_after

from pdtui.lazy import exports


def test_a_name_is_imported_from_its_submodule_once_and_kept() -> None:
    namespace: dict[str, Any] = {}
    getattr_, dir_ = exports("pdtui", {"count": "text"}, ["count"], namespace)
    from pdtui.text import count

    assert getattr_("count") is count and namespace["count"] is count
    assert dir_() == ["count"]
    with pytest.raises(AttributeError, match="module 'pdtui' has no attribute 'nope'"):
        getattr_("nope")


def test_the_packages_import_their_submodules_only_when_a_name_is_asked_for() -> None:
    assert "pdtui.ssh.pool" not in modules_after("import pdtui.ssh")
    assert "asyncssh" not in modules_after("from pdtui.ssh import redact")
    assert "pdtui.ssh.pool" in modules_after("from pdtui.ssh import SshPool")
    assert "pdtui.cluster.model" not in modules_after("import pdtui.cluster")
    assert "pdtui.cluster.model" in modules_after("from pdtui.cluster import Cluster")

"""Names of a package re-exported lazily (PEP 562): each submodule is imported on first use.

A package whose ``__init__`` imported every submodule would make ``import pkg.small`` pay
for all of them (asyncssh for ``pdtui.ssh``, pydantic for ``pdtui.cluster``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    package: str, submodule_of: Mapping[str, str], names: list[str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``submodule_of[name]`` defines ``name``;
    a name once imported is kept in ``namespace`` (the package's globals)."""

    def getattr_(name: str) -> Any:
        submodule = submodule_of.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *names})

    return getattr_, dir_

"""A real container runtime for these tests: podman with the simulator's own configuration.

Without podman (or runc) the tests skip and say how to install them; with
``PDTUI_REQUIRE_PODMAN=1`` (set by ``.ci/run``) a missing runtime is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdtui.sim.podman import RuntimeMissing, ensure_base_image, write_conf


@pytest.fixture(scope="session")
def podman_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``containers.conf`` for podman (``CONTAINERS_CONF`` is set for the session), with the
    base image built once."""
    conf = write_conf(tmp_path_factory.mktemp("podman"))
    try:
        ensure_base_image(conf)
    except RuntimeMissing as exc:
        if os.environ.get("PDTUI_REQUIRE_PODMAN") == "1":
            pytest.fail(f"PDTUI_REQUIRE_PODMAN=1 but {exc}")
        pytest.skip(str(exc))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTAINERS_CONF", str(conf))
        yield conf

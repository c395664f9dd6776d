"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable as _SummaryCallable
from collections.abc import Iterator
from pathlib import Path
from typing import Any as _SummaryAny

import pytest


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Never read or write the developer's own pdtui settings."""
    cfg = tmp_path_factory.mktemp("pdtui-config")
    monkeypatch.setenv("PDTUI_CONFIG_DIR", str(cfg))
    yield cfg


# A test's one-line summary (how many real samples it read, say), printed at the end of the
# run. It travels in the test report, so it is shown also when pytest-xdist runs the test in
# a worker, whose own output is not.
_SUMMARY = "pdtui-summary"
_SUMMARIES: list[str] = []


@pytest.fixture
def summary_line(request: pytest.FixtureRequest) -> _SummaryCallable[[str], None]:
    """``summary_line(text)``: print ``text`` in the run's closing summary."""
    return lambda text: request.node.user_properties.append((_SUMMARY, text))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _SUMMARIES.extend(str(v) for k, v in report.user_properties if k == _SUMMARY)


def pytest_terminal_summary(terminalreporter: _SummaryAny) -> None:
    for text in _SUMMARIES:
        terminalreporter.write_line(text)


# ============================================================================================
# SSH fixtures (owned by the pdtui.ssh work; keep this section self-contained)
# ============================================================================================

from collections.abc import AsyncIterator as _SshAsyncIterator  # noqa: E402
from collections.abc import Callable as _SshCallable  # noqa: E402
from typing import Any as _SshAny  # noqa: E402

import asyncssh as _asyncssh  # noqa: E402
from sshd_rig import SshdRig as _SshdRig  # noqa: E402
from sshd_rig import sshd_unavailable_reason as _sshd_unavailable_reason  # noqa: E402

from pdtui.sim.sshd import SimNodeServer as _SimNodeServer  # noqa: E402
from pdtui.sim.sshd import generate_keys as _generate_keys  # noqa: E402


@pytest.fixture(scope="session")
def sim_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(host_key_path, client_key_path)`` shared by in-process sim nodes (mode 0600)."""
    return _generate_keys(tmp_path_factory.mktemp("sim-keys"))


@pytest.fixture
async def sim_nodes(
    sim_keys: tuple[Path, Path],
) -> _SshAsyncIterator[_SshCallable[..., _SshAny]]:
    """Factory: ``await sim_nodes("n1", "127.0.1.1", **kw)`` → started :class:`SimNodeServer`.

    Every node uses the session host key unless ``host_key=`` is given, and authorizes the
    session client key; all are stopped (and their commands killed) at teardown.
    """
    host_key_path, client_key_path = sim_keys
    started: list[_SimNodeServer] = []

    async def make(
        name: str, host: str = "127.0.0.1", port: int = 0, **kw: _SshAny
    ) -> _SimNodeServer:
        kw.setdefault("host_key", _asyncssh.read_private_key(host_key_path))
        kw.setdefault("authorized_keys", Path(str(client_key_path) + ".pub").read_text())
        node = _SimNodeServer(name, host, port, **kw)
        await node.start()
        started.append(node)
        return node

    yield make
    for node in started:
        await node.stop()
        await node.kill_all()


@pytest.fixture(scope="session")
def sshd_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_SshdRig]:
    """A real OpenSSH sshd on 127.0.2.1 and 127.0.2.2 (MaxSessions 10, user pdtui-test)."""
    reason = _sshd_unavailable_reason()
    if reason:
        pytest.skip(reason)
    rig = _SshdRig.start(tmp_path_factory.mktemp("sshd-node"), ["127.0.2.1", "127.0.2.2"])
    yield rig
    rig.stop()


@pytest.fixture(scope="session")
def sshd_bastion(
    tmp_path_factory: pytest.TempPathFactory, sshd_node: _SshdRig
) -> Iterator[_SshdRig]:
    """A second real sshd on 127.0.2.10 acting as a jump host to ``sshd_node`` only."""
    rig = _SshdRig.start(
        tmp_path_factory.mktemp("sshd-bastion"),
        ["127.0.2.10"],
        allow_tcp_forwarding=True,
        permit_open=[f"{a}:{sshd_node.port}" for a in sshd_node.addresses],
        client_key_path=sshd_node.client_key_path,
    )
    yield rig
    rig.stop()


# ============================================================================================
# end of SSH fixtures
# ============================================================================================


# ============================================================================================
# The simulator as a real process
# ============================================================================================


@pytest.fixture
def sim_up(tmp_path: Path) -> Iterator[Path]:
    """`pdtui sim up` as a real process on 127.0.3.x; yields the cluster file it wrote."""
    import signal
    import subprocess
    import time

    from procs import sim_up_argv

    cluster = tmp_path / "c.toml"
    proc = subprocess.Popen(
        sim_up_argv(cluster, "127.0.3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("running;") or not line:
            break
    assert cluster.exists(), "".join(lines) + (proc.stderr.read() if proc.stderr else "")
    yield cluster
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped" in out

"""`pdtui demo` in a real terminal (a pty): the app comes up on the simulated cluster, and the
fake nodes are gone when it quits or when its terminal hangs up."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import socket
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from pdtui.cluster import load


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never appeared; last output: {seen[-500:]!r}"
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def _drain_until_exit(pid: int, fd: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            with contextlib.suppress(OSError):  # EIO once the child closed the terminal
                os.read(fd, 65536)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("pdtui demo did not exit")


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


@pytest.mark.parametrize("how", ["ctrl+q", "hangup"])
@pytest.mark.slow
def test_demo_comes_up_and_leaves_nothing_behind(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "demo"
    pid, fd = pty.fork()
    if pid == 0:  # the child: pdtui demo on a 120x40 terminal
        env = {**os.environ, "TERM": "xterm-256color", "PDTUI_CONFIG_DIR": str(tmp_path / "cfg")}
        os.execve(
            sys.executable, [sys.executable, "-m", "pdtui", "demo", "--dir", str(folder)], env
        )
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        _read_until(fd, b"Runbook", timeout=60)
        cluster = load(folder / "demo-1p1d.toml")
        nodes = [(n.host, n.ssh.port or 22) for n in cluster.nodes]
        assert all(_listening(h, p) for h, p in nodes), nodes
        if how == "ctrl+q":
            os.write(fd, b"\x11")
        else:
            os.kill(pid, signal.SIGHUP)
        status = _drain_until_exit(pid, fd, timeout=30)
    finally:
        os.close(fd)
    if how == "ctrl+q":
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    else:  # the app ends the normal way on SIGHUP (exit 128 + 1), after cleaning up
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 129, status
    assert not any(_listening(h, p) for h, p in nodes), nodes

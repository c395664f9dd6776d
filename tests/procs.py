"""Test helpers for real local processes: a free loopback port, ``pdtui sim up``'s argv, a
subprocess whose output goes to a file the test polls (the fake vLLM and proxy, ``pdtui
serve``), and the modules a fresh interpreter has loaded after running some code."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules_after(code: str) -> set[str]:
    """The names in ``sys.modules`` once ``code`` has run in a fresh interpreter."""
    script = f"{code}\nimport sys\nprint(' '.join(sys.modules))"
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def loads_pydantic(code: str) -> bool:
    """Whether running ``code`` in a fresh interpreter imports pydantic (or pydantic_core)."""
    return any(m.split(".")[0].startswith("pydantic") for m in modules_after(code))


def sim_up_argv(cluster: Path, prefix: str) -> list[str]:
    """``pdtui sim up`` with no tool latency, its nodes at ``prefix``.x on any free port, writing
    its cluster file to ``cluster``; it prints a ``running;`` line once they answer."""
    return [
        sys.executable,
        "-m",
        "pdtui",
        "sim",
        "up",
        "--write-cluster",
        str(cluster),
        "--latency-ms",
        "0",
        "--address-prefix",
        prefix,
        "--port",
        "0",
    ]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Proc:
    """A subprocess whose stdout+stderr go to ``log``; the fake vLLM runs at ``speed``
    (``PDTUI_SIM_VLLM_SPEED``, 0 = no waiting) unless ``env`` says otherwise."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, speed: str = "0") -> None:
        self.log = log
        self.fh = open(log, "wb")  # noqa: SIM115
        full_env = {**os.environ, "PDTUI_SIM_VLLM_SPEED": speed, **env}
        self.p = subprocess.Popen(
            argv, stdout=self.fh, stderr=subprocess.STDOUT, env=full_env, stdin=subprocess.DEVNULL
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.text():
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.03)
        if needle in self.text():
            return
        raise AssertionError(f"{needle!r} not seen (rc={self.p.poll()}):\n{self.text()}")

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.p.wait(timeout)
        finally:
            self.fh.close()

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.wait_exit(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.wait_exit(5)

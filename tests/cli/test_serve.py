"""`pdtui serve`: loopback by default, the page is served at the printed tokenised URL only;
other addresses need consent. The guard itself: tests/security/test_serve_token.py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from procs import free_port

pytest.importorskip("textual_serve")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serves_the_app_page_on_loopback() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pdtui",
            "serve",
            str(ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split()[3]
        assert first.startswith(f"serving pdtui on http://127.0.0.1:{port}/?token="), first
        page = bare = None
        for _ in range(100):
            try:
                bare = httpx.get(f"http://127.0.0.1:{port}/", timeout=2, trust_env=False)
                page = httpx.get(url, timeout=2, trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert bare is not None and bare.status_code == 403 and "ws" not in bare.text
        assert page is not None and page.status_code == 200
        assert "pdtui" in page.text and "ws" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_refuses_a_non_loopback_address_without_consent() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pdtui", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "no authentication" in r.stderr

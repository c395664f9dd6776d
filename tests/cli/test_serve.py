"""`pdtui serve`: loopback by default, the page is served; other addresses need consent."""

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


def test_serves_the_app_page_on_loopback() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pdtui", "serve",
         str(ROOT / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        page = None
        for _ in range(100):
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert page is not None and page.status_code == 200
        assert "pdtui" in page.text and "ws" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_refuses_a_non_loopback_address_without_consent() -> None:
    r = subprocess.run([sys.executable, "-m", "pdtui", "serve", "--host", "0.0.0.0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "no authentication" in r.stderr

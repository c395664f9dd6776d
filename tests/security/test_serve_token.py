"""`pdtui serve`'s guard (pdtui/cli/serve_guard.py) in front of a real textual-serve server.

Each test serves textual-serve's own app, guarded, on a free 127.0.0.1 port. The served command
only creates a marker file, so "changes nothing" is checked directly: a refused WebSocket starts
no process, hence no marker; the accepted one (the positive control) creates it. The hostile
clients are plain HTTP and WebSocket clients that set any header they like, as another local
user's script would; a browser's cross-site page can only do less (it cannot forge Origin).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import http.server
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import pytest
from aiohttp import web
from procs import free_port

pytest.importorskip("textual_serve")
from textual_serve.server import Server

from pdtui.cli.serve_guard import Guard, guarded_app

EVIL = "http://evil.example"


@dataclass
class Served:
    guard: Guard
    marker: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.guard.port}"

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Origin": self.guard.origin, **extra}


def _marker_command(marker: Path) -> str:
    code = f"open({str(marker)!r}, 'w').close()"
    return shlex.join([sys.executable, "-c", code])


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    marker = tmp_path / "started"
    guard = Guard("127.0.0.1", port)
    server = Server(_marker_command(marker), host="127.0.0.1", port=port, title="pdtui")
    runner = web.AppRunner(await guarded_app(server, guard), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Served(guard, marker)
    finally:
        await runner.cleanup()
        # textual-serve never waits for the app process: let its transport close in this loop.
        await asyncio.sleep(0.2)
        gc.collect()


async def _ws_status(s: Served, url: str, headers: dict[str, str], cookie: str = "") -> int:
    """The handshake's status: 101 when the WebSocket opened (then held open until the app
    process has started, or 5 s), else the refusal's."""
    if cookie:
        headers = {**headers, "Cookie": f"{s.guard.cookie}={cookie}"}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers, autoping=False):
                await _wait_marker(s)
                return 101
        except aiohttp.WSServerHandshakeError as e:
            return e.status


async def _no_process_started(s: Served) -> bool:
    await asyncio.sleep(0.5)
    return not s.marker.exists()


async def _wait_marker(s: Served) -> bool:
    for _ in range(100):
        if s.marker.exists():
            return True
        await asyncio.sleep(0.05)
    return False


async def _get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, str, aiohttp.ClientResponse]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers=headers or {}, allow_redirects=False) as r,
    ):
        return r.status, await r.text(), r


def test_the_token_is_random_per_run_and_printed_as_a_jupyter_style_url() -> None:
    a, b = Guard("127.0.0.1", 8000), Guard("127.0.0.1", 8000)
    assert a.token != b.token and len(a.token) >= 43
    assert a.url == f"http://127.0.0.1:8000/?token={a.token}"
    assert a.token not in repr(a)
    assert Guard("::1", 8000).origin == "http://[::1]:8000"


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def spy(x: bytes, y: bytes) -> bool:
        calls.append((x, y))
        return x == y

    monkeypatch.setattr(hmac, "compare_digest", spy)
    g = Guard("127.0.0.1", 8000)
    assert g.token_ok(g.token) and not g.token_ok("x") and not g.token_ok("é" * 43)
    assert len(calls) == 3


@pytest.mark.slow
async def test_the_page_needs_the_token_and_a_valid_one_sets_a_strict_httponly_cookie(
    served: Served,
) -> None:
    for url in (
        f"{served.base}/",
        f"{served.base}/?token=wrong",
        f"{served.base}/static/js/textual.js",
    ):
        status, body, _ = await _get(url)
        assert status == 403 and "ws://" not in body and "textual" not in body
    status, body, r = await _get(served.guard.url)
    assert status == 200 and f"ws://127.0.0.1:{served.guard.port}/ws" in body
    morsel = r.cookies[served.guard.cookie]
    assert morsel.value == served.guard.token
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    cookie = {"Cookie": f"{served.guard.cookie}={served.guard.token}"}
    status, _, _ = await _get(f"{served.base}/static/js/textual.js", headers=cookie)
    assert status == 200
    assert await _no_process_started(served)


@pytest.mark.slow
async def test_a_foreign_host_gets_nothing_even_with_the_token(served: Served) -> None:
    """DNS rebinding: evil.example resolved to 127.0.0.1 sends its own name as Host."""
    for host in (
        "evil.example",
        f"evil.example:{served.guard.port}",
        "127.0.0.1:1",
        f"localhost:{served.guard.port}",
    ):
        status, body, _ = await _get(served.guard.url, headers={"Host": host})
        assert status == 403 and "ws://" not in body
        ws = f"ws://127.0.0.1:{served.guard.port}/ws?token={served.guard.token}"
        assert await _ws_status(served, ws, served.headers(Host=host)) == 403
    assert await _no_process_started(served)


@pytest.mark.slow
async def test_a_websocket_without_the_token_starts_nothing(served: Served) -> None:
    ws = f"ws://127.0.0.1:{served.guard.port}/ws"
    assert await _ws_status(served, ws, served.headers()) == 403
    assert await _ws_status(served, ws + "?token=" + "A" * 43, served.headers()) == 403
    assert await _ws_status(served, ws, served.headers(), cookie="wrong") == 403
    assert await _no_process_started(served)


@pytest.mark.slow
async def test_a_foreign_or_missing_origin_starts_nothing_even_with_the_token(
    served: Served,
) -> None:
    """A page on evil.example reaching ws://127.0.0.1 sends its own Origin, and the cookie."""
    ws = f"ws://127.0.0.1:{served.guard.port}/ws"
    for origin in (
        EVIL,
        "null",
        f"http://localhost:{served.guard.port}",
        f"https://127.0.0.1:{served.guard.port}",
    ):
        assert await _ws_status(served, ws, {"Origin": origin}, cookie=served.guard.token) == 403
        assert (
            await _ws_status(served, f"{ws}?token={served.guard.token}", {"Origin": origin}) == 403
        )
        status, _, _ = await _get(served.guard.url, headers={"Origin": origin})
        assert status == 403
    assert await _ws_status(served, f"{ws}?token={served.guard.token}", {}) == 403
    assert await _no_process_started(served)


@pytest.mark.slow
async def test_the_served_origin_with_the_token_or_its_cookie_starts_the_app(
    served: Served,
) -> None:
    """The positive control: the same requests as above, done right, do start the command."""
    ws = f"ws://127.0.0.1:{served.guard.port}/ws"
    assert await _ws_status(served, ws, served.headers(), cookie=served.guard.token) == 101
    assert await _wait_marker(served)
    served.marker.unlink()
    assert await _ws_status(served, f"{ws}?token={served.guard.token}", served.headers()) == 101
    assert await _wait_marker(served)


def _start_serve(port: int, marker: Path) -> tuple[subprocess.Popen[str], str]:
    """``serve()`` in its own process, as ``pdtui serve`` runs it; returns it and its token."""
    code = (
        "from textual_serve.server import Server\n"
        "from pdtui.cli.serve_guard import Guard, serve\n"
        f"guard = Guard('127.0.0.1', {port})\n"
        "print('TOKEN', guard.token, flush=True)\n"
        f"serve(Server({_marker_command(marker)!r}, host='127.0.0.1', port={port}), guard)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[1]


@pytest.mark.slow
def test_serve_prints_no_token_and_refuses_until_it_is_given(tmp_path: Path) -> None:
    """aiohttp's access log, which would print each ``?token=``, is off: the token appears only
    where the caller prints ``Guard.url``."""
    port, marker = free_port(), tmp_path / "started"
    proc, token = _start_serve(port, marker)
    try:
        assert _poll_statuses(port, token) == (403, 200)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=15)[0]
    assert token not in out and "GET /" not in out
    assert not marker.exists()


def _poll_statuses(port: int, token: str) -> tuple[int, int]:
    base = f"http://127.0.0.1:{port}/"
    for _ in range(100):
        try:
            bare = httpx.get(base, timeout=2, trust_env=False).status_code
            good = httpx.get(f"{base}?token={token}", timeout=2, trust_env=False)
            return bare, good.status_code
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the guarded server never answered")


CHROMIUM = Path("/usr/bin/chromium")
# Chromium resolves evil.example to 127.0.0.1 (DNS rebinding) and nothing else but loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--host-resolver-rules=MAP evil.example 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
HOSTILE_PAGE = """<!doctype html><script>
const ws = new WebSocket("ws://127.0.0.1:PORT/ws?width=80&height=24");
ws.onopen = () => { document.title = "opened"; };
ws.onerror = () => { document.title = "refused"; };
</script>"""


@contextlib.contextmanager
def _hostile_site(root: Path, port: int) -> Iterator[int]:
    """A page on another origin that opens the guarded WebSocket, served on a free port."""
    (root / "evil.html").write_text(HOSTILE_PAGE.replace("PORT", str(port)))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as site:
        thread = threading.Thread(target=site.serve_forever, daemon=True)
        thread.start()
        try:
            yield int(site.server_address[1])
        finally:
            site.shutdown()


def _wait_file(path: Path, present: bool, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() == present:
            return True
        time.sleep(0.05)
    return path.exists() == present


@pytest.mark.slow
def test_in_chromium_the_printed_url_opens_the_app_and_no_other_origin_can(tmp_path: Path) -> None:
    """The cookie flow works in a real browser, and the attacks of a hostile page in that same
    browser (which then holds the cookie) fail: a WebSocket from another port of 127.0.0.1
    (same site, so SameSite lets the cookie through: Origin stops it), from evil.example, and
    the page itself through DNS rebinding with the token."""
    if not os.access(CHROMIUM, os.X_OK) and os.environ.get("PDTUI_REQUIRE_BROWSER") != "1":
        pytest.skip(f"{CHROMIUM} is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    port, marker = free_port(), tmp_path / "started"
    proc, token = _start_serve(port, marker)
    base = f"http://127.0.0.1:{port}/"
    try:
        _poll_statuses(port, token)
        with sync_api.sync_playwright() as pw, _hostile_site(tmp_path, port) as evil_port:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context()
            page = context.new_page()
            assert page.goto(base).status == 403
            assert not _wait_file(marker, True, 1.0)
            assert page.goto(f"{base}?token={token}").status == 200
            assert _wait_file(marker, True, 15.0), "the tokenised page never started the app"
            marker.unlink()
            for host in ("127.0.0.1", "evil.example"):
                hostile = context.new_page()
                hostile.goto(f"http://{host}:{evil_port}/evil.html")
                hostile.wait_for_function("document.title !== ''", timeout=10_000)
                assert hostile.title() == "refused"
            rebound = page.goto(f"http://evil.example:{port}/?token={token}")
            assert rebound.status == 403 and "ws://" not in rebound.text()
            browser.close()
        assert not _wait_file(marker, True, 1.0), "a hostile page started the app"
    finally:
        proc.terminate()
        proc.communicate(timeout=15)

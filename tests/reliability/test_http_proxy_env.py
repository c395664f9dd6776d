"""HTTP_PROXY set (to a dead proxy) and no NO_PROXY, as on many jump hosts: every HTTP request
pdtui makes still goes straight to the SSH forward (issue 13 item 7).

The proxy is a real HTTP server on the simulated proxy node's address (127.0.101.*), reached
through a real SSH forward; ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` point at a closed
port, so any client that honours them fails with a ConnectError.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from procs import free_port
from simdata import runbook_sim

from pdtui import cluster as cl
from pdtui.console import health_report, proxy_endpoint
from pdtui.runbook import verification
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for

ROOT = Path(__file__).resolve().parents[2]


class _Proxy(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(json.dumps({"status": "ok"}).encode(), "application/json")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        event = json.dumps({"choices": [{"text": "through", "index": 0}]})
        self._send(f"data: {event}\n\ndata: [DONE]\n\n".encode(), "text/event-stream")


@pytest.fixture
def dead_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, dead)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[cl.Cluster, SshPool]]:
    async with runbook_sim(tmp_path, "127.0.101") as sim:
        cluster = cl.load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            yield cluster, pool


@pytest.fixture
def proxy_server(rig: tuple[cl.Cluster, SshPool]) -> Iterator[None]:
    _node, host, port = proxy_endpoint(rig[0])
    server = ThreadingHTTPServer((host, port), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("dead_proxy_env", "proxy_server")
@pytest.mark.slow
async def test_health_and_the_runbook_prompt_ignore_http_proxy(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = rig
    report = await health_report(pool, cluster)
    proxy = report.entries[0]
    assert proxy.name == "proxy" and proxy.error is None and proxy.proxy == {"status": "ok"}
    answer = await verification(pool, cluster, timeout=30).send()
    assert answer["error"] is None and answer["text"] == "through"


@pytest.mark.slow
def test_every_http_client_comes_from_the_one_factory() -> None:
    """Only ``pdtui.console.http_client`` calls ``httpx.AsyncClient(...)`` (and the simulator's
    own proxy, which passes trust_env=False itself)."""
    found = []
    for path in sorted((ROOT / "pdtui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "AsyncClient"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert [f.split(":")[0] for f in found] == ["pdtui/console.py", "pdtui/sim/proxy.py"], found

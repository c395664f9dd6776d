"""The console survives a decoder answering HTTP 500 and malformed or truncated SSE.

Requests go the app's own way: over SSH (the simulator's prefill-0, the proxy's node) to the
proxy's address. Behind it runs either the simulator's PD proxy (in this process, on its
real HTTP port) in front of a raw prefiller and a decoder that answers 500, or a raw HTTP
server that plays a misbehaving proxy, one scripted answer per request.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn
from textual.pilot import Pilot
from textual.widgets import Static
from tui.pilot_helpers import wait_for

from pdtui import cluster as cl
from pdtui.settings import Settings
from pdtui.sim.proxy import Proxy, parse_args
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.tui.app import PdTui
from pdtui.tui.screens.console import ConsoleScreen
from pdtui.tui.screens.modes import OverviewScreen
from pdtui.tui.screens.ranktable import TextScreen

PROXY_HOST = "127.0.40.1"  # prefill-0's address in the simulator: the proxy's node
BACKENDS = "127.0.40.10"
MODEL = "deepseek_v3.2"
KV_ERROR = (
    "KV transfer from 172.22.0.218:20001 failed for request cmpl-7-0: "
    "Mooncake transfer failed, ret: -1"
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _current(app: PdTui) -> object:
    """The screen on top (a plain object: mypy keeps an earlier isinstance narrowing)."""
    return app.screen


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, object]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next(
        (
            int(v)
            for k, _, v in (h.partition(":") for h in head[1:])
            if k.strip().lower() == "content-length"
        ),
        0,
    )
    body = await reader.readexactly(length)
    return head[0].split()[1], json.loads(body) if body else {}


@asynccontextmanager
async def raw_server(
    handler: Handler, host: str = BACKENDS, sock: socket.socket | None = None
) -> AsyncIterator[int]:
    """A raw HTTP server: ``handler`` answers, then the connection is closed."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await (
        asyncio.start_server(guarded, sock=sock)
        if sock is not None
        else asyncio.start_server(guarded, host, 0)
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def json_response(status: str, obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: "
        f"{len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
)
UNTIL_CLOSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"connection: close\r\n\r\n"
)


def chunk(data: str) -> bytes:
    raw = data.encode()
    return f"{len(raw):x}\r\n".encode() + raw + b"\r\n"


def text_event(text: str, finish: str | None = None) -> str:
    return (
        "data: "
        + json.dumps(
            {
                "object": "text_completion",
                "model": MODEL,
                "choices": [{"index": 0, "text": text, "finish_reason": finish}],
            }
        )
        + "\n\n"
    )


USAGE = (
    "data: "
    + json.dumps(
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}}
    )
    + "\n\n"
)


@asynccontextmanager
async def cluster_with_proxy_port(
    tmp_path: Path,
) -> AsyncIterator[tuple[cl.Cluster, socket.socket]]:
    """The simulator with the proxy on a free port of its node; yields (cluster, bound socket)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((PROXY_HOST, 0))
    base = runbook_spec()
    assert base.proxy is not None
    spec = base.model_copy(
        update={"proxy": base.proxy.model_copy(update={"port": sock.getsockname()[1]})}
    )
    try:
        async with Simulator(
            spec, tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.40", port=0
        ) as sim:
            cluster = cl.load(sim.cluster_file)
            assert cluster.node("prefill-0").host == PROXY_HOST
            yield cluster, sock
    finally:
        sock.close()


def status(app: PdTui) -> str:
    return str(app.screen.query_one("#console-status", Static).render())


def answer(app: PdTui) -> str:
    return str(app.screen.query_one("#console-answer", Static).render())


async def send_and_wait(app: PdTui, pilot: Pilot[None], want: str) -> ConsoleScreen:
    """Send the prompt and wait for the answer's verdict, which must contain ``want``."""
    screen = app.screen
    assert isinstance(screen, ConsoleScreen)
    before = screen.last
    await pilot.press("ctrl+j")
    await wait_for(pilot, lambda: screen.last is not before and not screen.sending)
    assert want in status(app), status(app)
    assert "sending…" not in status(app) and "Traceback" not in status(app)
    return screen


@pytest.mark.slow
async def test_a_decoder_answering_500_is_shown_and_the_app_carries_on(tmp_path: Path) -> None:
    decoder_fails = True
    decode_calls = 0

    async def prefiller(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        assert body["kv_transfer_params"]["do_remote_decode"] is True  # type: ignore[index]
        writer.write(
            json_response(
                "200 OK",
                {
                    "id": "cmpl-7-0",
                    "object": "text_completion",
                    "model": MODEL,
                    "choices": [{"index": 0, "text": "I", "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5},
                    "kv_transfer_params": {
                        "do_remote_prefill": True,
                        "do_remote_decode": False,
                        "remote_engine_id": "0",
                        "remote_host": "172.22.0.218",
                        "remote_port": 20001,
                        "remote_block_ids": [1],
                    },
                },
            )
        )
        await writer.drain()

    async def decoder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal decode_calls
        _, body = await read_request(reader)
        decode_calls += 1
        if decoder_fails:
            writer.write(
                json_response(
                    "500 Internal Server Error",
                    {
                        "error": {
                            "message": KV_ERROR,
                            "type": "InternalServerError",
                            "param": None,
                            "code": 500,
                        }
                    },
                )
            )
        else:
            assert body["kv_transfer_params"]["do_remote_prefill"] is True  # type: ignore[index]
            writer.write(
                CHUNKED
                + chunk(
                    text_event("I am") + text_event(" back", "length") + USAGE + "data: [DONE]\n\n"
                )
                + b"0\r\n\r\n"
            )
        await writer.drain()

    async with (
        cluster_with_proxy_port(tmp_path) as (cluster, sock),
        raw_server(prefiller) as p_port,
        raw_server(decoder) as d_port,
    ):
        assert cluster.spec.proxy is not None
        proxy = Proxy(
            parse_args(
                [
                    "--host",
                    PROXY_HOST,
                    "--port",
                    str(cluster.spec.proxy.port),
                    "--prefiller-hosts",
                    BACKENDS,
                    "--prefiller-ports",
                    str(p_port),
                    "--decoder-hosts",
                    BACKENDS,
                    "--decoder-ports",
                    str(d_port),
                    "--retry-delay",
                    "0.001",
                ]
            )
        )
        server = uvicorn.Server(uvicorn.Config(proxy.app(), log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            app = PdTui(cluster, settings=Settings(), persist_settings=False)
            async with app.run_test(size=(150, 45)) as pilot:
                await pilot.press("f6")
                screen = await send_and_wait(app, pilot, "HTTP 500")
                assert screen.last is not None and screen.last.status == 500
                assert f"HTTP 500: {KV_ERROR}" in status(app)
                assert screen.answer == "" and "(empty answer)" not in answer(app)
                assert decode_calls == 3  # the proxy retried, then forwarded the 500

                await pilot.press("f2")  # the app still switches modes
                assert isinstance(app.screen, OverviewScreen)
                await pilot.press("f6")
                assert _current(app) is screen and f"HTTP 500: {KV_ERROR}" in status(app)

                decoder_fails = False  # the decoder recovers; so does the console
                await send_and_wait(app, pilot, "HTTP 200")
                assert screen.answer == "I am back" and "4+3 tokens" in status(app)
                assert app.is_running
        finally:
            server.should_exit = True
            await serving


@pytest.mark.slow
async def test_malformed_and_truncated_streams_show_partial_output_and_why(
    tmp_path: Path,
) -> None:
    answers = [
        # A data: line that is not JSON among good ones, and an escape sequence in the text.
        CHUNKED
        + chunk(
            text_event("Hello")
            + 'data: {"choices": [{"text": " wor\n\n'
            + text_event(" world\x1b[2J", "length")
            + USAGE
            + "data: [DONE]\n\n"
        )
        + b"0\r\n\r\n",
        # Cut mid-event: the connection goes away inside a chunked body.
        CHUNKED + chunk(text_event("Partial") + 'data: {"choices": [{"te'),
        # The body ends (connection close) mid-event, without data: [DONE].
        UNTIL_CLOSE + (text_event("Half") + 'data: {"choices": [{"text": "way').encode(),
        # Not SSE at all: an HTML error page with status 200.
        UNTIL_CLOSE + b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    ]

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path, body = await read_request(reader)
        assert path == "/v1/completions" and body["stream"] is True
        writer.write(answers.pop(0))
        await writer.drain()

    async with cluster_with_proxy_port(tmp_path) as (cluster, sock), raw_server(proxy, sock=sock):
        app = PdTui(cluster, settings=Settings(), persist_settings=False)
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.press("f6")
            screen = await send_and_wait(app, pilot, "HTTP 200")
            assert screen.answer == "Hello world\x1b[2J"
            assert answer(app) == "Hello world\\x1b[2J"  # shown, not sent to the terminal
            assert "1 SSE event was not a JSON object and skipped" in status(app)
            assert '\'{"choices": [{"text": " wor\'' in status(app)
            await pilot.press("ctrl+e")  # the raw events show the bad one
            assert isinstance(app.screen, TextScreen)
            raw = str(app.screen.query("#text-box Static").last(Static).render())
            assert '{"choices": [{"text": " wor' in raw and "\x1b" not in raw
            await pilot.press("escape")

            await send_and_wait(app, pilot, "HTTP 200")
            assert screen.answer == "Partial"
            assert "connection dropped mid-stream" in status(app)

            await send_and_wait(app, pilot, "HTTP 200")
            assert screen.answer == "Half"
            assert "the stream ended before data: [DONE]" in status(app)

            await send_and_wait(app, pilot, "HTTP 200: the answer is not JSON")
            assert "502 Bad Gateway" in status(app) and screen.answer == ""

            await pilot.press("f2")
            assert isinstance(app.screen, OverviewScreen)
            await pilot.press("f6")
            assert _current(app) is screen and app.is_running
            assert answers == []


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx must not send the console's loopback requests to an HTTP proxy."""
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)

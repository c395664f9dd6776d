"""A hostile or broken proxy cannot make pdtui wait forever or fill its memory (issue 13
item 6): bodies are capped, every request has an overall deadline besides the read timeout,
and a stream stops after ``max_tokens`` worth of text plus a margin.

Each server is a real HTTP server on 127.0.0.1 written for the case: an endless body, an
endless 500 body, an endless SSE stream and one SSE comment line every second. "Endless" is
1 GiB, so that the code before the fix ends too (after using gigabytes).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from pdtui.console import MAX_BODY, Request, Result, http_client, send

MIB = 1 << 20
GIB = 1 << 30
Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 that reads one request and lets ``handler`` answer."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(x.split(b":")[1])
                    for x in head.split(b"\r\n")
                    if x.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            await handler(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()


def endless(status: int, kind: str, chunk: bytes) -> Handler:
    async def handler(w: asyncio.StreamWriter) -> None:
        w.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nConnection: close\r\n\r\n".encode()
        )
        for _ in range(GIB // len(chunk)):
            w.write(chunk)
            await w.drain()

    return handler


async def comment_every_second(w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
    for _ in range(3600):
        w.write(b": keep-alive\n\n")
        await w.drain()
        await asyncio.sleep(1)


async def measured(url: str, req: Request, timeout: float = 30) -> tuple[Result, int]:
    tracemalloc.start()
    try:
        async with http_client(httpx.Timeout(timeout, connect=5)) as client:
            res = await asyncio.wait_for(send(client, url, req), 60)
        return res, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def req(stream: bool) -> Request:
    return Request("completion", "hi", "m", max_tokens=100, stream=stream)


@pytest.mark.slow
async def test_an_endless_body_is_cut() -> None:
    async with server(endless(200, "application/json", b"x" * 65536)) as url:
        res, peak = await measured(url, req(stream=False))
    assert peak < 50 * MIB, f"peak {peak / MIB:.0f} MiB"
    assert len(res.body) <= MAX_BODY and not res.ok
    assert res.error is not None and "cut at" in res.error


@pytest.mark.slow
async def test_an_endless_500_body_is_cut() -> None:
    async with server(endless(500, "text/plain", b"oops " * 13107)) as url:
        res, peak = await measured(url, req(stream=True))
    assert peak < 50 * MIB, f"peak {peak / MIB:.0f} MiB"
    assert res.status == 500 and len(res.body) <= MAX_BODY
    assert res.error is not None and "cut at" in res.error


async def test_an_endless_stream_stops_after_max_tokens_worth() -> None:
    event = json.dumps({"choices": [{"text": "word ", "index": 0}]})
    async with server(endless(200, "text/event-stream", f"data: {event}\n\n".encode() * 64)) as url:
        res, peak = await measured(url, req(stream=True))
    assert peak < 50 * MIB, f"peak {peak / MIB:.0f} MiB"
    assert res.error is not None and "max_tokens" in res.error
    assert 100 <= res.text.count("word") < 10_000


async def test_an_endless_line_without_newline_is_cut() -> None:
    async with server(endless(200, "text/event-stream", b"d" * 65536)) as url:
        res, peak = await measured(url, req(stream=True))
    assert peak < 50 * MIB, f"peak {peak / MIB:.0f} MiB"
    assert res.error is not None and "cut at" in res.error


@pytest.mark.slow
async def test_a_comment_every_second_meets_the_overall_deadline() -> None:
    async with server(comment_every_second) as url:
        res, _ = await measured(url, req(stream=True), timeout=3)
    assert res.error is not None and "deadline" in res.error and "3 s" in res.error


@pytest.mark.slow
async def test_pdtui_prompt_timeout_is_an_overall_deadline(tmp_path: Path) -> None:
    cluster = tmp_path / "c.toml"
    cluster.write_text(
        '[cluster]\nname = "c"\n[[nodes]]\nname = "n1"\nhost = "127.0.0.1"\n'
        '[model]\npath = "/m"\nserved_name = "m"\n'
    )
    async with server(comment_every_second) as url:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pdtui",
            "prompt",
            str(cluster),
            "hi",
            "--url",
            url,
            "--timeout",
            "3",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, (out, err)
    assert b"deadline" in err

"""The prompt console core against the fake vLLM + fake PD proxy over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from procs import Proc, free_port

from pdtui.cluster import load
from pdtui.console import (
    EMPTY_200,
    BackendHealth,
    EndpointHealth,
    HealthReport,
    Request,
    Result,
    backend_health,
    estimate_tokens,
    health_report,
    load_test,
    percentile,
    precheck,
    proxy_endpoint,
    proxy_health,
    reach,
    send,
)
from pdtui.sim import textgen
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.ssh.remote import pool_for

MODEL = "deepseek_v3.2"
MAX_LEN = 256


# --------------------------------------------------------------------------- a 1P1D on loopback


@dataclass
class PD:
    url: str
    p_url: str
    d_url: str


def _vllm(port: int, role: str, kv_port: int) -> list[str]:
    kv = json.dumps(
        {
            "kv_connector": "MooncakeConnectorV1",
            "kv_role": role,
            "kv_port": str(kv_port),
            "engine_id": role,
        }
    )
    return [
        sys.executable,
        "-m",
        "pdtui.sim.vllm",
        "serve",
        "/weights/dpsk",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--served-model-name",
        MODEL,
        "--max-model-len",
        str(MAX_LEN),
        "--max-num-seqs",
        "8",
        "--kv-transfer-config",
        kv,
    ]


@contextmanager
def start_pd(tmp: Path, prefix: str) -> Iterator[PD]:
    """A fake prefiller (.2), decoder (.3) and proxy (.1) on ``prefix``.x; their "data-plane
    IPs" are the loopback addresses themselves, so nothing leaves 127.0.0.0/8."""
    px_addr, p_addr, d_addr = f"{prefix}.1", f"{prefix}.2", f"{prefix}.3"
    p_port, d_port, px_port = free_port(p_addr), free_port(d_addr), free_port(px_addr)
    p = Proc(
        _vllm(p_port, "kv_producer", free_port(p_addr)),
        {"PDTUI_SIM_LISTEN": p_addr, "VLLM_HOST_IP": p_addr},
        tmp / "p.log",
        speed="0.05",
    )
    d = Proc(
        _vllm(d_port, "kv_consumer", free_port(d_addr)),
        {"PDTUI_SIM_LISTEN": d_addr, "VLLM_HOST_IP": d_addr},
        tmp / "d.log",
        speed="0.05",
    )
    px = Proc(
        [
            sys.executable,
            "-m",
            "pdtui.sim.proxy",
            "--host",
            px_addr,
            "--port",
            str(px_port),
            "--prefiller-hosts",
            p_addr,
            "--prefiller-ports",
            str(p_port),
            "--decoder-hosts",
            d_addr,
            "--decoder-ports",
            str(d_port),
        ],
        {"PDTUI_SIM_LISTEN": px_addr},
        tmp / "proxy.log",
        speed="0.05",
    )
    try:
        for proc in (p, d, px):
            proc.wait_for("Application startup complete.")
        yield PD(
            f"http://{px_addr}:{px_port}", f"http://{p_addr}:{p_port}", f"http://{d_addr}:{d_port}"
        )
    finally:
        for proc in (px, p, d):
            proc.stop()


@pytest.fixture(scope="module")
def pd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PD]:
    with start_pd(tmp_path_factory.mktemp("pd"), "127.0.17") as cluster:
        yield cluster


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20, trust_env=False) as c:
        yield c


# --------------------------------------------------------------------------- raw servers

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length) if length else b""


@asynccontextmanager
async def raw_server(handler: Handler, host: str = "127.0.17.9") -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.close()


CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def chunk(data: str) -> bytes:
    raw = data.encode()
    return f"{len(raw):x}\r\n".encode() + raw + b"\r\n"


def sse(obj: object) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def text_chunk(text: str) -> str:
    return sse(
        {
            "object": "text_completion",
            "choices": [{"index": 0, "text": text, "finish_reason": None}],
        }
    )


# --------------------------------------------------------------------------- requests


def test_request_bodies_and_curl() -> None:
    r = Request("chat", "it's me", MODEL, max_tokens=5, extra={"seed": 7})
    assert r.path == "/v1/chat/completions"
    assert r.body() == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "it's me"}],
        "max_tokens": 5,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 7,
    }
    c = Request("completion", "hi", MODEL, stream=False)
    assert c.path == "/v1/completions"
    assert "stream_options" not in c.body() and c.body()["prompt"] == "hi"
    argv = shlex.split(r.curl("http://127.0.0.1:8080/"))
    assert argv[:4] == ["curl", "-sS", "-N", "http://127.0.0.1:8080/v1/chat/completions"]
    assert argv[4:6] == ["-H", "Content-Type: application/json"]
    assert argv[6] == "-d" and json.loads(argv[7]) == r.body()
    assert "-N" not in shlex.split(c.curl("http://h:1"))


@pytest.mark.parametrize("kind", ["completion", "chat"])
@pytest.mark.slow
async def test_stream_and_non_stream_agree(pd: PD, client: httpx.AsyncClient, kind: str) -> None:
    pieces: list[str] = []
    req = Request(kind, "Who are you?", MODEL, max_tokens=20)  # type: ignore[arg-type]
    s = await send(client, pd.url, req, on_text=pieces.append)
    assert s.ok, s
    assert s.status == 200 and s.finish_reason == "length"
    assert "".join(pieces) == s.text and len(pieces) == 20
    n = await send(
        client,
        pd.url,
        Request(
            kind,  # type: ignore[arg-type]
            "Who are you?",
            MODEL,
            max_tokens=20,
            stream=False,
        ),
    )
    assert n.ok, n
    assert n.text == s.text and n.ttft is None and n.raw_events == []
    if kind == "completion":
        assert s.text == textgen.reply_text("Who are you?", 20)
    for r in (s, n):
        assert r.completion_tokens == 20
        assert r.prompt_tokens == (4 if kind == "completion" else 8)
    assert s.ttft is not None and 0 < s.ttft < s.total
    assert s.tokens_per_s == pytest.approx(20 / (s.total - s.ttft), rel=1e-6)
    assert s.itl is not None and s.itl > 0
    assert s.raw_events[-1] == "[DONE]"
    usage = json.loads(s.raw_events[-2])
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 20
    assert s.status_line().startswith("TTFT ") and f"{s.prompt_tokens}+20 tokens" in s.status_line()
    assert n.body and json.loads(n.body)["usage"]["completion_tokens"] == 20


async def test_fake_clock_gives_exact_rates() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = text_chunk("a") + text_chunk("b") + text_chunk("c")
        body += sse({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 6}})
        writer.write(CHUNKED + chunk(body) + chunk("data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    # t0, three text chunks, the usage chunk, [DONE], end
    it = iter([0.0, 1.0, 1.5, 2.0, 2.5, 2.6, 4.0])
    async with raw_server(handler) as url, httpx.AsyncClient(trust_env=False) as c:
        r = await send(c, url, Request("completion", "x", MODEL), clock=lambda: next(it))
    assert r.ok, r
    assert r.text == "abc" and r.ttft == 1.0 and r.total == 4.0
    assert r.itl == pytest.approx(0.5)
    assert r.tokens_per_s == pytest.approx(6 / 3.0)
    assert r.status_line() == "TTFT 1.000 s · 2.0 tok/s · 3+6 tokens · HTTP 200"


# --------------------------------------------------------------------------- errors


async def test_max_model_len_error_keeps_status_and_body(pd: PD, client: httpx.AsyncClient) -> None:
    for stream in (True, False):
        r = await send(
            client,
            pd.url,
            Request("completion", "Who are you?", MODEL, max_tokens=MAX_LEN, stream=stream),
        )
        assert not r.ok and r.status == 400
        assert "maximum context length is 256" in (r.error or "")
        assert r.error is not None and r.error.startswith("HTTP 400: ")
        assert json.loads(r.body)["error"]["code"] == 400
        assert "HTTP 400" in r.status_line()


async def test_precheck_agrees_with_the_server(pd: PD, client: httpx.AsyncClient) -> None:
    assert estimate_tokens("Who are you?") == 4
    assert estimate_tokens("x" * 40) == 10  # long words: at least one token per 4 chars
    for kind, n in (("completion", 4), ("chat", 8)):
        fits = Request(
            kind,  # type: ignore[arg-type]
            "Who are you?",
            MODEL,
            max_tokens=MAX_LEN - n,
            stream=False,
        )
        over = Request(
            kind,  # type: ignore[arg-type]
            "Who are you?",
            MODEL,
            max_tokens=MAX_LEN - n + 1,
            stream=False,
        )
        assert precheck(fits, MAX_LEN) is None
        msg = precheck(over, MAX_LEN)
        assert msg is not None and f"> max_model_len {MAX_LEN}" in msg
        assert (await send(client, pd.url, fits)).ok
        assert (await send(client, pd.url, over)).status == 400
    assert precheck(Request("completion", "hi", MODEL, max_tokens=10**6), None) is None
    assert precheck(Request("completion", "hi", MODEL, max_tokens=0), 100) is not None
    assert (
        precheck(Request("completion", "a b c", MODEL, max_tokens=8), 10, count_tokens=lambda t: 5)
        is not None
    )


async def test_empty_200_is_an_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    async with raw_server(handler) as url, httpx.AsyncClient(trust_env=False) as c:
        for stream in (True, False):
            r = await send(c, url, Request("chat", "hi", MODEL, stream=stream))
            assert r.status == 200 and r.error == EMPTY_200 and r.text == ""
            assert "older proxies" in EMPTY_200


async def test_stream_dropped_mid_way_keeps_partial_text() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED + chunk(text_chunk("Hello") + text_chunk(" wor")))
        await writer.drain()
        writer.close()  # no terminating chunk: the connection just goes away

    async with raw_server(handler) as url, httpx.AsyncClient(trust_env=False) as c:
        r = await send(c, url, Request("completion", "hi", MODEL))
    assert r.status == 200 and r.text == "Hello wor"
    assert r.error is not None and "dropped mid-stream" in r.error and url in r.error


async def test_stream_ending_without_done_is_an_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # HEAD proxy: a decoder failure mid-stream just ends it
        writer.write(CHUNKED + chunk(text_chunk("Hel")) + b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(handler) as url, httpx.AsyncClient(trust_env=False) as c:
        r = await send(c, url, Request("completion", "hi", MODEL))
    assert r.text == "Hel" and r.error is not None and "[DONE]" in r.error


async def test_error_event_mid_stream() -> None:
    err = {
        "error": {
            "message": "KV transfer failed",
            "type": "InternalServerError",
            "param": None,
            "code": 500,
        }
    }

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            CHUNKED + chunk(text_chunk("a") + sse(err) + "data: [DONE]\n\n") + b"0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    async with raw_server(handler) as url, httpx.AsyncClient(trust_env=False) as c:
        r = await send(c, url, Request("completion", "hi", MODEL))
    assert r.status == 200 and r.text == "a" and r.error == "KV transfer failed"
    assert json.loads(r.raw_events[1]) == err


async def test_connection_refused_names_the_url() -> None:
    port = free_port("127.0.17.9")
    async with httpx.AsyncClient(trust_env=False) as c:
        r = await send(c, f"http://127.0.17.9:{port}", Request("completion", "hi", MODEL))
    assert r.status is None and r.error is not None
    assert f"cannot reach http://127.0.17.9:{port}/v1/completions" in r.error
    assert "no HTTP response" in r.status_line()


async def test_timeout_names_the_url() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(handler) as url, httpx.AsyncClient(trust_env=False, timeout=0.3) as c:
        r = await send(c, url, Request("completion", "hi", MODEL))
    assert r.error is not None and r.error.startswith(f"timed out talking to {url}")


async def test_cancel_stops_at_once_and_closes_the_connection() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED + chunk(text_chunk("first")))
        await writer.drain()
        if not await reader.read(1):  # the client closed its side
            closed.set()
        writer.close()

    got = asyncio.Event()
    async with raw_server(handler) as url, httpx.AsyncClient(trust_env=False) as c:
        task = asyncio.create_task(
            send(c, url, Request("completion", "hi", MODEL), on_text=lambda _t: got.set())
        )
        await asyncio.wait_for(got.wait(), 5)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 0.5
        await asyncio.wait_for(closed.wait(), 0.5)


# --------------------------------------------------------------------------- health, load


async def test_health_helpers(pd: PD, client: httpx.AsyncClient) -> None:
    h = await proxy_health(client, pd.url)
    assert h["status"] == "ok" and h["prefill_instances"] == 1 and h["decode_instances"] == 1
    b = await backend_health(client, pd.p_url)
    assert b.ok and b.health_status == 200 and b.models == [MODEL]
    assert b.max_model_len == MAX_LEN
    hostport = pd.d_url.removeprefix("http://")
    assert (await backend_health(client, hostport)).max_model_len == MAX_LEN
    dead = f"127.0.17.9:{free_port('127.0.17.9')}"
    bad = await backend_health(client, dead)
    assert not bad.ok and bad.error is not None and "cannot reach" in bad.error
    assert "error" in await proxy_health(client, f"http://{dead}")
    # the proxy has no /health: a vLLM-style probe of it says so
    assert (await backend_health(client, pd.url)).health_status == 404


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 90) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 90) == pytest.approx(4.6)


@pytest.mark.slow
async def test_load_test(pd: PD, client: httpx.AsyncClient) -> None:
    seen: list[Result] = []
    req = Request("completion", "Tell me a story", MODEL, max_tokens=16)
    rep = await load_test(client, pd.url, req, 20, 5, on_result=seen.append)
    assert rep.n == 20 and rep.ok == 20 and rep.errors == 0 and len(seen) == 20
    assert rep.ttft_p50 is not None and rep.ttft_p90 is not None
    assert 0 < rep.ttft_p50 <= rep.ttft_p90 < rep.seconds
    assert rep.tpot_p50 is not None and rep.tpot_p90 is not None
    assert 0 < rep.tpot_p50 <= rep.tpot_p90 < 1
    assert rep.tokens_per_s_total == pytest.approx(20 * 16 / rep.seconds)
    bad = await load_test(
        client, pd.url, Request("completion", "x", MODEL, max_tokens=MAX_LEN), 3, 2
    )
    assert bad.ok == 0 and bad.errors == 3 and bad.ttft_p50 is None
    assert bad.tokens_per_s_total is None and len(bad.error_samples) == 1
    with pytest.raises(ValueError):
        await load_test(client, pd.url, req, 0, 1)


# --------------------------------------------------------------------------- reach


async def test_reach_through_an_ssh_forward_on_the_simulator(tmp_path: Path) -> None:
    sim = Simulator(
        runbook_spec(), tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.18", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        assert cluster.spec.proxy is not None
        proxy_node = next(n for n in sim.nodes if n.name == cluster.spec.proxy.node)
        node, host, port = proxy_endpoint(cluster)
        # the cluster file says 172.22.0.218; the fake node's services listen on loopback
        assert cluster.spec.proxy.host.startswith("172.22.")
        assert node.name == proxy_node.name and host == proxy_node.listen_host
        assert port == cluster.spec.proxy.port

        hits: list[bytes] = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            hits.append(head.split(b"\r\n")[0])
            body = b'{"status":"ok","prefill_instances":1,"decode_instances":1}'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            writer.close()

        async with (
            raw_server(handler, proxy_node.listen_host) as direct_url,
            pool_for(cluster) as pool,
            httpx.AsyncClient(trust_env=False) as c,
        ):
            tport = int(direct_url.rsplit(":", 1)[1])
            async with reach(pool, cluster, port=tport) as base:
                assert base.startswith("http://127.0.0.1:") and base != direct_url
                h = await proxy_health(c, base)
            assert h["status"] == "ok" and hits == [b"GET /healthcheck HTTP/1.1"]
            async with reach(
                pool, cluster, proxy_node.listen_host, tport, node=proxy_node.name
            ) as base2:
                assert (await proxy_health(c, base2))["status"] == "ok"
            # the forward is closed afterwards
            with pytest.raises(httpx.TransportError):
                await c.get(base2 + "/healthcheck")
            async with reach(None, cluster, port=tport, via="direct") as d:
                assert d == direct_url


# --------------------------------------------------------------------------- health report


def test_health_report_lines_and_the_smallest_max_model_len() -> None:
    report = HealthReport(
        [
            EndpointHealth(
                "proxy", proxy={"status": "ok", "prefill_instances": 1, "healthy": True}
            ),
            EndpointHealth(
                "prefill-0", "p0 10.0.0.1:8000", backend=BackendHealth("http://x", 200, ["m"], 4096)
            ),
            EndpointHealth(
                "decode-0",
                "d0 10.0.0.2:8000",
                backend=BackendHealth("http://y", 503, [], 2048, "/health: HTTP 503"),
            ),
            EndpointHealth("decode-1", "d1 10.0.0.3:8000", error="decode-1 (d1 ...): refused"),
        ]
    )
    assert report.max_model_len == 2048
    assert report.lines() == [
        "proxy /healthcheck: status ok, prefill instances 1, healthy yes",
        "prefill-0 (p0 10.0.0.1:8000): /health 200, models m, max_model_len 4096: ok",
        "decode-0 (d0 10.0.0.2:8000): /health 503, models -, max_model_len 2048: "
        "NOT OK: /health: HTTP 503",
        "decode-1 (d1 ...): refused",
    ]
    assert HealthReport().max_model_len is None


@pytest.mark.slow
async def test_health_report_on_nodes_where_nothing_serves_says_so_per_endpoint(
    tmp_path: Path,
) -> None:
    sim = Simulator(
        runbook_spec(), tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.19", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            report = await health_report(pool, cluster, timeout=5)
    names = [e.name for e in report.entries]
    assert names == ["proxy", *(p.name for p in cluster.processes())]
    assert report.max_model_len is None
    assert all(
        e.error is not None
        or (e.proxy or {}).get("error")
        or (e.backend is not None and not e.backend.ok)
        for e in report.entries
    )

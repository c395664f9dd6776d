"""The console's API key against a real loopback server that wants ``Authorization: Bearer``.

The server answers 401 without the right key and echoes the Authorization header it got (and
the bare key) in the 401 body, and when authorized it echoes the header in an extra member of
the first SSE chunk and in ``/v1/models``: so every "the key is not in X" assertion below
fails if the console stops scrubbing, and the "server saw the header" assertions fail if it
stops sending the key.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pdtui import console
from pdtui.cli import main
from pdtui.console import Request, backend_health, load_test, proxy_health, send
from pdtui.runbook import RunbookReport, write_report

KEY = "pdtui-test-9f8e7d6c5b4a3921"  # no sk-/hf_ shape: only the literal masking catches it
WRONG = "wrong-key-1a2b3c4d5e6f7788"
WORDS = ["Hello", " from", " the", " auth", " server."]
SAMPLE = str(
    Path(__file__).resolve().parents[1] / "pdtui" / "samples" / "deepseek-v3.2-a3-1p1d.toml"
)


@dataclass
class AuthServer:
    url: str
    seen: list[str | None] = field(default_factory=list)  # Authorization of each request


def _app(server: AuthServer) -> Starlette:
    def denied(req: HttpRequest) -> Response | None:
        got = req.headers.get("authorization")
        server.seen.append(got)
        if got == f"Bearer {KEY}":
            return None
        bare = (got or "").removeprefix("Bearer ")
        return JSONResponse(
            {
                "error": {
                    "message": f"Unauthorized; got Authorization: {got}",
                    "type": "auth",
                    "code": 401,
                },
                "received_key": bare,
            },
            status_code=401,
        )

    async def completions(req: HttpRequest) -> Response:
        if (r := denied(req)) is not None:
            return r
        body = await req.json()
        chat = req.url.path.endswith("/chat/completions")
        if not body.get("stream"):
            choice = (
                {"message": {"role": "assistant", "content": "".join(WORDS)}}
                if chat
                else {"text": "".join(WORDS)}
            )
            return JSONResponse(
                {
                    "choices": [{**choice, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 5},
                }
            )

        async def events() -> AsyncIterator[bytes]:
            for i, w in enumerate(WORDS):
                choice = {"delta": {"content": w}} if chat else {"text": w}
                chunk: dict[str, object] = {"choices": [{"index": 0, **choice}]}
                if i == 0:  # a server that echoes the header: raw events must be scrubbed
                    chunk["x_echo"] = req.headers.get("authorization")
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                await asyncio.sleep(0.005)
            last = {
                "choices": [{"index": 0, "text": "", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5},
            }
            yield f"data: {json.dumps(last)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def health(req: HttpRequest) -> Response:
        if (r := denied(req)) is not None:
            return r
        return Response(status_code=200)

    async def models(req: HttpRequest) -> Response:
        if (r := denied(req)) is not None:
            return r
        return JSONResponse({"data": [{"id": "m", "max_model_len": 4096}]})

    async def healthcheck(req: HttpRequest) -> Response:
        if (r := denied(req)) is not None:
            return r
        return JSONResponse({"status": "ok", "prefill_instances": 1, "decode_instances": 1})

    return Starlette(
        routes=[
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/health", health),
            Route("/v1/models", models),
            Route("/healthcheck", healthcheck),
        ]
    )


@pytest.fixture(scope="module")
def auth_server() -> Iterator[AuthServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = AuthServer(url=f"http://127.0.0.1:{port}")
    uv = uvicorn.Server(uvicorn.Config(_app(server), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield server
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("PDTUI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("PDTUI_CONFIG_DIR", str(tmp_path / "config"))


def _req(stream: bool = True, kind: console.Kind = "completion") -> Request:
    return Request(kind, "Who are you?", "m", max_tokens=5, stream=stream)


async def _send(server: AuthServer, req: Request | None = None) -> console.Result:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        return await send(client, server.url, req or _req())


def _dump(res: console.Result) -> str:
    return repr(res) + json.dumps(res.to_dict())


async def test_without_a_key_401_says_to_set_one(auth_server: AuthServer) -> None:
    res = await _send(auth_server)
    assert auth_server.seen[-1] is None  # no header at all without a key
    assert res.status == 401 and not res.ok
    assert res.error is not None
    assert res.error.startswith("HTTP 401: the server wants an API key: set PDTUI_API_KEY")
    assert "Unauthorized" in res.error  # the server's own message is kept


async def test_with_the_key_the_answer_arrives_and_the_key_is_nowhere(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDTUI_API_KEY", KEY)
    pieces: list[str] = []
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        res = await send(client, auth_server.url, _req(), on_text=pieces.append)
    assert auth_server.seen[-1] == f"Bearer {KEY}"
    assert res.ok, res.error
    assert res.status == 200 and res.text == "".join(WORDS) == "".join(pieces)
    assert res.ttft is not None and res.completion_tokens == 5
    # The server echoed the header in the first raw event; it is masked there.
    assert "x_echo" in res.raw_events[0] and "***" in res.raw_events[0]
    assert KEY not in _dump(res)


@pytest.mark.parametrize("kind", ["completion", "chat"])
async def test_chat_and_non_stream_send_the_key(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch, kind: console.Kind
) -> None:
    monkeypatch.setenv("PDTUI_API_KEY", KEY)
    res = await _send(auth_server, _req(stream=False, kind=kind))
    assert res.ok, res.error
    assert res.text == "".join(WORDS)
    assert KEY not in _dump(res)


async def test_openai_api_key_is_the_fallback_and_pdtui_api_key_wins(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert (await _send(auth_server)).ok
    assert auth_server.seen[-1] == f"Bearer {KEY}"
    monkeypatch.setenv("PDTUI_API_KEY", WRONG)
    res = await _send(auth_server)
    assert auth_server.seen[-1] == f"Bearer {WRONG}"
    assert res.status == 401


async def test_a_wrong_key_echoed_by_the_server_is_masked_in_the_error(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDTUI_API_KEY", WRONG)
    res = await _send(auth_server)
    assert auth_server.seen[-1] == f"Bearer {WRONG}"
    assert res.status == 401 and res.error is not None
    assert res.error.startswith("HTTP 401: the server refused the API key from PDTUI_API_KEY")
    assert "***" in res.body  # the echo is there, masked
    assert WRONG not in res.error and WRONG not in res.body
    assert WRONG not in _dump(res)
    # ... and so it is in the pdtui verify report, Markdown and JSON.
    report = RunbookReport(cluster="c", steps=[], started_at=0.0, verification=res.to_dict())
    md, js = write_report(report, Path(os.environ["PDTUI_CONFIG_DIR"]) / "report")
    assert "HTTP 401" in md.read_text() and "HTTP 401" in js.read_text()
    assert WRONG not in md.read_text() and WRONG not in js.read_text()


@pytest.mark.slow
async def test_health_checks_and_load_test_send_the_key(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        denied = await proxy_health(client, auth_server.url)
        assert denied["http_status"] == 401
        assert "set PDTUI_API_KEY" in denied["error"]
        bad = await backend_health(client, auth_server.url)
        assert not bad.ok and bad.error is not None and "HTTP 401" in bad.error

        monkeypatch.setenv("PDTUI_API_KEY", WRONG)
        denied = await proxy_health(client, auth_server.url)
        assert denied["http_status"] == 401 and WRONG not in json.dumps(denied)
        bad = await backend_health(client, auth_server.url)
        assert bad.error is not None and WRONG not in repr(bad)
        assert auth_server.seen[-1] == f"Bearer {WRONG}"

        monkeypatch.setenv("PDTUI_API_KEY", KEY)
        assert (await proxy_health(client, auth_server.url))["status"] == "ok"
        good = await backend_health(client, auth_server.url)
        assert good.ok and good.models == ["m"] and good.max_model_len == 4096
        before = len(auth_server.seen)
        rep = await load_test(client, auth_server.url, _req(), 6, 3)
        assert rep.ok == 6 and rep.errors == 0
        assert auth_server.seen[before:] == [f"Bearer {KEY}"] * 6


def test_curl_refers_to_the_variable_and_works(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = Request("completion", f"my key is {KEY}", "m", max_tokens=5)
    assert "Authorization" not in req.curl(auth_server.url)  # no key, no header
    monkeypatch.setenv("PDTUI_API_KEY", KEY)
    text = req.curl(auth_server.url)
    assert '-H "Authorization: Bearer $PDTUI_API_KEY"' in text
    assert KEY not in text
    monkeypatch.delenv("PDTUI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert '-H "Authorization: Bearer $OPENAI_API_KEY"' in req.curl(auth_server.url)
    if shutil.which("curl") is None or shutil.which("sh") is None:
        pytest.skip("no curl or sh to run the command")
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    run = subprocess.run(
        [
            "sh",
            "-c",
            Request("completion", "hi", "m", max_tokens=5).curl(auth_server.url, "PDTUI_API_KEY"),
        ],
        env={**clean, "PDTUI_API_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert run.returncode == 0, run.stderr
    assert auth_server.seen[-1] == f"Bearer {KEY}"  # the shell expanded the variable
    assert "data: [DONE]" in run.stdout


def test_prompt_json_without_and_with_the_key(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prompt", SAMPLE, "Who are you?", "--url", auth_server.url, "--json"]) == 1
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["status"] == 401 and "Traceback" not in out.err
    assert "the server wants an API key: set PDTUI_API_KEY" in data["error"]

    monkeypatch.setenv("PDTUI_API_KEY", WRONG)
    assert main(["prompt", SAMPLE, "Who are you?", "--url", auth_server.url]) == 1
    out = capsys.readouterr()
    assert auth_server.seen[-1] == f"Bearer {WRONG}"
    assert "error: HTTP 401: the server refused the API key" in out.err
    assert "Unauthorized; got Authorization: Bearer ***" in out.err  # the echoed body, masked
    assert WRONG not in out.out + out.err

    monkeypatch.setenv("PDTUI_API_KEY", KEY)
    assert main(["prompt", SAMPLE, "Who are you?", "--url", auth_server.url, "--json"]) == 0
    out = capsys.readouterr()
    assert auth_server.seen[-1] == f"Bearer {KEY}"
    data = json.loads(out.out)
    assert data["status"] == 200 and data["text"] == "".join(WORDS)
    assert KEY not in out.out + out.err

    assert main(["prompt", SAMPLE, "Who are you?", "--url", auth_server.url]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("".join(WORDS)) and KEY not in out.out + out.err


def test_scrub_masks_the_literal_key_and_secret_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDTUI_API_KEY", KEY)
    assert console.scrub(f"x {KEY} y") == "x *** y"
    assert console.scrub("Authorization: Bearer other-token") == "Authorization: Bearer ***"
    assert console.scrub("Bearer other-token", shapes=False) == "Bearer other-token"
    assert console.scrub(f"{KEY}", "") == KEY  # "" means: no key to mask
    assert console.auth_headers() == {"Authorization": f"Bearer {KEY}"}
    assert console.auth_headers("") == {}

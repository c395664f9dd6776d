"""The prompt console's core (no Textual): send one completion or chat request to the PD
proxy (or any OpenAI-compatible server), stream it, time it, and measure a small load test.

Measurements:

- ``ttft``: seconds from sending the request to the first SSE event that carries text
  (the chat role-only first delta does not count). None for non-streaming requests.
- token counts come from ``usage`` (streaming requests ask for it with
  ``stream_options.include_usage``); an SSE chunk is not a token.
- ``tokens_per_s`` = completion_tokens / (end - first-token time) for streams; for
  non-streaming requests completion_tokens / total time.
- ``itl``: the mean gap between text-carrying chunks after the first.

Errors: an HTTP error keeps the status and the raw body; HTTP 200 with an empty body is an
error too (older proxies answer that way when the decoder failed); a stream that ends before
``data: [DONE]`` or drops mid-way keeps the partial text and reports the error, and so does a
stream with a ``data:`` event that is not a JSON object (it is skipped, and kept in
``raw_events``).

API key: when pdtui's environment has ``PDTUI_API_KEY`` (else ``OPENAI_API_KEY``, which is what
the vllm-ascend proxy forwards), every request carries ``Authorization: Bearer <key>``. The key
never lands in a result: :func:`scrub` masks it in every text the console returns, shows or
saves, and the curl view refers to the variable instead of the value.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shlex
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from pdtui.cluster import Cluster, Node
from pdtui.ssh import SshPool, redact
from pdtui.ssh.remote import is_loopback, target
from pdtui.text import words

Kind = Literal["completion", "chat"]
Via = Literal["direct", "ssh"]

EMPTY_200 = (
    "empty response from the proxy: older proxies hide decoder failures this way "
    "(HTTP 200 with no body); check the decoder's log"
)


class ConsoleError(Exception):
    """A console target that cannot be worked out from the cluster file."""


# --------------------------------------------------------------------------- the API key

#: the environment variables the key is read from, first one set wins
API_KEY_VARS = ("PDTUI_API_KEY", "OPENAI_API_KEY")
MASK = "***"


def api_key_source() -> tuple[str, str] | None:
    """``(variable name, key)`` of the API key in pdtui's environment, or None."""
    for name in API_KEY_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


def api_key() -> str | None:
    """The API key from ``PDTUI_API_KEY``, else ``OPENAI_API_KEY``; None when neither is set."""
    src = api_key_source()
    return src[1] if src else None


def _key(key: str | None) -> str | None:
    """``key`` as given (``""`` means: send none), or the environment's when None."""
    return api_key() if key is None else (key or None)


def http_client(timeout: float | httpx.Timeout = 30.0) -> httpx.AsyncClient:
    """The one way pdtui makes an HTTP client. ``trust_env=False``: the proxy and the backends
    are reached over an SSH forward on 127.0.0.1 or directly on the data plane, never through
    the jump host's ``HTTP_PROXY`` (which, without a ``NO_PROXY``, would swallow them)."""
    return httpx.AsyncClient(timeout=timeout, trust_env=False)


def auth_headers(key: str | None = None) -> dict[str, str]:
    """``{"Authorization": "Bearer <key>"}`` when a key is configured, else ``{}``."""
    k = _key(key)
    return {"Authorization": f"Bearer {k}"} if k else {}


def scrub(text: str, key: str | None = None, *, shapes: bool = True) -> str:
    """``text`` with the API key's value masked wherever it appears (``key``, else the one in
    the environment) and, with ``shapes``, every secret :func:`pdtui.ssh.redact` recognises
    (``Bearer X``, ``api_key=...``, ``sk-...``). The console's one redaction helper; use
    ``shapes=False`` for model output, which only loses the literal key."""
    k = _key(key)
    if k:
        text = text.replace(k, MASK)
    return redact(text) if shapes else text


def _http_error(status: int, detail: str, key: str | None) -> str:
    """``HTTP <status>: <detail>``, with the API key advice for a 401 (already scrubbed)."""
    if status == 401:
        names = " or ".join(API_KEY_VARS)
        advice = (
            f"the server refused the API key from {names}"
            if key
            else f"the server wants an API key: set {names} in pdtui's environment"
        )
        return f"HTTP 401: {advice} ({detail})"
    return f"HTTP {status}: {detail}"


# --------------------------------------------------------------------------- requests


@dataclass
class Request:
    kind: Kind
    prompt: str
    model: str
    max_tokens: int = 100
    temperature: float = 0.0
    stream: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.kind == "chat" else "/v1/completions"

    def body(self) -> dict[str, Any]:
        b: dict[str, Any] = {"model": self.model}
        if self.kind == "chat":
            b["messages"] = [{"role": "user", "content": self.prompt}]
        else:
            b["prompt"] = self.prompt
        b["max_tokens"] = self.max_tokens
        b["temperature"] = self.temperature
        b["stream"] = self.stream
        if self.stream:
            b["stream_options"] = {"include_usage": True}
        b.update(self.extra)
        return b

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + self.path

    def curl(self, base_url: str, key_var: str | None = None) -> str:
        """The request as a shell command ("copy as curl"). With ``key_var`` (default: the
        variable the API key comes from, see :func:`api_key_source`) it sends
        ``-H "Authorization: Bearer $VAR"``: a variable reference, never the key itself."""
        if key_var is None:
            src = api_key_source()
            key_var = src[0] if src else None
        parts = ["curl", "-sS"]
        if self.stream:
            parts.append("-N")
        parts += [self.url(base_url), "-H", "Content-Type: application/json"]
        cmd = " ".join(shlex.quote(p) for p in parts)
        if key_var:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_var):
                raise ValueError(f"not a shell variable name: {key_var!r}")
            cmd += f' -H "Authorization: Bearer ${key_var}"'
        body = json.dumps(self.body(), ensure_ascii=False)
        return f"{cmd} -d {shlex.quote(scrub(body, shapes=False))}"


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    status: int | None
    text: str = ""
    ttft: float | None = None
    total: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_s: float | None = None
    itl: float | None = None
    finish_reason: str | None = None
    raw_events: list[str] = field(default_factory=list)
    body: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def status_line(self) -> str:
        """``TTFT 0.123 s · 45.6 tok/s · 12+100 tokens · HTTP 200``."""
        parts = [
            f"TTFT {self.ttft:.3f} s" if self.ttft is not None else f"total {self.total:.3f} s"
        ]
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:.1f} tok/s")
        if self.prompt_tokens is not None or self.completion_tokens is not None:
            p = "?" if self.prompt_tokens is None else str(self.prompt_tokens)
            c = "?" if self.completion_tokens is None else str(self.completion_tokens)
            parts.append(f"{p}+{c} tokens")
        parts.append("no HTTP response" if self.status is None else f"HTTP {self.status}")
        return " · ".join(parts)


def _error_message(data: Any) -> str | None:
    """The message of ``{"error": {...}}``, ``{"error": "..."}`` or ``{"object": "error"}``."""
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or json.dumps(err))
    if isinstance(err, str):
        return err
    if data.get("object") == "error":
        return str(data.get("message") or json.dumps(data))
    return None


def _choice_text(choice: Any, kind: Kind) -> str:
    if not isinstance(choice, dict):
        return ""
    if kind == "chat":
        part = choice.get("delta") or choice.get("message") or {}
        content = part.get("content") if isinstance(part, dict) else None
        return content if isinstance(content, str) else ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Collector:
    """Accumulates one response's text, usage and timings."""

    def __init__(
        self,
        req: Request,
        res: Result,
        t0: float,
        on_text: Callable[[str], None] | None,
        clock: Callable[[], float],
        key: str | None = None,
    ) -> None:
        self.req, self.res, self.t0 = req, res, t0
        self.on_text, self.clock, self.key = on_text, clock, key
        self.text: list[str] = []
        self.chars = 0  # characters in ``text``
        self.times: list[float] = []
        self.done = False
        self.bad: list[str] = []  # data payloads that were not a JSON object

    def take(self, data: dict[str, Any], now: float | None = None) -> None:
        """One JSON object: a stream chunk or a whole non-stream body."""
        msg = _error_message(data)
        if msg is not None and self.res.error is None:
            self.res.error = msg
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.res.prompt_tokens = _int(usage.get("prompt_tokens"))
            self.res.completion_tokens = _int(usage.get("completion_tokens"))
        choices = data.get("choices")
        if isinstance(choices, list) and choices:
            c = choices[0]
            piece = _choice_text(c, self.req.kind)
            if piece:
                self.text.append(piece)
                self.chars += len(piece)
                if now is not None:
                    self.times.append(now)
                if self.on_text is not None:
                    self.on_text(scrub(piece, self.key or "", shapes=False))
            if isinstance(c, dict) and c.get("finish_reason"):
                self.res.finish_reason = str(c["finish_reason"])

    def event(self, payload: str) -> None:
        now = self.clock()
        self.res.raw_events.append(payload)
        if payload.strip() == "[DONE]":
            self.done = True
            return
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            self.take(data, now)
        else:
            self.bad.append(payload)

    def finish(self, end: float, streamed: bool) -> Result:
        res = self.res
        k = self.key or ""
        res.text = scrub("".join(self.text), k, shapes=False)
        res.raw_events = [scrub(e, k, shapes=False) for e in res.raw_events]
        res.body = scrub(res.body, k)
        if res.error is not None:
            res.error = scrub(res.error, k)
        if res.finish_reason is not None:
            res.finish_reason = scrub(res.finish_reason, k, shapes=False)
        res.total = end - self.t0
        if streamed and self.times:
            first = self.times[0]
            res.ttft = first - self.t0
            if len(self.times) > 1:
                gaps = [b - a for a, b in zip(self.times, self.times[1:], strict=False)]
                res.itl = sum(gaps) / len(gaps)
            if res.completion_tokens and end > first:
                res.tokens_per_s = res.completion_tokens / (end - first)
        elif not streamed and res.completion_tokens and res.total > 0:
            res.tokens_per_s = res.completion_tokens / res.total
        return res


async def send(
    client: httpx.AsyncClient,
    base_url: str,
    req: Request,
    *,
    on_text: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    api_key: str | None = None,
) -> Result:
    """Send ``req`` to ``base_url`` and collect the answer; never raises for HTTP or network
    problems (they land in ``Result.error``). Cancelling the task closes the stream at once.

    ``api_key`` (default: :func:`api_key`, ``""`` for none) goes in ``Authorization: Bearer``;
    the result is scrubbed of it (see :func:`scrub`)."""
    url = req.url(base_url)
    key = _key(api_key)
    res = Result(status=None)
    t0 = clock()
    col = _Collector(req, res, t0, on_text, clock, key)
    saw_sse = False
    deadline = _deadline(client)
    try:
        async with asyncio.timeout(deadline):
            saw_sse = await _exchange(client, url, req, col, key)
    except TimeoutError:
        res.error = (
            f"timed out talking to {url} (no answer within {deadline:g} s)"
            if res.status is None
            else f"no complete answer from {url} within the {deadline:g} s deadline "
            "(the server kept the connection open)"
        )
    except _Overrun as exc:
        res.error = str(exc)
    except httpx.TimeoutException as exc:
        res.error = f"timed out talking to {url} ({type(exc).__name__})"
    except httpx.RemoteProtocolError as exc:
        what = "connection dropped mid-stream" if res.status is not None else "bad response"
        res.error = f"{what} from {url}: {exc or type(exc).__name__}"
    except httpx.TransportError as exc:
        res.error = f"cannot reach {url}: {exc or type(exc).__name__}"
    end = clock()
    if res.error is None and res.status is not None:
        _judge(res, col, saw_sse, key)
    return col.finish(end, streamed=req.stream and saw_sse)


#: A body (non-streamed, or an error) is read up to this many bytes; past it, it is cut.
MAX_BODY = 4 << 20
#: A stream may carry this many characters per requested token, for ``max_tokens`` plus
#: ``TOKEN_MARGIN`` tokens, and ``WIRE_PER_TOKEN`` bytes per token on the wire (JSON, usage,
#: SSE framing) plus ``MAX_BODY``: a server that sends more is broken, and pdtui stops reading.
CHARS_PER_TOKEN = 32
WIRE_PER_TOKEN = 2048
TOKEN_MARGIN = 64


class _Overrun(Exception):
    """The answer passed a cap; the message says which."""


def _deadline(client: httpx.AsyncClient) -> float:
    """The overall deadline of one request: the client's read timeout (600 s without one).
    The read timeout alone restarts on every byte, so a trickle would never end."""
    return client.timeout.read or 600.0


async def _exchange(
    client: httpx.AsyncClient, url: str, req: Request, col: _Collector, key: str | None
) -> bool:
    """POST ``req`` and read its answer into ``col``; True when it was SSE."""
    res = col.res
    async with client.stream("POST", url, json=req.body(), headers=auth_headers(key or "")) as resp:
        res.status = resp.status_code
        if resp.status_code >= 400 or not req.stream:
            res.body = await _read_body(resp, res)
            return False
        return await _read_sse(resp, col)


async def _read_body(resp: httpx.Response, res: Result) -> str:
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf.extend(chunk[: MAX_BODY - len(buf)])
        if len(buf) >= MAX_BODY:
            res.body = buf.decode(errors="replace")
            raise _Overrun(
                f"HTTP {resp.status_code}: the answer's body was cut at "
                f"{MAX_BODY} bytes (the server sent more)"
            )
    return buf.decode(errors="replace")


async def _lines(resp: httpx.Response, budget: int, max_tokens: int) -> AsyncIterator[str]:
    """The answer's lines (``\n`` or ``\r\n``), stopping past ``budget`` bytes."""
    buf = bytearray()
    seen = 0
    async for chunk in resp.aiter_bytes():
        seen += len(chunk)
        if seen > budget:
            raise _Overrun(
                f"the stream was cut at {budget} bytes: more than max_tokens "
                f"{max_tokens} worth (the server kept sending)"
            )
        buf.extend(chunk)
        start = 0
        while (i := buf.find(b"\n", start)) >= 0:
            yield buf[start:i].decode(errors="replace").removesuffix("\r")
            start = i + 1
        del buf[:start]
    if buf:
        yield buf.decode(errors="replace")


async def _read_sse(resp: httpx.Response, col: _Collector) -> bool:
    """Feed each SSE event of a 2xx streamed answer to ``col``; the other lines (not SSE
    fields) become the result's body. True when any ``data:`` line came. Stops (``_Overrun``)
    past ``max_tokens`` worth of text or of bytes."""
    lines: list[str] = []  # non-SSE lines
    data_lines: list[str] = []  # the current SSE event's data lines
    saw_sse = False
    tokens = col.req.max_tokens + TOKEN_MARGIN
    max_chars = tokens * CHARS_PER_TOKEN
    async for line in _lines(resp, MAX_BODY + tokens * WIRE_PER_TOKEN, col.req.max_tokens):
        if line.startswith("data:"):
            saw_sse = True
            data_lines.append(line[5:].removeprefix(" "))
        elif line == "":
            if data_lines:
                col.event("\n".join(data_lines))
                data_lines = []
                if col.chars > max_chars:
                    raise _Overrun(
                        f"the stream was stopped after {max_chars} characters: "
                        f"more than max_tokens {col.req.max_tokens} worth "
                        "(the server kept sending)"
                    )
        elif not line.startswith((":", "event:", "id:", "retry:")):
            lines.append(line)
    if data_lines:
        col.event("\n".join(data_lines))
    col.res.body = "\n".join(lines)
    return saw_sse


def _stream_problems(res: Result, col: _Collector) -> list[str]:
    """What is wrong with a streamed answer that came with HTTP 2xx."""
    problems = []
    if not col.done and not res.finish_reason:
        problems.append("the stream ended before data: [DONE] (the decoder may have failed)")
    if col.bad:
        n = len(col.bad)
        what = "1 SSE event was" if n == 1 else f"{n} SSE events were"
        problems.append(
            f"{what} not a JSON object and skipped, so the answer may be "
            f"missing text; first: {col.bad[0][:80]!r}"
        )
    return problems


def _judge(res: Result, col: _Collector, saw_sse: bool, key: str | None = None) -> None:
    """Decide whether a completed HTTP exchange succeeded, and parse non-SSE bodies."""
    status = res.status or 0
    body = res.body
    if status >= 400:
        msg = None
        with contextlib.suppress(json.JSONDecodeError):
            msg = _error_message(json.loads(body))
        res.error = _http_error(
            status, scrub(msg or body.strip() or "(empty body)", key or ""), key
        )
        return
    if saw_sse:
        problems = _stream_problems(res, col)
        if res.error is None and problems:
            res.error = "; ".join(problems)
        return
    if not body.strip():
        res.error = EMPTY_200
        return
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        res.error = f"HTTP {status}: the answer is not JSON"
        return
    if not isinstance(data, dict):
        res.error = f"HTTP {status}: unexpected JSON answer"
        return
    col.take(data)
    if res.error is None and not isinstance(data.get("choices"), list):
        res.error = f"HTTP {status}: no choices in the answer"


# --------------------------------------------------------------------------- health


@dataclass
class BackendHealth:
    url: str
    health_status: int | None
    models: list[str] = field(default_factory=list)
    max_model_len: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.health_status == 200


def _base(url: str) -> str:
    return (url if "://" in url else f"http://{url}").rstrip("/")


async def proxy_health(
    client: httpx.AsyncClient, base_url: str, api_key: str | None = None
) -> dict[str, Any]:
    """GET ``/healthcheck`` of the proxy: its JSON (``status``, ``prefill_instances``, ...);
    on failure ``{"error": ..., "http_status": code or None}``. It does not probe backends.
    Sends the API key like :func:`send`; the error text is scrubbed of it."""
    url = _base(base_url) + "/healthcheck"
    key = _key(api_key)
    try:
        r = await client.get(url, headers=auth_headers(key or ""))
    except httpx.TransportError as exc:
        return {
            "error": scrub(f"cannot reach {url}: {exc or type(exc).__name__}", key or ""),
            "http_status": None,
        }
    try:
        data = r.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if r.status_code != 200 or not isinstance(data, dict):
        detail = scrub(r.text.strip() or "(empty body)", key or "")
        return {"error": _http_error(r.status_code, detail, key), "http_status": r.status_code}
    return data


async def backend_health(
    client: httpx.AsyncClient, url: str, api_key: str | None = None
) -> BackendHealth:
    """GET ``/health`` and ``/v1/models`` of one vLLM instance (``http://h:p`` or ``h:p``).
    Sends the API key like :func:`send` (vLLM's ``--api-key`` guards ``/v1``); the error text
    is scrubbed of it."""
    base = _base(url)
    out = BackendHealth(url=base, health_status=None)
    key = _key(api_key)
    headers = auth_headers(key or "")
    try:
        h = await client.get(base + "/health", headers=headers)
        out.health_status = h.status_code
        m = await client.get(base + "/v1/models", headers=headers)
    except httpx.TransportError as exc:
        out.error = scrub(f"cannot reach {base}: {exc or type(exc).__name__}", key or "")
        return out
    if m.status_code != 200:
        detail = scrub(m.text.strip(), key or "")[:200]
        out.error = f"/v1/models: {_http_error(m.status_code, detail, key)}"
    else:
        try:
            data = m.json().get("data") or []
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            out.error = "/v1/models: the answer is not the expected JSON"
            return out
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict) and entry.get("id"):
                out.models.append(str(entry["id"]))
                if out.max_model_len is None:
                    out.max_model_len = _int(entry.get("max_model_len"))
    if out.error is None and out.health_status != 200:
        out.error = f"/health: HTTP {out.health_status}"
    return out


@dataclass
class EndpointHealth:
    """One line of :func:`health_report`: the proxy's ``/healthcheck`` or one backend's
    ``/health`` and ``/v1/models``, or why it could not be asked (scrubbed of the key)."""

    name: str
    where: str = ""
    proxy: dict[str, Any] | None = None
    backend: BackendHealth | None = None
    error: str | None = None

    def line(self) -> str:
        if self.error is not None:
            return self.error
        if self.backend is None:
            return f"{self.name} /healthcheck: {words(self.proxy or {}) or 'an empty answer'}"
        h = self.backend
        state = "ok" if h.ok else f"NOT OK: {h.error}"
        return (
            f"{self.name} ({self.where}): /health {h.health_status}, models "
            f"{', '.join(h.models) or '-'}, max_model_len {h.max_model_len}: {state}"
        )


@dataclass
class HealthReport:
    """The proxy and every backend, asked directly (the proxy's own check does not probe
    its backends)."""

    entries: list[EndpointHealth] = field(default_factory=list)

    @property
    def max_model_len(self) -> int | None:
        """The smallest ``max_model_len`` the backends report (a request must fit all)."""
        lens = [
            e.backend.max_model_len
            for e in self.entries
            if e.backend is not None and e.backend.max_model_len is not None
        ]
        return min(lens) if lens else None

    def lines(self) -> list[str]:
        return [e.line() for e in self.entries]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """One row per endpoint: name, where, "ok" or "DOWN", and the detail in words."""
        out = []
        for e in self.entries:
            if e.error is not None or e.backend is None:
                down = e.error is not None or "error" in (e.proxy or {})
                detail = e.error or words(e.proxy or {}) or "an empty answer"
                out.append((e.name, e.where, "DOWN" if down else "ok", detail))
                continue
            h = e.backend
            detail = (
                f"models {', '.join(h.models) or '-'}, max_model_len {h.max_model_len}"
                if h.ok
                else str(h.error)
            )
            out.append((e.name, e.where, "ok" if h.ok else "DOWN", detail))
        return out

    def proxy_down(self) -> bool:
        """The proxy did not answer at all (no HTTP status): it is not running."""
        for e in self.entries:
            if e.name == "proxy" and e.backend is None:
                return e.error is not None or (
                    "error" in (e.proxy or {}) and (e.proxy or {}).get("http_status") is None
                )
        return False

    def backends_down(self) -> list[EndpointHealth]:
        return [
            e
            for e in self.entries
            if e.name != "proxy"
            and (e.error is not None or (e.backend is not None and not e.backend.ok))
        ]


def explain(res: Result, report: HealthReport) -> str | None:
    """Why a request failed, from the health report asked right after it: the proxy is not
    running (a tunnel to a closed port answers "Server disconnected"), or which backend is
    down behind an HTTP 5xx. None when the report shows nothing wrong."""
    if res.status is None and report.proxy_down():
        return "the proxy is not running"
    if res.status is not None and res.status < 500:
        return None
    down = report.backends_down()
    if not down:
        return None
    return "; ".join(
        f"{e.name} ({e.where}) is down: "
        f"{e.error or (e.backend.error if e.backend else '') or 'no answer'}"
        for e in down
    )


async def _proxy_entry(
    client: httpx.AsyncClient, pool: SshPool | None, cluster: Cluster
) -> EndpointHealth:
    try:
        async with reach(pool, cluster) as base:
            return EndpointHealth("proxy", proxy=await proxy_health(client, base))
    except Exception as exc:  # a node problem is a line in the report
        return EndpointHealth("proxy", error=scrub(f"proxy: {exc}"))


async def _backend_entry(
    client: httpx.AsyncClient,
    pool: SshPool | None,
    cluster: Cluster,
    name: str,
    node: Node,
    host: str,
    port: int,
) -> EndpointHealth:
    where = f"{node.name} {host}:{port}"
    try:
        async with reach(pool, cluster, host, port, node=node.name) as base:
            return EndpointHealth(name, where, backend=await backend_health(client, base))
    except Exception as exc:  # a node problem is a line in the report
        return EndpointHealth(name, where, error=scrub(f"{name} ({where}): {exc}"))


async def health_report(
    pool: SshPool | None, cluster: Cluster, *, timeout: float = 10.0
) -> HealthReport:
    """Ask the proxy's ``/healthcheck`` (when the cluster file has a proxy) and every vLLM
    process's ``/health`` and ``/v1/models``, each over SSH through its node, one at a time."""
    report = HealthReport()
    async with http_client(timeout) as client:
        if cluster.spec.proxy is not None:
            report.entries.append(await _proxy_entry(client, pool, cluster))
        for name, node, host, port in backend_endpoints(cluster):
            report.entries.append(
                await _backend_entry(client, pool, cluster, name, node, host, port)
            )
    return report


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
#: extra tokens a chat template adds around one user message (an estimate)
CHAT_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: words plus punctuation marks (``\\w+|[^\\w\\s]``), and at
    least one token per 4 characters. English BPE tokenizers land near this; it is exact for
    the simulator's tokenizer. For exact counts use the server's ``/tokenize``."""
    return max(len(_TOKEN_RE.findall(text)), math.ceil(len(text) / 4))


def precheck(
    req: Request, max_model_len: int | None, count_tokens: Callable[[str], int] = estimate_tokens
) -> str | None:
    """A warning when the request cannot fit (prompt + max_tokens > max_model_len), else
    None. Chat requests add :data:`CHAT_OVERHEAD` tokens for the template."""
    if req.max_tokens < 1:
        return f"max_tokens must be at least 1, got {req.max_tokens}"
    if max_model_len is None:
        return None
    n = count_tokens(req.prompt) + (CHAT_OVERHEAD if req.kind == "chat" else 0)
    if n + req.max_tokens > max_model_len:
        return (
            f"about {n} prompt tokens + max_tokens {req.max_tokens} = {n + req.max_tokens}"
            f" > max_model_len {max_model_len}: the server will answer 400"
        )
    return None


# --------------------------------------------------------------------------- reaching the proxy

_WILDCARDS = {"", "0.0.0.0", "::", "[::]", "*"}


def proxy_endpoint(cluster: Cluster) -> tuple[Node, str, int]:
    """``(node, host as seen from that node, port)`` of the cluster's proxy.

    The host is ``proxy.host`` from the cluster file, except:

    - a wildcard (``0.0.0.0``, ``::``) becomes ``127.0.0.1``: the proxy listens everywhere;
    - on a node whose SSH address is a loopback address (a local node, as the simulator
      writes them) the node's services listen on that address, so it is used instead of the
      data-plane IP.
    """
    spec = cluster.spec.proxy
    if spec is None:
        raise ConsoleError("the cluster file has no [proxy] section; pass --url")
    node = cluster.node(spec.node)
    host = spec.host
    if is_loopback(node.host) and not is_loopback(host):
        host = node.host
    elif host in _WILDCARDS:
        host = "127.0.0.1"
    return node, host, spec.port


def backend_endpoints(cluster: Cluster) -> list[tuple[str, Node, str, int]]:
    """``(process, node, host as seen from the node, port)`` of every vLLM process.

    The host is the node's data-plane IP, or its SSH address when that is a loopback address
    (a local node, as the simulator writes them), like :func:`proxy_endpoint`.
    """
    out = []
    for p in cluster.processes():
        node = cluster.node(p.node)
        host = node.host if is_loopback(node.host) else node.ip
        out.append((p.name, node, host, p.port))
    return out


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@asynccontextmanager
async def reach(
    pool: SshPool | None,
    cluster: Cluster,
    host: str | None = None,
    port: int | None = None,
    *,
    via: Via = "ssh",
    node: str | None = None,
) -> AsyncIterator[str]:
    """Yield a base URL for ``host:port`` (default: the cluster's proxy, see
    :func:`proxy_endpoint`).

    ``via="direct"`` yields ``http://host:port``. ``via="ssh"`` opens a local port forward
    through ``node`` (default: the proxy's node) to ``host:port`` as seen from that node and
    yields ``http://127.0.0.1:<local port>``; the forward is closed on exit.
    """
    if host is None or port is None or (via == "ssh" and node is None):
        p_node, p_host, p_port = proxy_endpoint(cluster)
        host = p_host if host is None else host
        port = p_port if port is None else port
        node = p_node.name if node is None else node
    if via == "direct":
        yield f"http://{_url_host(host)}:{port}"
        return
    if pool is None:
        raise ConsoleError("reaching the proxy over SSH needs an SSH pool")
    assert node is not None
    fwd = await pool.forward(target(cluster.node(node)), host, port)
    try:
        yield f"http://127.0.0.1:{fwd.local_port}"
    finally:
        fwd.close()
        await fwd.wait_closed()


# --------------------------------------------------------------------------- load mode


@dataclass
class LoadReport:
    n: int
    ok: int
    errors: int
    ttft_p50: float | None
    ttft_p90: float | None
    tpot_p50: float | None
    tpot_p90: float | None
    tokens_per_s_total: float | None
    seconds: float
    error_samples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolation percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def tpot(res: Result) -> float | None:
    """Time per output token after the first: (total - ttft) / (completion_tokens - 1)."""
    if res.ttft is None or not res.completion_tokens or res.completion_tokens < 2:
        return None
    return (res.total - res.ttft) / (res.completion_tokens - 1)


async def load_test(
    client: httpx.AsyncClient,
    base_url: str,
    req: Request,
    n_requests: int,
    concurrency: int,
    *,
    on_result: Callable[[Result], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    api_key: str | None = None,
) -> LoadReport:
    """Send ``req`` ``n_requests`` times, at most ``concurrency`` at once, and summarize.
    TTFT and TPOT need a streaming request (they are None otherwise). ``api_key`` as in
    :func:`send`."""
    if n_requests < 1 or concurrency < 1:
        raise ValueError("n_requests and concurrency must be at least 1")
    key = _key(api_key) or ""
    sem = asyncio.Semaphore(concurrency)
    results: list[Result] = []

    async def one() -> None:
        async with sem:
            r = await send(client, base_url, req, clock=clock, api_key=key)
        results.append(r)
        if on_result is not None:
            on_result(r)

    t0 = clock()
    await asyncio.gather(*(one() for _ in range(n_requests)))
    return _load_report(results, n_requests, clock() - t0)


def _load_report(results: list[Result], n_requests: int, seconds: float) -> LoadReport:
    """Percentiles of the good results' TTFT and TPOT, total tokens/s, the first errors."""
    good = [r for r in results if r.ok]
    ttfts = [r.ttft for r in good if r.ttft is not None]
    tpots = [t for t in (tpot(r) for r in good) if t is not None]
    tokens = sum(r.completion_tokens or 0 for r in good)
    return LoadReport(
        n=n_requests,
        ok=len(good),
        errors=len(results) - len(good),
        ttft_p50=percentile(ttfts, 50),
        ttft_p90=percentile(ttfts, 90),
        tpot_p50=percentile(tpots, 50),
        tpot_p90=percentile(tpots, 90),
        tokens_per_s_total=tokens / seconds if seconds > 0 and good else None,
        seconds=seconds,
        error_samples=list(dict.fromkeys(r.error or "" for r in results if not r.ok))[:5],
    )

"""HTTP API of the fake vLLM: OpenAI-compatible routes, ``/metrics``, uvicorn-style access lines."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pdtui.sim import textgen
from pdtui.sim.vllm.args import VERSION
from pdtui.sim.vllm.engine import Engine, GenRequest, RequestError
from pdtui.sim.vllm.log import Log

# --------------------------------------------------------------------------- HTTP


def _err(e: RequestError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status)


def _chat_prompt(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "messages must be a non-empty list")
    lines = []
    for m in messages:
        if not isinstance(m, dict):
            raise RequestError(400, "each message must be an object")
        content = m.get("content", "")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        lines.append(f"{m.get('role', 'user')}: {content}\n")
    return "".join(lines) + "assistant:"


def _completion_prompt(p: Any) -> tuple[str, list[int]]:
    """(prompt text, token ids) of a completion's ``prompt``: one string or one id list."""
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], str | list):
        p = p[0]
    if isinstance(p, str):
        return p, textgen.token_ids(p)
    if isinstance(p, list) and p and all(isinstance(x, int) for x in p):
        return " ".join(str(x) for x in p), [int(x) for x in p]
    if isinstance(p, list):
        raise RequestError(400, "the simulator takes one prompt per request")
    raise RequestError(400, "prompt must be a string or a list of token ids")


def _max_tokens(body: dict[str, Any], chat: bool) -> int | None:
    """The requested completion length (chat prefers ``max_completion_tokens``)."""
    mt = body.get("max_completion_tokens") if chat else None
    if mt is None:
        mt = body.get("max_tokens")
    if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or mt < 1):
        raise RequestError(400, f"max_tokens must be at least 1, got {mt}.")
    return mt


def _fit_context(limit: int, n: int, mt: int | None, chat: bool) -> int:
    """The completion length once prompt + completion fit ``limit`` (vLLM's 400 otherwise)."""
    if n <= limit and (mt is None or n + mt <= limit):
        return limit - n if mt is None else mt
    where = "messages" if chat else "prompt"
    if mt is None or n > limit:
        msg = (
            f"This model's maximum context length is {limit} tokens. However, your "
            f"request has {n} input tokens. Please reduce the length of the input "
            f"{where}."
        )
    else:
        msg = (
            f"This model's maximum context length is {limit} tokens. However, you "
            f"requested {n + mt} tokens ({n} in the {where}, {mt} in the "
            f"completion). Please reduce the length of the {where} or completion."
        )
    raise RequestError(400, msg)


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """The request's seed, KV transfer parameters and streaming options, as GenRequest fields."""
    seed = body.get("seed")
    kvp = body.get("kv_transfer_params")
    so = body.get("stream_options") or {}
    if not isinstance(so, dict):
        so = {}
    return {
        "seed": seed if isinstance(seed, int) else None,
        "kv_params": kvp if isinstance(kvp, dict) else None,
        "stream": bool(body.get("stream")),
        "include_usage": bool(so.get("include_usage")),
        "continuous_usage": bool(so.get("continuous_usage_stats")),
    }


class Api:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cfg = engine.cfg
        self.created = int(time.time())

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/ping", self.health, methods=["GET", "POST"]),
            Route("/load", self.load, methods=["GET"]),
            Route("/version", self.version, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/tokenize", self.tokenize, methods=["POST"]),
            Route("/reset_prefix_cache", self.reset_prefix_cache, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def load(self, request: Request) -> Response:
        return JSONResponse({"server_load": self.engine.running + self.engine.waiting})

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": VERSION})

    async def reset_prefix_cache(self, request: Request) -> Response:
        self.engine.prefix_hashes.clear()
        return Response(status_code=200)

    async def tokenize(self, request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _err(RequestError(400, "invalid JSON body"))
        text = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(text, str):
            try:
                text = _chat_prompt(body.get("messages") if isinstance(body, dict) else None)
            except RequestError as e:
                return _err(e)
        ids = textgen.token_ids(text)
        return JSONResponse(
            {"count": len(ids), "max_model_len": self.cfg.max_model_len, "tokens": ids}
        )

    async def models(self, request: Request) -> Response:
        c = self.cfg
        perm = {
            "id": f"modelperm-{uuid.uuid4().hex}",
            "object": "model_permission",
            "created": self.created,
            "allow_create_engine": False,
            "allow_sampling": True,
            "allow_logprobs": True,
            "allow_search_indices": False,
            "allow_view": True,
            "allow_fine_tuning": False,
            "organization": "*",
            "group": None,
            "is_blocking": False,
        }
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": c.served_name,
                        "object": "model",
                        "created": self.created,
                        "owned_by": "vllm",
                        "root": c.args.model,
                        "parent": None,
                        "max_model_len": c.max_model_len,
                        "permission": [perm],
                    }
                ],
            }
        )

    async def metrics(self, request: Request) -> Response:
        e = self.engine
        m = e.metrics
        lb = f'engine="{self.cfg.dp_rank}",model_name="{self.cfg.served_name}"'
        out: list[str] = []

        def gauge(name: str, help_: str, v: float) -> None:
            out.extend(
                [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name}{{{lb}}} {float(v)}"]
            )

        def counter(name: str, help_: str, v: float) -> None:
            out.extend(
                [
                    f"# HELP {name} {help_}",
                    f"# TYPE {name} counter",
                    f"{name}_total{{{lb}}} {float(v)}",
                ]
            )

        gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.", e.running
        )
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", e.waiting)
        gauge(
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            min(1.0, e.running_tokens / max(1, self.cfg.kv_tokens)),
        )
        counter(
            "vllm:num_preemptions",
            "Cumulative number of preemption from the engine.",
            m.preemptions,
        )
        counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            m.prefix_queries,
        )
        counter(
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens.",
            m.prefix_hits,
        )
        counter("vllm:prompt_tokens", "Number of prefill tokens processed.", m.prompt_tokens)
        counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", m.generation_tokens
        )
        out += [
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
        ]
        for reason in ("stop", "length", "abort"):
            out.append(
                f'vllm:request_success_total{{{lb},finished_reason="{reason}"}} '
                f"{float(m.success[reason])}"
            )
        for h in (m.iter_tokens, m.ttft, m.tpot, m.itl, m.e2e, m.queue, m.prefill, m.decode):
            out += h.render(lb)
        return Response(
            "\n".join(out) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    # ---- completions

    async def completions(self, request: Request) -> Response:
        return await self._handle(request, chat=False)

    async def chat(self, request: Request) -> Response:
        return await self._handle(request, chat=True)

    def _parse(self, request: Request, body: Any, chat: bool) -> GenRequest:
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        model = body.get("model")
        if model is not None and model not in (self.cfg.served_name,):
            raise RequestError(404, f"The model `{model}` does not exist.", "NotFoundError")
        if chat:
            prompt = _chat_prompt(body.get("messages"))
            ids = textgen.token_ids(prompt)
        else:
            prompt, ids = _completion_prompt(body.get("prompt"))
        if int(body.get("n") or 1) != 1:
            raise RequestError(400, "n > 1 is not supported by the simulator")
        mt = _fit_context(self.cfg.max_model_len, len(ids), _max_tokens(body, chat), chat)
        temp = body.get("temperature")
        if temp is not None and not isinstance(temp, int | float):
            raise RequestError(400, "temperature must be a number")
        xid = request.headers.get("x-request-id") or uuid.uuid4().hex
        rid = f"chatcmpl-{xid}" if chat else f"cmpl-{xid}"
        return GenRequest(
            rid=rid,
            internal=rid if chat else f"{rid}-0",
            chat=chat,
            prompt=prompt,
            prompt_ids=ids,
            max_tokens=mt,
            created=int(time.time()),
            model=str(model or self.cfg.served_name),
            **_options(body),
        )

    async def _handle(self, request: Request, chat: bool) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _err(RequestError(400, "Request body is not valid JSON"))
        try:
            req = self._parse(request, body, chat)
        except RequestError as e:
            return _err(e)
        if req.stream:
            return StreamingResponse(self._stream(req, request), media_type="text/event-stream")
        text: list[str] = []
        finish: str | None = None
        extra: dict[str, Any] = {}
        try:
            async for tok, fin, ex in self.engine.run(req, request):
                text.append(tok)
                finish, extra = fin, ex
        except RequestError as e:
            return _err(e)
        content = "".join(text)
        usage = extra.get("usage")
        choice: dict[str, Any]
        if chat:
            choice = {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "reasoning_content": None,
                    "tool_calls": [],
                },
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
            }
        else:
            choice = {
                "index": 0,
                "text": content,
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        return JSONResponse(
            {
                "id": req.rid,
                "object": "chat.completion" if chat else "text_completion",
                "created": req.created,
                "model": req.model,
                "choices": [choice],
                "usage": usage,
                "prompt_logprobs": None,
                "kv_transfer_params": extra.get("kv_transfer_params"),
            }
        )

    async def _stream(self, req: GenRequest, request: Request) -> AsyncIterator[str]:
        obj = "chat.completion.chunk" if req.chat else "text_completion"

        def chunk(choices: list[dict[str, Any]], usage: Any = None) -> str:
            d: dict[str, Any] = {
                "id": req.rid,
                "object": obj,
                "created": req.created,
                "model": req.model,
                "choices": choices,
            }
            if usage is not None:
                d["usage"] = usage
            return f"data: {json.dumps(d)}\n\n"

        usage: Any = None
        first = True
        try:
            async for tok, fin, ex in self.engine.run(req, request):
                usage = ex.get("usage")
                cu = usage if req.continuous_usage else None
                if req.chat:
                    if first:
                        yield chunk(
                            [
                                {
                                    "index": 0,
                                    "delta": {"role": "assistant", "content": ""},
                                    "logprobs": None,
                                    "finish_reason": None,
                                }
                            ],
                            cu,
                        )
                    yield chunk(
                        [
                            {
                                "index": 0,
                                "delta": {"content": tok},
                                "logprobs": None,
                                "finish_reason": fin,
                                "stop_reason": None,
                            }
                        ],
                        cu,
                    )
                else:
                    yield chunk(
                        [
                            {
                                "index": 0,
                                "text": tok,
                                "logprobs": None,
                                "finish_reason": fin,
                                "stop_reason": None,
                            }
                        ],
                        cu,
                    )
                first = False
        except RequestError as e:
            yield f"data: {json.dumps(e.body())}\n\n"
            yield "data: [DONE]\n\n"
            return
        if req.include_usage and usage is not None:
            yield chunk([], usage)
        yield "data: [DONE]\n\n"


class AccessLog:
    """uvicorn-format access lines: ``INFO:     1.2.3.4:5 - "GET /x HTTP/1.1" 200 OK``."""

    def __init__(self, app: ASGIApp, log: Log, who: str) -> None:
        self.app, self.log, self.who = app, log, who

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                client = scope.get("client") or ("-", 0)
                path = scope.get("path", "")
                qs = scope.get("query_string", b"")
                if qs:
                    path += "?" + qs.decode("latin-1")
                try:
                    phrase = HTTPStatus(status).phrase
                except ValueError:
                    phrase = ""
                self.log.raw(
                    self.who,
                    f"INFO:     {client[0]}:{client[1]} - "
                    f'"{scope["method"]} {path} HTTP/'
                    f'{scope.get("http_version", "1.1")}" {status} {phrase}',
                )
            await send(message)

        await self.app(scope, receive, wrapped)


# --------------------------------------------------------------------------- startup

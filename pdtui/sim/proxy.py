"""Fake ``load_balance_proxy_server_example.py`` (vllm-ascend examples/disaggregated_prefill_v1).

Run: ``python -m pdtui.sim.proxy --host H --port P --prefiller-hosts ... --prefiller-ports ...
--decoder-hosts ... --decoder-ports ...``, or copy this file anywhere (for example to the
node's configured script path) and run it with ``python <path>``: it imports only the
standard library, starlette, uvicorn and httpx, never ``pdtui``.

Same CLI as the proxy on vllm-ascend's main branch,
https://github.com/vllm-project/vllm-ascend/blob/main/examples/disaggregated_prefill_v1/load_balance_proxy_server_example.py
(argparse prefix matching, so ``--prefiller-port`` works), same endpoints, same P-then-D flow.
The prefill body gets ``kv_transfer_params`` ``{"do_remote_decode": true, ...}``, ``stream``
false, ``max_tokens`` 1, ``min_tokens`` 1 (``max_completion_tokens`` 1 if present), no
``stream_options``; the ``X-Request-Id`` uuid is reused for the decode leg, which gets the
prefiller's ``kv_transfer_params``; ``Authorization: Bearer $OPENAI_API_KEY`` (``Bearer None``
when unset); HTTP 400 is not retried, other errors are retried ``--max-retries`` times with
``--retry-delay`` * 2^(attempt-1) backoff; an upstream HTTP error before streaming is forwarded
with its status and body (as on main); usage chunks get P's ``cached_tokens``.

Environment read:

- ``PDTUI_SIM_LISTEN``: the address to bind instead of ``--host`` (the node's loopback).
- ``PDTUI_SIM_ADDR_MAP``: ``ip=loopback,...``: how to reach backends given by data-plane IP.
  ``--host`` is also mapped through it when ``PDTUI_SIM_LISTEN`` is unset. A backend whose
  address (after mapping) is outside 127.0.0.0/8 is treated as unreachable (connection
  error): the fake never sends traffic off loopback.
- ``OPENAI_API_KEY``.

Choices made here, where the real proxy's behaviour does not carry over:

- The decoder's byte stream is split into SSE events on blank lines before the per-chunk
  processing (the real proxy parses each received chunk as-is and passes unparsable ones
  through; splitting gives the same result without depending on TCP chunking).
- ``request_num`` in ``/healthcheck`` = requests in flight.
- ``--workers`` > 1 is accepted, logged, and served by one process.
- The "recomputed" re-run (recompute scheduler) is not simulated; such chunks pass through.
- A connection failure after all retries: the error and traceback are printed and the
  client gets ``500 Internal Server Error`` (text/plain), as an unhandled exception would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import logging
import os
import sys
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

logger = logging.getLogger("load_balance_proxy")


# --------------------------------------------------------------------------- addresses


def _addr_map() -> dict[str, str]:
    out: dict[str, str] = {}
    for part in os.environ.get("PDTUI_SIM_ADDR_MAP", "").split(","):
        k, eq, v = part.strip().partition("=")
        if eq and k and v:
            out[k.strip()] = v.strip()
    return out


def map_addr(host: str) -> str | None:
    """Loopback address to use for ``host``; None when it would leave 127.0.0.0/8."""
    target = _addr_map().get(host, host)
    if target == "localhost":
        target = "127.0.0.1"
    return target if target.startswith("127.") else None


# --------------------------------------------------------------------------- CLI


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", type=str, default="localhost")
    p.add_argument("--prefiller-hosts", type=str, nargs="+", default=["localhost"])
    p.add_argument("--prefiller-ports", type=int, nargs="+", default=[8001])
    p.add_argument("--decoder-hosts", type=str, nargs="+", default=["localhost"])
    p.add_argument("--decoder-ports", type=int, nargs="+", default=[8002])
    p.add_argument(
        "--max-retries", type=int, default=3, help="Maximum number of retries for HTTP requests"
    )
    p.add_argument(
        "--retry-delay",
        type=float,
        default=0.001,
        help="Base delay (seconds) for exponential backoff retries",
    )
    p.add_argument("--max-waiting-retries", type=int, default=3)
    p.add_argument("--waiting-retry-interval", type=float, default=10)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--log-level",
        type=str,
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )
    return p


def parse_args(argv: list[str], prog: str | None = None) -> argparse.Namespace:
    args = build_parser(prog).parse_args(argv)
    if len(args.prefiller_hosts) != len(args.prefiller_ports):
        raise ValueError("Number of prefiller hosts must match number of prefiller ports")
    if len(args.decoder_hosts) != len(args.decoder_ports):
        raise ValueError("Number of decoder hosts must match number of decoder ports")
    return args


# --------------------------------------------------------------------------- state


@dataclass
class Backend:
    host: str
    port: int
    active_tokens: float = 0.0
    active_kv_cache: float = 0.0
    requests: int = 0

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        target = map_addr(self.host)
        if target is None:
            raise httpx.ConnectError(
                f"{self.name}: not reachable from the simulator (address outside loopback)"
            )
        return f"http://{target}:{self.port}{path}"


@dataclass
class Proxy:
    args: argparse.Namespace
    prefillers: list[Backend] = field(default_factory=list)
    decoders: list[Backend] = field(default_factory=list)
    in_flight: int = 0
    client: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self.prefillers = [
            Backend(h, int(p))
            for h, p in zip(self.args.prefiller_hosts, self.args.prefiller_ports, strict=True)
        ]
        self.decoders = [
            Backend(h, int(p))
            for h, p in zip(self.args.decoder_hosts, self.args.decoder_ports, strict=True)
        ]

    @property
    def http(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=None, trust_env=False)
        return self.client

    @staticmethod
    def headers(request_id: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY')}",
            "X-Request-Id": request_id,
        }

    def pick_prefiller(self, score: float) -> Backend:
        heap = [
            (b.active_tokens + 0.3 * b.active_kv_cache, i, b) for i, b in enumerate(self.prefillers)
        ]
        heapq.heapify(heap)
        b = heap[0][2]
        b.active_tokens += score
        b.active_kv_cache += score
        return b

    def pick_decoder(self, score: float) -> Backend:
        heap = [(b.active_tokens, i, b) for i, b in enumerate(self.decoders)]
        heapq.heapify(heap)
        b = heap[0][2]
        b.active_tokens += score
        return b

    async def _retrying(self, what: str, make: Any) -> httpx.Response:
        """Call ``await make()`` with the proxy's retry rules; raise the last error."""
        last: Exception | None = None
        for attempt in range(1, max(1, self.args.max_retries) + 1):
            try:
                resp: httpx.Response = await make()
                if resp.status_code >= 400:
                    if not resp.is_stream_consumed:
                        await resp.aread()
                    resp.raise_for_status()
                return resp
            except httpx.HTTPStatusError as e:
                last = e
                if e.response.status_code == 400:
                    raise
                logger.warning("Attempt %d failed for %s: %s", attempt, what, e)
            except (httpx.RequestError, OSError) as e:
                last = e
                logger.warning("Attempt %d failed for %s: %s", attempt, what, e)
            if attempt < self.args.max_retries:
                await asyncio.sleep(self.args.retry_delay * 2 ** (attempt - 1))
        logger.error("All %d attempts failed for %s.", self.args.max_retries, what)
        assert last is not None
        raise last

    # ---- endpoints

    async def completions(self, request: Request) -> Response:
        return await self._handle(request, "/v1/completions")

    async def chat(self, request: Request) -> Response:
        return await self._handle(request, "/v1/chat/completions")

    async def _handle(self, request: Request, api: str) -> Response:
        raw = await request.body()
        try:
            req_data = json.loads(raw)
            if not isinstance(req_data, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as e:
            return self._unhandled(api, e)
        length = len(raw)
        p_score = (length / 4) * 0.0345 + 120.0745
        d_score = float(length)
        request_id = str(uuid.uuid4())
        self.in_flight += 1
        released = False
        prefiller = self.pick_prefiller(p_score)

        def release_prefill() -> None:
            nonlocal released
            if not released:
                released = True
                prefiller.active_tokens -= p_score
                prefiller.active_kv_cache -= p_score

        decoder: Backend | None = None
        handed_over = False
        try:
            body = dict(req_data)
            body["kv_transfer_params"] = {
                "do_remote_decode": True,
                "do_remote_prefill": False,
                "remote_engine_id": None,
                "remote_block_ids": None,
                "remote_host": None,
                "remote_port": None,
            }
            body["stream"] = False
            body["max_tokens"] = 1
            body["min_tokens"] = 1
            if "max_completion_tokens" in body:
                body["max_completion_tokens"] = 1
            body.pop("stream_options", None)
            try:
                presp = await self._retrying(
                    f"prefill {prefiller.name}{api}",
                    lambda: self.http.post(
                        prefiller.url(api), json=body, headers=self.headers(request_id)
                    ),
                )
            except httpx.HTTPStatusError as e:
                return _forward_error(e.response)
            pjson: dict[str, Any] = presp.json()
            kvp = pjson.get("kv_transfer_params")
            cached = _cached_tokens(pjson)
            if isinstance(kvp, dict) and kvp:
                req_data["kv_transfer_params"] = kvp
            decoder = self.pick_decoder(d_score)
            dec = decoder

            async def send_decode() -> httpx.Response:
                r = self.http.build_request(
                    "POST", dec.url(api), json=req_data, headers=self.headers(request_id)
                )
                return await self.http.send(r, stream=True)

            try:
                dresp = await self._retrying(f"decode {decoder.name}{api}", send_decode)
            except httpx.HTTPStatusError as e:
                return _forward_error(e.response)
            stream = bool(req_data.get("stream"))
            media = "text/event-stream; charset=utf-8" if stream else "application/json"
            handed_over = True
            return StreamingResponse(
                self._relay(dresp, cached, stream, release_prefill, decoder, d_score),
                media_type=media,
            )
        except Exception as e:
            return self._unhandled(api, e)
        finally:
            if not handed_over:
                release_prefill()
                if decoder is not None:
                    decoder.active_tokens -= d_score
                self.in_flight -= 1

    def _unhandled(self, api: str, e: Exception) -> Response:
        print(
            f"Error occurred in disagg prefill proxy server - {api.removeprefix('/v1')} endpoint",
            flush=True,
        )
        print(e, flush=True)
        print("".join(traceback.format_exception(e)), flush=True)
        return PlainTextResponse("Internal Server Error", status_code=500)

    async def _relay(
        self,
        resp: httpx.Response,
        cached: int,
        stream: bool,
        release_prefill: Any,
        decoder: Backend,
        d_score: float,
    ) -> AsyncIterator[bytes]:
        try:
            if not stream:
                data = await resp.aread()
                release_prefill()
                yield _fix_body(data, cached)
                return
            buf = b""
            async for chunk in resp.aiter_bytes():
                if chunk:
                    release_prefill()
                buf += chunk
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    yield _fix_event(event, cached)
            if buf.strip():
                yield _fix_event(buf, cached)
        except (httpx.HTTPError, OSError) as e:
            logger.error("Error during streaming from decoder %s: %s", decoder.name, e)
        finally:
            release_prefill()
            decoder.active_tokens -= d_score
            self.in_flight -= 1
            await resp.aclose()

    async def healthcheck(self, request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "prefill_instances": len(self.prefillers),
                "decode_instances": len(self.decoders),
                "request_num": self.in_flight,
            }
        )

    async def models(self, request: Request) -> Response:
        backends = self.prefillers + self.decoders
        if not backends:
            return JSONResponse({"error": "No available backend instances"}, status_code=503)
        failed: list[str] = []
        for b in backends:
            try:
                r = await self.http.get(b.url("/v1/models"), timeout=3.0)
                if r.status_code == 200:
                    return Response(
                        r.content,
                        status_code=200,
                        media_type=r.headers.get("content-type", "application/json"),
                    )
            except (httpx.HTTPError, OSError):
                pass
            failed.append(b.name)
        return JSONResponse(
            {"error": "All backend instances failed to serve /v1/models", "failed": failed},
            status_code=503,
        )

    async def reset_prefix_cache(self, request: Request) -> Response:
        failed: list[str] = []
        for b in self.prefillers + self.decoders:
            try:
                url = b.url("/reset_prefix_cache")
                r = await self.http.post(url, params=dict(request.query_params))
                if r.status_code >= 400:
                    failed.append(url)
            except (httpx.HTTPError, OSError):
                failed.append(f"http://{b.name}/reset_prefix_cache")
        if failed:
            return JSONResponse({"failed": failed}, status_code=500)
        return Response(status_code=200)

    async def instances(self, request: Request) -> Response:
        add = request.url.path.endswith("/add")
        try:
            body = await request.json()
        except ValueError:
            body = {}
        kind = body.get("type") if isinstance(body, dict) else None
        if kind not in ("prefill", "decode"):
            return JSONResponse(
                {
                    "error": f"Instance type '{kind}' is not supported. Only "
                    "'prefill' and 'decode' are allowed."
                },
                status_code=400,
            )
        items = body.get("instances", [])
        if isinstance(items, str):
            items = [items]
        target = self.prefillers if kind == "prefill" else self.decoders
        for item in items:
            host, _, port = str(item).rpartition(":")
            if not host or not port.isdigit():
                continue
            if add:
                asyncio.get_running_loop().create_task(self._probe_and_add(target, host, int(port)))
            else:
                target[:] = [b for b in target if b.name != f"{host}:{int(port)}"]
        verb = "Added" if add else "Removed"
        return JSONResponse(
            {
                "message": f"{verb} {kind} instances: {items}",
                "current_prefill_instances": [b.name for b in self.prefillers],
                "current_decode_instances": [b.name for b in self.decoders],
            }
        )

    async def _probe_and_add(self, target: list[Backend], host: str, port: int) -> None:
        b = Backend(host, port)
        for _ in range(max(1, self.args.max_waiting_retries)):
            try:
                r = await self.http.get(b.url("/v1/models"), timeout=3.0)
                if r.status_code == 200:
                    if all(x.name != b.name for x in target):
                        target.append(b)
                    logger.info("Instance %s is ready and added.", b.name)
                    return
            except (httpx.HTTPError, OSError):
                pass
            await asyncio.sleep(self.args.waiting_retry_interval)
        logger.warning("Instance %s did not become ready; giving up.", b.name)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/healthcheck", self.healthcheck, methods=["GET"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/reset_prefix_cache", self.reset_prefix_cache, methods=["POST"]),
                Route("/instances/add", self.instances, methods=["POST"]),
                Route("/instances/remove", self.instances, methods=["POST"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        if self.client is not None:
            await self.client.aclose()


def _cached_tokens(body: dict[str, Any]) -> int:
    usage = body.get("usage")
    if isinstance(usage, dict):
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            return int(details["cached_tokens"])
    return 0


def _inject(obj: Any, cached: int) -> bool:
    if not isinstance(obj, dict) or not isinstance(obj.get("usage"), dict):
        return False
    details = obj["usage"].get("prompt_tokens_details")
    if not isinstance(details, dict):
        details = {}
    details["cached_tokens"] = cached
    obj["usage"]["prompt_tokens_details"] = details
    return True


def _fix_event(event: bytes, cached: int) -> bytes:
    text = event.strip()
    payload = text[6:] if text.startswith(b"data: ") else text
    try:
        obj = json.loads(payload)
    except ValueError:
        return event + b"\n\n"
    if isinstance(obj, dict) and not obj.get("choices") and _inject(obj, cached):
        return b"data: " + json.dumps(obj).encode() + b"\n\n"
    return event + b"\n\n"


def _fix_body(data: bytes, cached: int) -> bytes:
    try:
        obj = json.loads(data)
    except ValueError:
        return data
    return json.dumps(obj).encode() if _inject(obj, cached) else data


def _forward_error(resp: httpx.Response) -> Response:
    try:
        return JSONResponse(resp.json(), status_code=resp.status_code)
    except ValueError:
        return Response(
            resp.content, status_code=resp.status_code, media_type=resp.headers.get("content-type")
        )


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv), prog)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s - %(name)s - %(levelname)s - %(message)s",
    )
    listen = os.environ.get("PDTUI_SIM_LISTEN") or _addr_map().get(args.host, args.host)
    proxy = Proxy(args)
    if args.workers > 1:
        logger.warning("--workers %d: the simulator serves with one process", args.workers)
    logger.info(
        "Initialized %d prefill clients and %d decode clients.",
        len(proxy.prefillers),
        len(proxy.decoders),
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(proxy.app(), host=listen, port=args.port, log_level=args.log_level.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main(prog=os.path.basename(sys.argv[0])))

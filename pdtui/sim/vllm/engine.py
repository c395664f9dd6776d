"""Engine of the fake vLLM: request slots, prefix cache, metrics, the PD KV hand-off over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from pdtui.sim import textgen
from pdtui.sim.vllm.config import Config, faults_of_ip, find_fault, is_loopback, load_node, map_addr
from pdtui.sim.vllm.log import Log

_TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
_ITL_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
_E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
_TOK_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class Histogram:
    def __init__(self, name: str, help_: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_, buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self.count += 1
        self.sum += v
        for i, b in enumerate(self.buckets):
            if v <= b:
                self.counts[i] += 1

    def render(self, labels: str) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for b, c in zip(self.buckets, self.counts, strict=True):
            out.append(f'{self.name}_bucket{{{labels},le="{float(b)}"}} {float(c)}')
        out.append(f'{self.name}_bucket{{{labels},le="+Inf"}} {float(self.count)}')
        out.append(f"{self.name}_count{{{labels}}} {float(self.count)}")
        out.append(f"{self.name}_sum{{{labels}}} {self.sum}")
        return out


class Metrics:
    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.preemptions = 0
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            _TTFT_BUCKETS,
        )
        self.itl = Histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            _ITL_BUCKETS,
        )
        self.tpot = Histogram(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            _ITL_BUCKETS,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            _E2E_BUCKETS,
        )
        self.queue = Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            _E2E_BUCKETS,
        )
        self.prefill = Histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            _E2E_BUCKETS,
        )
        self.decode = Histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            _E2E_BUCKETS,
        )
        self.iter_tokens = Histogram(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            _TOK_BUCKETS,
        )


# --------------------------------------------------------------------------- engine


class RequestError(Exception):
    def __init__(self, status: int, message: str, type_: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": None,
                "code": self.status,
            }
        }


@dataclass
class GenRequest:
    rid: str  # response id: cmpl-X / chatcmpl-X
    internal: str  # engine request id: cmpl-X-0 / chatcmpl-X
    chat: bool
    prompt: str
    prompt_ids: list[int]
    max_tokens: int | None
    seed: int | None
    kv_params: dict[str, Any] | None
    created: int
    model: str
    stream: bool
    include_usage: bool
    continuous_usage: bool
    start: float = field(default_factory=time.monotonic)


class Engine:
    def __init__(self, cfg: Config, log: Log) -> None:
        self.cfg = cfg
        self.log = log
        self.metrics = Metrics()
        self.slots = asyncio.Semaphore(max(1, cfg.args.int_("max-num-seqs", 256)))
        self.running = 0
        self.waiting = 0
        self.running_tokens = 0
        self.kv_store: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.kv_fetches_served = 0
        self.kv_fetches_done = 0
        self.prefix_hashes: set[str] = set()
        self.block_counter = itertools.count(1)
        self.linked: set[str] = set()
        self.interval_prompt = 0
        self.interval_gen = 0
        self.interval_queries = 0
        self.interval_hits = 0
        self.last_log = time.monotonic()
        self.ranktable: dict[str, Any] | None = None

    # ---- time

    async def sleep(self, seconds: float) -> None:
        d = seconds * self.cfg.speed
        if d > 0:
            await asyncio.sleep(d)

    # ---- stats

    def log_stats(self) -> None:
        now = time.monotonic()
        dt = max(now - self.last_log, 1e-6)
        q = self.interval_queries
        hit = 100.0 * self.interval_hits / q if q else 0.0
        usage = 100.0 * min(1.0, self.running_tokens / max(1, self.cfg.kv_tokens))
        self.log.line(
            self.cfg.api_name,
            "INFO",
            "loggers.py:123",
            f"Engine {self.cfg.dp_rank:03d}: Avg prompt throughput: "
            f"{self.interval_prompt / dt:.1f} tokens/s, Avg generation throughput: "
            f"{self.interval_gen / dt:.1f} tokens/s, Running: {self.running} reqs, "
            f"Waiting: {self.waiting} reqs, GPU KV cache usage: {usage:.1f}%, "
            f"Prefix cache hit rate: {hit:.1f}%",
        )
        self.interval_prompt = self.interval_gen = 0
        self.interval_queries = self.interval_hits = 0
        self.last_log = now

    async def stats_loop(self) -> None:
        interval = max(0.2, 5.0 * self.cfg.speed)
        while True:
            await asyncio.sleep(interval)
            if self.running or self.waiting or self.interval_prompt or self.interval_gen:
                self.log_stats()

    # ---- prefix cache

    def prefix_lookup(self, ids: list[int]) -> int:
        if not self.cfg.prefix_caching:
            return 0
        bs = self.cfg.block_size
        h = hashlib.sha256()
        hits = 0
        counting = True
        for b in range(len(ids) // bs):
            h.update(json.dumps(ids[b * bs : (b + 1) * bs]).encode())
            key = h.hexdigest()
            if counting and key in self.prefix_hashes:
                hits += bs
            else:
                counting = False
                self.prefix_hashes.add(key)
        self.metrics.prefix_queries += len(ids)
        self.metrics.prefix_hits += hits
        self.interval_queries += len(ids)
        self.interval_hits += hits
        return hits

    # ---- KV store (prefiller side)

    def store_kv(self, req: GenRequest, blocks: list[int]) -> None:
        self.kv_store[req.internal] = {
            "prompt": req.prompt,
            "token_ids": req.prompt_ids,
            "blocks": blocks,
            "engine_id": self.cfg.engine_id,
        }
        while len(self.kv_store) > 1000:
            self.kv_store.popitem(last=False)

    async def handle_kv_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                msg = {}
            rid = str(msg.get("request_id", ""))
            entry = self.kv_store.pop(rid, None)
            if entry is None:
                reply: dict[str, Any] = {"ok": False, "error": f"unknown request {rid}"}
                self.log.line(
                    self.cfg.engine_name,
                    "WARNING",
                    self._conn_file(),
                    f"Received KV fetch for unknown request {rid} from {peer[0]}:{peer[1]}",
                )
            else:
                reply = {"ok": True, **entry}
                self.kv_fetches_served += 1
                self.log.line(
                    self.cfg.engine_name,
                    "INFO",
                    self._conn_file(),
                    f"KV cache of request {rid} ({len(entry['blocks'])} blocks) "
                    f"sent to {peer[0]}:{peer[1]}",
                )
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _conn_file(self) -> str:
        return (
            "llmdatadist_c_mgr_connector.py:562" if self.cfg.llmdd else "mooncake_connector.py:1035"
        )

    # ---- KV fetch (decoder side)

    def _garbled(self, req: GenRequest) -> bool:
        """``kv-garbled`` on this node or the prefiller's: the KV arrives, corrupted, and the
        answer is fluent but different (the service stays up, as in real HCCL failures)."""
        host = str((req.kv_params or {}).get("remote_host") or "")
        return (
            find_fault(load_node().faults, "kv-garbled")[0]
            or find_fault(faults_of_ip(host), "kv-garbled")[0]
        )

    async def fetch_kv(self, req: GenRequest, request: Request | None) -> dict[str, Any]:
        """Fetch the prefiller's KV for ``req``; on failure wait a few ticks in
        WAITING_FOR_REMOTE_KVS, log the connector's failure and raise a 500."""
        params = req.kv_params or {}
        host = str(params.get("remote_host") or "")
        try:
            port = int(params.get("remote_port") or 0)
        except (TypeError, ValueError):
            port = 0
        remote_rid = str(params.get("remote_request_id") or req.internal)
        broken, btext = find_fault(load_node().faults, "kv-link-broken")
        if not broken:
            broken, btext = find_fault(faults_of_ip(host), "kv-link-broken")
        worker = self.cfg.worker_name(0)
        comm = f"pd_comm_{self._device_ip(host, True)}_{self._device_ip(self.cfg.ip, False)}"
        if self.cfg.llmdd and f"{host}:{port}" not in self.linked:
            self.log.line(
                worker,
                "INFO",
                "llmdatadist_c_mgr_connector.py:831",
                f"try link with remote, comm id: {comm}",
            )
        if broken:
            error: str | None = "broken"
        else:
            data, error = await self._fetch(host, port, remote_rid, worker, comm)
            if data is not None:
                return data
        await self._wait_for_remote(req, request, hang=broken and btext == "hang")
        reason = self._log_failure(
            req, host, port, worker, comm, timeout=broken and btext == "timeout"
        )
        if error not in (None, "broken", "connect"):
            reason += f" ({error})"
        self.metrics.success["abort"] += 1
        raise RequestError(
            500,
            f"KV transfer from {host}:{port} failed for request {req.internal}: {reason}",
            "InternalServerError",
        )

    async def _fetch(
        self, host: str, port: int, remote_rid: str, worker: str, comm: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(the prefiller's reply, None) or (None, what went wrong)."""
        target = map_addr(host)
        try:
            if target is None or not port:
                raise OSError("unreachable")
            t0 = time.monotonic()
            reply = await self._ask(target, port, remote_rid)
            self._note_link(host, port, worker, comm, t0)
            if reply.get("ok"):
                self.kv_fetches_done += 1
                return reply, None
            return None, str(reply.get("error", "fetch failed"))
        except (OSError, TimeoutError, json.JSONDecodeError):
            return None, "connect"

    async def _ask(self, target: str, port: int, remote_rid: str) -> dict[str, Any]:
        """One fetch over TCP: a JSON line out, a JSON line back."""
        local = (self.cfg.listen, 0) if is_loopback(self.cfg.listen) else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target, port, local_addr=local), 3.0
        )
        try:
            writer.write(
                (
                    json.dumps(
                        {"op": "fetch", "request_id": remote_rid, "engine_id": self.cfg.engine_id}
                    )
                    + "\n"
                ).encode()
            )
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 10.0)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        reply: dict[str, Any] = json.loads(line) if line else {"ok": False, "error": "closed"}
        return reply

    def _note_link(self, host: str, port: int, worker: str, comm: str, t0: float) -> None:
        """Log the first successful link to ``host:port`` as the connector does."""
        link_key = f"{host}:{port}"
        if link_key in self.linked:
            return
        self.linked.add(link_key)
        if self.cfg.llmdd:
            self.log.line(
                worker,
                "INFO",
                "llmdatadist_c_mgr_connector.py:858",
                f"Linking success, comm id: {comm}",
            )
        else:
            cost = int((time.monotonic() - t0) * 1e6)
            self.log.glog(
                worker,
                "I",
                "ascend_direct_transport.cpp:1119",
                f"Connected to segment: {host}:{port}, cost:{cost} us.",
            )

    async def _wait_for_remote(self, req: GenRequest, request: Request | None, hang: bool) -> None:
        """Sit in WAITING_FOR_REMOTE_KVS for 3 ticks (until the client leaves when ``hang``)."""
        self.waiting += 1
        try:
            self.log_stats()
            tick = 0
            while True:
                self.log.line(
                    self.cfg.engine_name,
                    "DEBUG",
                    "scheduler.py:1285",
                    f"{req.internal} is still in WAITING_FOR_REMOTE_KVS state.",
                )
                tick += 1
                if tick >= 3 and not hang:
                    break
                await asyncio.sleep(max(0.05, 1.0 * self.cfg.speed))
                if request is not None and await request.is_disconnected():
                    break
        finally:
            self.waiting -= 1

    def _log_failure(
        self, req: GenRequest, host: str, port: int, worker: str, comm: str, timeout: bool
    ) -> str:
        """Log the connector's failure lines; the reason for the 500."""
        if self.cfg.llmdd:
            self.log.line(
                worker,
                "ERROR",
                "llmdatadist_c_mgr_connector.py:866",
                f"Linking failed, comm id: {comm}",
            )
            return "Linking failed"
        if timeout:
            self.log.glog(
                worker,
                "E",
                "ascend_direct_transport.cpp:1205",
                "Sync batch data transfer timeout after 33061142969ns",
            )
            self.log.line(
                worker,
                "ERROR",
                "mooncake_connector.py:1197",
                f"Mooncake transfer failed for request {req.internal}",
            )
            return "Mooncake transfer failed"
        self.log.glog(
            worker,
            "E",
            "ascend_direct_transport.cpp:1107",
            f"Failed to connect to target: {host}:{port}, status: 103900",
        )
        self.log.line(
            worker, "ERROR", "mooncake_connector.py:1190", "Mooncake transfer failed, ret: -1"
        )
        return "Mooncake transfer failed, ret: -1"

    def _device_ip(self, host: str, prefill: bool) -> str:
        rt = self.ranktable
        if rt:
            for e in rt.get("prefill_device_list" if prefill else "decode_device_list", []):
                if isinstance(e, dict) and e.get("server_id") == host and e.get("device_ip"):
                    return str(e["device_ip"])
        return host

    # ---- generation

    def kv_transfer_params(self, req: GenRequest, blocks: list[int]) -> dict[str, Any]:
        cfg = self.cfg
        p: dict[str, Any] = {
            "do_remote_prefill": True,
            "do_remote_decode": False,
            "remote_block_ids": blocks if cfg.llmdd else [blocks],
            "remote_engine_id": cfg.engine_id,
            "remote_host": cfg.ip,
            "remote_port": cfg.kv_listen_port,
            "remote_request_id": req.internal,
        }
        if cfg.llmdd:
            p["remote_tp_size"] = str(cfg.tp)
        else:
            p.update(
                {
                    "remote_pcp_size": 1,
                    "remote_dcp_size": 1,
                    "remote_ptp_size": cfg.tp,
                    "last_token_id": req.prompt_ids[-1] if req.prompt_ids else 0,
                    "remote_multi_nodes_meta_mapping": {},
                    "num_prompt_blocks": len(blocks),
                    "remote_block_size": cfg.block_size,
                }
            )
        return p

    def _hand_off(self, req: GenRequest) -> dict[str, Any]:
        """Keep the prompt's KV blocks for the decoder; the kv_transfer_params to return."""
        cfg = self.cfg
        nb = max(1, math.ceil(len(req.prompt_ids) / cfg.block_size))
        blocks = [next(self.block_counter) for _ in range(nb)]
        self.store_kv(req, blocks)
        kvp = self.kv_transfer_params(req, blocks)
        if not cfg.llmdd:
            self.log.line(
                cfg.worker_name(0),
                "INFO",
                "mooncake_connector.py:1012",
                f"Delaying free of {nb} blocks for request {req.internal}",
            )
        return kvp

    async def run(
        self, req: GenRequest, request: Request | None
    ) -> AsyncIterator[tuple[str, str | None, dict[str, Any]]]:
        """Yield (token text, finish reason or None, extra) per token; extra on the last one
        carries ``usage`` and ``kv_transfer_params``."""
        cfg = self.cfg
        m = self.metrics
        params = req.kv_params or {}
        remote_decode = bool(params.get("do_remote_decode")) and cfg.producer
        remote_prefill = bool(params.get("do_remote_prefill")) and cfg.consumer
        self.waiting += 1
        queued_at = time.monotonic()
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        n_prompt = len(req.prompt_ids)
        self.running_tokens += n_prompt
        n_out = 0
        try:
            m.queue.observe(time.monotonic() - queued_at)
            t_prefill = time.monotonic()
            cached = 0
            if remote_prefill:
                self.running -= 1
                try:
                    data = await self.fetch_kv(req, request)
                finally:
                    self.running += 1
                if data.get("token_ids") != req.prompt_ids:
                    self.log.line(
                        cfg.engine_name,
                        "WARNING",
                        "scheduler.py:1301",
                        f"Remote KV of {req.internal} does not match its prompt",
                    )
            else:
                cached = self.prefix_lookup(req.prompt_ids)
                await self.sleep(0.0002 * max(0, n_prompt - cached))
            m.prompt_tokens += n_prompt
            self.interval_prompt += n_prompt
            m.iter_tokens.observe(n_prompt)
            m.prefill.observe(time.monotonic() - t_prefill)
            max_tokens = 1 if remote_decode else req.max_tokens
            prompt = (
                req.prompt + "\x00garbled" if remote_prefill and self._garbled(req) else req.prompt
            )
            tokens, finish = textgen.reply(prompt, max_tokens, req.seed)
            first_at = time.monotonic()
            last = first_at
            for i, tok in enumerate(tokens):
                if i:
                    await self.sleep(0.02)
                elif req.chat:
                    tok = tok.lstrip()
                now = time.monotonic()
                if i == 0:
                    m.ttft.observe(now - req.start)
                    first_at = now
                else:
                    m.itl.observe(now - last)
                last = now
                n_out += 1
                self.running_tokens += 1
                m.generation_tokens += 1
                self.interval_gen += 1
                extra: dict[str, Any] = {}
                done = i == len(tokens) - 1
                usage = {
                    "prompt_tokens": n_prompt,
                    "total_tokens": n_prompt + n_out,
                    "completion_tokens": n_out,
                    "prompt_tokens_details": (
                        {"cached_tokens": cached}
                        if cfg.args.flag("enable-prompt-tokens-details")
                        else None
                    ),
                }
                extra["usage"] = usage
                if done:
                    extra["kv_transfer_params"] = self._hand_off(req) if remote_decode else None
                    m.success[finish] += 1
                    m.e2e.observe(time.monotonic() - req.start)
                    m.decode.observe(time.monotonic() - first_at)
                    if n_out > 1:
                        m.tpot.observe((time.monotonic() - first_at) / (n_out - 1))
                yield tok, (finish if done else None), extra
        finally:
            self.running -= 1
            self.running_tokens -= n_prompt + n_out
            self.slots.release()

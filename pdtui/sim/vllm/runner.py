"""Start-up, serving and shutdown of the fake vLLM, with the real one's log lines and failures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from pdtui.sim import textgen
from pdtui.sim.vllm.api import AccessLog, Api
from pdtui.sim.vllm.args import VERSION, parse_command
from pdtui.sim.vllm.config import Config, find_fault, make_config
from pdtui.sim.vllm.crashes import crash_lines, plog_lines
from pdtui.sim.vllm.engine import Engine
from pdtui.sim.vllm.log import Log


class Fatal(Exception):
    """Startup failed; the output was printed."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # we install our own handlers


def _traceback(log: Log, who: str, frames: list[tuple[str, int, str, str]], last: str) -> None:
    lines = ["Traceback (most recent call last):"]
    for f, ln, fn, code in frames:
        lines.append(f'  File "{f}", line {ln}, in {fn}')
        if code:
            lines.append(f"    {code}")
    lines.append(last)
    log.raw(who, "\n".join(lines), err=True)


_SITE = "/usr/local/python3.11.13/lib/python3.11/site-packages"


class Runner:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.log = Log(cfg.pid)
        self.engine = Engine(cfg, self.log)
        self.stop = asyncio.Event()
        self.server: _Server | None = None

    async def wait(self, seconds: float, scaled: bool = True) -> None:
        d = seconds * self.cfg.speed if scaled else seconds
        if d <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), d)

    def _hccn_conf_check(self) -> None:
        """In a container without ``/etc/hccn.conf`` vLLM starts, but HCCL cannot read the
        device IPs: it says so only in its plog (vllm-ascend issue #7711)."""
        if os.environ.get("PDTUI_SIM_IN_CONTAINER") and not os.path.exists("/etc/hccn.conf"):
            for where, msg in plog_lines("device-ip", self.cfg):
                self.log.plog("HCCL", "ERROR", where, msg)

    def _crash_check(self, stage: str) -> None:
        on, text = find_fault(self.cfg.faults, "crash-on-start")
        if not on:
            return
        kind = (text or "").strip()
        want = {"api-died": "api", "oom": "kv"}.get(kind, "weights")
        if stage != want:
            return
        who, lines = crash_lines(kind, self.cfg)
        c, L = self.cfg, self.log
        for where, msg in plog_lines(kind, c):
            L.plog("HCCL", "ERROR", where, msg)
        if who == "api":
            L.line(c.api_name, "ERROR", "launcher.py:115", lines[0], err=True)
            L.raw(c.api_name, lines[0], err=True)
        elif who == "engine":
            L.line(c.engine_name, "ERROR", "core.py:711", lines[0], err=True)
            L.raw(
                c.api_name,
                "vllm.v1.engine.exceptions.EngineDeadError: EngineCore "
                "encountered an issue. See stack trace (above) for the root "
                "cause.",
                err=True,
            )
        else:
            src = c.engine_name if who == "engine-oom" else who
            if who == "engine-oom":
                L.line(
                    src, "INFO", "kv_cache_utils.py:1087", "Available KV cache memory: -0.87 GiB"
                )
            L.line(src, "ERROR", "core.py:708", "EngineCore failed to start.", err=True)
            _traceback(
                L,
                src,
                [
                    (
                        f"{_SITE}/vllm/v1/engine/core.py",
                        699,
                        "run_engine_core",
                        "engine_core = EngineCoreProc(*args, **kwargs)",
                    ),
                    (
                        f"{_SITE}/vllm/v1/engine/core.py",
                        498,
                        "__init__",
                        "super().__init__(vllm_config, executor_class, log_stats,",
                    ),
                ],
                lines[0],
            )
            for extra in lines[1:]:
                L.raw(src, extra, err=True)
            L.raw(
                c.api_name,
                "RuntimeError: Engine core initialization failed. See root "
                "cause above. Failed core proc(s): {}",
                err=True,
            )
        raise Fatal(kind)

    def _ranktable(self, w0: str) -> None:
        c, L = self.cfg, self.log
        frames = [
            (
                f"{_SITE}/vllm_ascend/distributed/llmdatadist_c_mgr_connector.py",
                364,
                "__init__",
                "self.local_dev_info = self.read_agent_metadata(global_rank_table)",
            )
        ]
        path = os.environ.get("DISAGGREGATED_PREFILL_RANK_TABLE_PATH")

        def die(last: str) -> None:
            L.line(
                w0, "ERROR", "multiproc_executor.py:597", "WorkerProc failed to start.", err=True
            )
            _traceback(L, w0, frames, last)
            L.line(c.engine_name, "ERROR", "core.py:708", "EngineCore failed to start.", err=True)
            L.raw(
                c.api_name,
                "RuntimeError: Engine core initialization failed. See root "
                "cause above. Failed core proc(s): {}",
                err=True,
            )
            raise Fatal("ranktable")

        if not path:
            frames[0] = (
                frames[0][0],
                339,
                "__init__",
                "assert envs_ascend.DISAGGREGATED_PREFILL_RANK_TABLE_PATH is not None, "
                '"Please set path of rank_table to env variable '
                'DISAGGREGATED_PREFILL_RANK_TABLE_PATH"',
            )
            die(
                "AssertionError: Please set path of rank_table to env variable "
                "DISAGGREGATED_PREFILL_RANK_TABLE_PATH"
            )
            return
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            die(f"{type(e).__name__}: [Errno {e.errno}] {e.strerror}: {path!r}")
            return
        try:
            table = json.loads(text)
        except json.JSONDecodeError as e:
            die(f"json.decoder.JSONDecodeError: {e}")
            return
        if not isinstance(table, dict):
            die("AttributeError: 'list' object has no attribute 'get'")
            return
        self.engine.ranktable = table
        key = "prefill_device_list" if c.role == "kv_producer" else "decode_device_list"
        entries = [
            e for e in table.get(key, []) if isinstance(e, dict) and str(e.get("server_id")) == c.ip
        ]
        vis = os.environ.get("ASCEND_RT_VISIBLE_DEVICES")
        if vis:
            allowed = {v.strip() for v in vis.split(",")}
            entries = [e for e in entries if str(e.get("device_id")) in allowed]
        for rank in range(c.tp):
            if rank >= len(entries):
                die(
                    f"AssertionError: Can't read the target server_id {c.ip} and device_rank "
                    f"{rank} from rank table"
                )
        L.line(
            w0,
            "INFO",
            "llmdatadist_c_mgr_connector.py:371",
            f"LLMDataDistCMgrConnectorWorker: local device info: server_id {c.ip}, "
            f"device_id {entries[0].get('device_id')}, device_ip "
            f"{entries[0].get('device_ip')}, cluster_id {entries[0].get('cluster_id')}",
        )

    def _bind_http(self) -> socket.socket:
        c, L = self.cfg, self.log
        on, val = find_fault(c.faults, "port-in-use")
        busy = on and (val is None or val == str(c.port))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            if busy:
                raise OSError(98, "Address already in use")
            sock.bind((c.listen, c.port))
        except OSError as e:
            sock.close()
            _traceback(
                L,
                c.api_name,
                [
                    (
                        f"{_SITE}/vllm/entrypoints/openai/api_server.py",
                        1953,
                        "run_server",
                        "listen_address, sock = setup_server(args)",
                    ),
                    (
                        f"{_SITE}/vllm/entrypoints/openai/api_server.py",
                        1915,
                        "setup_server",
                        "sock = create_server_socket(sock_addr)",
                    ),
                    (
                        f"{_SITE}/vllm/entrypoints/openai/api_server.py",
                        1872,
                        "create_server_socket",
                        "sock.bind(addr)",
                    ),
                ],
                f"OSError: [Errno {e.errno}] {e.strerror}",
            )
            raise Fatal("port") from None
        sock.set_inheritable(False)
        return sock

    async def _start_kv(self) -> asyncio.Server | None:
        c, L = self.cfg, self.log
        if not c.producer:
            return None
        on, val = find_fault(c.faults, "port-in-use")
        port = c.kv_listen_port
        try:
            if on and val == str(port):
                raise OSError(98, "Address already in use")
            return await asyncio.start_server(
                self.engine.handle_kv_conn, c.listen, port, reuse_address=True
            )
        except OSError:
            w0 = c.worker_name(0)
            L.line(
                w0, "ERROR", "multiproc_executor.py:597", "WorkerProc failed to start.", err=True
            )
            _traceback(
                L,
                w0,
                [
                    (f"{_SITE}/zmq/sugar/socket.py", 311, "bind", "super().bind(addr)"),
                    ("zmq/backend/cython/_zmq.py", 1009, "zmq.backend.cython._zmq.Socket.bind", ""),
                ],
                f"zmq.error.ZMQError: Address already in use (addr='tcp://{c.ip}:{port}')",
            )
            L.raw(
                c.api_name,
                "RuntimeError: Engine core initialization failed. See root "
                "cause above. Failed core proc(s): {}",
                err=True,
            )
            raise Fatal("kv-port") from None

    async def startup(self) -> tuple[socket.socket, asyncio.Server | None] | None:
        c, L = self.cfg, self.log
        api, eng = c.api_name, c.engine_name
        L.line(api, "INFO", "api_server.py:1839", f"vLLM API server version {VERSION}")
        L.line(api, "INFO", "utils.py:233", f"non-default args: {self._non_default()}")
        sock = self._bind_http()
        await self.wait(0.15)
        L.line(api, "INFO", "model.py:547", "Resolved architecture: DeepseekV3ForCausalLM")
        L.line(api, "INFO", "model.py:1510", f"Using max model len {c.max_model_len}")
        L.line(
            api,
            "INFO",
            "scheduler.py:205",
            f"Chunked prefill is enabled with max_num_batched_tokens="
            f"{c.args.int_('max-num-batched-tokens', 8192)}.",
        )
        self._crash_check("api")
        await self.wait(0.1)
        L.line(eng, "INFO", "core.py:644", "Waiting for init message from front-end.")
        L.line(
            eng,
            "INFO",
            "core.py:77",
            f"Initializing a V1 LLM engine (v{VERSION}) with config: model='{c.args.model}', "
            f"speculative_config=None, tokenizer='{c.args.model}', "
            f"max_seq_len={c.max_model_len}, tensor_parallel_size={c.tp}, "
            f"pipeline_parallel_size={c.pp}, quantization={c.args.get('quantization')}, "
            f"enforce_eager={c.args.flag('enforce-eager')}, device_config=npu, "
            f"seed={c.args.int_('seed', 0)}, served_model_name={c.served_name}, "
            f"enable_prefix_caching={c.prefix_caching}",
        )
        await self.wait(0.2)
        if self.stop.is_set():
            return None
        ws = c.tp * c.pp
        for r in range(c.tp):
            L.line(
                c.worker_name(r),
                "INFO",
                "parallel_state.py:1208",
                f"rank {r} in world size {ws} is assigned as DP rank {c.dp_rank}, "
                f"PP rank 0, TP rank {r}, EP rank {r if c.ep else 0}",
            )
        w0 = c.worker_name(0)
        if c.connector:
            L.line(
                w0,
                "INFO",
                "factory.py:51",
                f"Creating v1 connector with name: {c.connector} and engine_id: {c.engine_id}",
            )
            if c.llmdd:
                self._ranktable(w0)
        kv_server = await self._start_kv()
        if kv_server is not None:
            if c.llmdd:
                L.line(
                    w0,
                    "INFO",
                    "llmdatadist_c_mgr_connector.py:405",
                    f"LLMDataDistCMgrConnectorWorker: listening on tcp://{c.ip}:{c.kv_listen_port}",
                )
            else:
                L.line(
                    w0,
                    "INFO",
                    "mooncake_connector.py:873",
                    f"Mooncake Transfer Engine initialized at {c.ip}:{c.kv_listen_port}",
                )
        L.line(w0, "INFO", "weight_utils.py:455", "Using model weights format ['*.safetensors']")
        t0 = time.monotonic()
        if not await self._load_shards(w0, t0):
            return None
        L.line(
            w0,
            "INFO",
            "default_loader.py:267",
            f"Loading weights took {time.monotonic() - t0:.2f} seconds",
        )
        gb = 8 + (textgen.seed_for(c.args.model + "gb") % 3200) / 100
        L.line(w0, "INFO", "model_runner_v1.py:2705", f"Loading model weights took {gb:.4f} GB")
        self._crash_check("weights")
        self._hccn_conf_check()
        total = 65464696832 if c.soc == "A3" else 31662800896
        util = c.args.float_("gpu-memory-utilization", 0.9)
        avail = int(total * util - gb * 1e9 * 1.07)
        L.line(
            w0,
            "INFO",
            "worker_v1.py:256",
            f"Available memory: {max(avail, 0)}, total memory: {total}",
        )
        await self.wait(0.4)
        self._crash_check("kv")
        L.line(eng, "INFO", "kv_cache_utils.py:1087", f"GPU KV cache size: {c.kv_tokens:,} tokens")
        L.line(
            eng,
            "INFO",
            "kv_cache_utils.py:1091",
            f"Maximum concurrency for {c.max_model_len:,} tokens per request: "
            f"{c.kv_tokens / c.max_model_len:.2f}x",
        )
        if not c.args.flag("enforce-eager"):
            await self.wait(0.5)
            L.line(
                w0,
                "INFO",
                "model_runner_v1.py:3487",
                f"Graph capturing finished in {max(1, round(5 * c.speed))} secs, took "
                f"{0.35 + (c.tp % 4) * 0.2:.2f} GiB",
            )
        L.line(
            eng,
            "INFO",
            "core.py:210",
            f"init engine (profile, create kv cache, warmup "
            f"model) took {time.monotonic() - t0 + 0.8:.2f} seconds",
        )
        if self.stop.is_set():
            return None
        await self.wait(0.15)
        L.line(
            api,
            "INFO",
            "api_server.py:1880",
            f"Starting vLLM API server 0 on http://{c.display_host}:{c.port}",
        )
        L.line(api, "INFO", "launcher.py:36", "Available routes are:")
        routes = [
            ("/openapi.json", "HEAD, GET"),
            ("/docs", "HEAD, GET"),
            ("/docs/oauth2-redirect", "HEAD, GET"),
            ("/redoc", "HEAD, GET"),
            ("/health", "GET"),
            ("/load", "GET"),
            ("/ping", "POST"),
            ("/ping", "GET"),
            ("/tokenize", "POST"),
            ("/detokenize", "POST"),
            ("/v1/models", "GET"),
            ("/version", "GET"),
            ("/v1/chat/completions", "POST"),
            ("/v1/completions", "POST"),
            ("/reset_prefix_cache", "POST"),
            ("/metrics", "GET"),
        ]
        for path, methods in routes:
            L.line(api, "INFO", "launcher.py:44", f"Route: {path}, Methods: {methods}")
        return sock, kv_server

    async def _load_shards(self, w0: str, t0: float) -> bool:
        """The checkpoint-shard progress lines (``slow-start`` adds its seconds); False when
        stopped meanwhile."""
        c = self.cfg
        shards = 3 + textgen.seed_for(c.args.model) % 6
        _, slow = find_fault(c.faults, "slow-start")
        try:
            extra = float(slow) if slow else 0.0
        except ValueError:
            extra = 0.0
        for s in range(shards + 1):
            if s:
                await self.wait(1.2 / shards)
                await self.wait(extra / shards, scaled=False)
                if self.stop.is_set():
                    return False
            el = time.monotonic() - t0
            rate = f"00:00, {el / s:.2f}s/it" if s else "?, ?it/s"
            self.log.raw(
                w0,
                f"Loading safetensors checkpoint shards: {100 * s // shards:3d}% "
                f"Completed | {s}/{shards} [{int(el) // 60:02d}:"
                f"{int(el) % 60:02d}<{rate}]",
            )
        return True

    def _non_default(self) -> str:
        d: dict[str, Any] = {"model_tag": self.cfg.args.model}
        for k, v in self.cfg.args.opts.items():
            d[k.replace("-", "_")] = v
        return repr(d)

    def on_signal(self) -> None:
        if self.stop.is_set():
            return
        self.stop.set()
        if self.server is not None:
            self.log.line(
                self.cfg.api_name, "INFO", "launcher.py:99", "Shutting down FastAPI HTTP server."
            )
            self.server.should_exit = True

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.on_signal)
        c, L = self.cfg, self.log
        try:
            started = await self.startup()
        except Fatal:
            return 1
        if started is None:
            L.line(c.engine_name, "INFO", "core.py:720", "EngineCore exiting.")
            return 0
        sock, kv_server = started
        app = Starlette(routes=Api(self.engine).routes())
        asgi = AccessLog(app, L, c.api_name)
        config = uvicorn.Config(
            asgi,
            log_config=None,
            access_log=False,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self.server = _Server(config)
        L.raw(c.api_name, f"INFO:     Started server process [{c.pid}]")
        L.raw(c.api_name, "INFO:     Waiting for application startup.")
        serve = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started and not serve.done():
            await asyncio.sleep(0.01)
        if self.server.started:
            L.raw(c.api_name, "INFO:     Application startup complete.")
        stats = asyncio.create_task(self.engine.stats_loop())
        try:
            await serve
        finally:
            stats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stats
            if kv_server is not None:
                kv_server.close()
        L.raw(c.api_name, "INFO:     Shutting down")
        L.raw(c.api_name, "INFO:     Waiting for application shutdown.")
        L.raw(c.api_name, "INFO:     Application shutdown complete.")
        L.raw(c.api_name, f"INFO:     Finished server process [{c.pid}]")
        return 0


def main(argv: list[str] | None = None) -> int:
    """``vllm --version`` or ``vllm serve MODEL [flags...]``; the exit code."""
    args = parse_command(list(sys.argv[1:] if argv is None else argv))
    if isinstance(args, int):
        return args
    return asyncio.run(Runner(make_config(args)).main())

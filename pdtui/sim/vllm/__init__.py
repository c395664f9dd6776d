"""Fake ``vllm serve`` for the simulator: real HTTP API, real log lines, PD KV hand-off over TCP.

Run: ``python -m pdtui.sim.vllm serve MODEL [flags...]`` (also ``vllm --version``).

Environment read:

- ``PDTUI_SIM_LISTEN``: address to bind the HTTP and KV listeners (the node's loopback
  address); else the ``--host`` value (``0.0.0.0`` when not given).
- ``PDTUI_SIM_VLLM_SPEED``: time factor for every simulated delay (start-up ~3 s at 1, the
  default; 0 = instant; 2 = twice as slow).
- ``PDTUI_SIM_STATE`` / ``PDTUI_SIM_NODE``: simulator state and node, for the node's
  faults, IP and SoC (ignored when unset or unreadable).
- ``PDTUI_SIM_NODE_IP``: the node's IP when neither ``VLLM_HOST_IP`` nor ``HCCL_IF_IP`` is set
  (else the state's node IP, else the listen address).
- ``PDTUI_SIM_ADDR_MAP``: ``ip=loopback,ip2=loopback2``: how a decode instance reaches a
  prefiller's ``remote_host`` (simulated data-plane IPs are not bindable). After mapping,
  any address outside 127.0.0.0/8 is treated as unreachable: no packet leaves loopback.
- ``VLLM_HOST_IP``, ``HCCL_IF_IP``, ``DISAGGREGATED_PREFILL_RANK_TABLE_PATH``,
  ``ASCEND_RT_VISIBLE_DEVICES``, ``VLLM_ASCEND_LLMDD_RPC_PORT`` as the real connector does.

Choices made where the reference is silent:

- Flags: a fixed allowlist (every flag in the reference/runbook/samples plus the common
  ``vllm serve`` flags, see `VALUE_FLAGS`/`BOOL_FLAGS`); ``_`` in flag names counts as
  ``-`` (vLLM's FlexibleArgumentParser does this); ``--no-X`` is accepted for each boolean X.
  Anything else exits 2 with ``vllm serve: error: unrecognized arguments: ...``. A JSON flag
  whose value is not JSON exits 2 with ``argument --X: invalid loads value: '...'``.
- The HTTP socket is bound before the engine starts (as vLLM 0.11 does), so a busy port fails
  at once with the ``OSError: [Errno 98] Address already in use`` traceback, exit 1.
- KV listener: LLMDataDistCMgrConnector listens on ``VLLM_ASCEND_LLMDD_RPC_PORT`` (5557) +
  dp_rank*tp (reference 1.4); other connectors on ``kv_port`` + dp_rank*tp*pp. That port is
  ``remote_port`` in the prefiller's kv_transfer_params. Protocol: one JSON line
  ``{"op": "fetch", "request_id": ...}`` in, one JSON line (prompt, token ids, blocks) out.
- Faults: ``crash-on-start=TEXT`` picks a fingerprint from `CRASHES` (unknown TEXT: a
  ``RuntimeError: TEXT``), exit 1. ``port-in-use`` (no value) takes the HTTP port;
  ``port-in-use=PORT`` takes PORT: the HTTP port -> Errno 98, the KV port -> the
  ``zmq.error.ZMQError: Address already in use`` fingerprint, other ports: no effect.
  ``slow-start=SECONDS`` adds SECONDS (not scaled) to weight loading, as the fault help says.
  ``kv-link-broken[=TEXT]`` on the decode node or on the prefiller's node (found by IP in the
  state; re-read per request): the request waits in WAITING_FOR_REMOTE_KVS for 3 ticks, then
  fails (HTTP 500 JSON, or a ``data: {"error": ...}`` event when streaming). TEXT ``hang``
  waits until the client goes away; ``timeout`` logs the transfer-timeout fingerprint;
  anything else the connector's connect/link failure. No TCP fetch is made.
- Request handling: prompt token count = `textgen.count_tokens`; chat prompts are the
  messages rendered as ``"<role>: <content>\\n"`` lines plus ``"assistant:"``. Text depends
  on (prompt, request ``seed``) only; ``temperature`` is accepted and ignored. Without
  ``max_tokens`` a reply ends naturally after 24..72 tokens. ``n`` > 1 and lists of several
  prompts are rejected with 400. Errors use the newer ``{"error": {...}}`` shape.
- Tokens are paced at 20 ms x speed; prefill costs 0.2 ms x speed per prompt token.
- Engine stats line: every 5 s x speed (at least 0.2 s) while requests run or wait, or
  tokens were processed in the interval; once more when a request starts waiting for KV.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import os
import signal
import socket
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pdtui.sim import textgen

VERSION = "0.11.0"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"

# --------------------------------------------------------------------------- arguments

VALUE_FLAGS = {
    "host", "port", "model", "tokenizer", "revision", "tokenizer-revision", "download-dir",
    "load-format", "dtype", "kv-cache-dtype", "max-model-len", "seed", "quantization",
    "tensor-parallel-size", "pipeline-parallel-size", "data-parallel-size",
    "data-parallel-size-local", "data-parallel-rank", "data-parallel-start-rank",
    "data-parallel-address", "data-parallel-rpc-port", "data-parallel-backend",
    "distributed-executor-backend", "max-num-seqs", "max-num-batched-tokens",
    "gpu-memory-utilization", "block-size", "swap-space", "cpu-offload-gb",
    "num-gpu-blocks-override", "max-logprobs", "max-seq-len-to-capture", "api-key",
    "uvicorn-log-level", "chat-template", "tool-call-parser", "reasoning-parser",
    "generation-config", "root-path", "api-server-count", "long-prefill-token-threshold",
    "max-num-partial-prefills", "scheduling-policy", "scheduler-cls", "task", "runner",
    "config", "max-lora-rank", "max-loras", "logprobs-mode",
    "kv-transfer-config", "additional-config", "compilation-config", "speculative-config",
    "hf-overrides", "override-generation-config", "limit-mm-per-prompt", "kv-events-config",
    "served-model-name", "lora-modules", "allowed-origins", "middleware", "ssl-keyfile",
    "ssl-certfile", "response-role", "tokenizer-mode", "code-revision",
    "max-parallel-loading-workers",
}
BOOL_FLAGS = {
    "trust-remote-code", "enable-expert-parallel", "enable-prefix-caching", "enforce-eager",
    "enable-chunked-prefill", "disable-log-requests", "enable-log-requests", "disable-log-stats",
    "disable-custom-all-reduce", "async-scheduling", "headless", "enable-auto-tool-choice",
    "disable-uvicorn-access-log", "enable-prompt-tokens-details", "enable-sleep-mode",
    "enable-lora", "data-parallel-hybrid-lb", "data-parallel-external-lb",
    "disable-fastapi-docs", "enable-server-load-tracking", "enable-force-include-usage",
    "enable-dbo", "enable-eplb", "skip-tokenizer-init", "disable-sliding-window",
    "disable-cascade-attn", "enable-log-outputs", "enable-request-id-headers",
}
NARGS_FLAGS = {"served-model-name", "lora-modules", "allowed-origins", "middleware"}
JSON_FLAGS = {
    "kv-transfer-config", "additional-config", "compilation-config", "speculative-config",
    "hf-overrides", "override-generation-config", "limit-mm-per-prompt", "kv-events-config",
}
SHORT_FLAGS = {"-tp": "tensor-parallel-size", "-pp": "pipeline-parallel-size",
               "-dp": "data-parallel-size", "-q": "quantization", "-O": "compilation-config"}
USAGE = "usage: vllm serve [model_tag] [options]"


class UsageError(Exception):
    """Bad command line: argparse-style message, exit 2."""


@dataclass
class ServeArgs:
    model: str
    opts: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.opts.get(name, default)

    def int_(self, name: str, default: int) -> int:
        v = self.opts.get(name)
        return default if v is None else int(v)

    def float_(self, name: str, default: float) -> float:
        v = self.opts.get(name)
        return default if v is None else float(v)

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.opts.get(name)
        return default if v is None else bool(v)


def _convert(name: str, value: str) -> Any:
    if name in JSON_FLAGS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise UsageError(f"argument --{name}: invalid loads value: {value!r}") from None
    ints = {"port", "max-model-len", "seed", "tensor-parallel-size", "pipeline-parallel-size",
            "data-parallel-size", "data-parallel-size-local", "data-parallel-rank",
            "data-parallel-start-rank", "data-parallel-rpc-port", "max-num-seqs",
            "max-num-batched-tokens", "block-size", "api-server-count"}
    if name in ints:
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"argument --{name}: invalid int value: {value!r}") from None
    if name == "gpu-memory-utilization":
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"argument --{name}: invalid float value: {value!r}") from None
    return value


def parse_serve_args(argv: list[str]) -> ServeArgs:
    """Parse the arguments after ``serve``."""
    positional: list[str] = []
    opts: dict[str, Any] = {}
    unknown: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok in SHORT_FLAGS or (tok.startswith("-O") and len(tok) > 2 and tok[2:].isdigit()):
            name = SHORT_FLAGS.get(tok, "compilation-config")
            if tok.startswith("-O") and tok != "-O":
                opts[name] = int(tok[2:])
                continue
            if i >= len(argv):
                raise UsageError(f"argument {tok}: expected one argument")
            opts[name] = _convert(name, argv[i])
            i += 1
            continue
        if not tok.startswith("--") or tok == "--":
            positional.append(tok)
            continue
        raw, eq, inline = tok[2:].partition("=")
        name = raw.replace("_", "-")
        if name in BOOL_FLAGS or (name.startswith("no-") and name[3:] in BOOL_FLAGS):
            if eq:
                raise UsageError(f"argument --{raw}: ignored explicit argument {inline!r}")
            key = name[3:] if name.startswith("no-") else name
            opts[key] = not name.startswith("no-")
            continue
        if name not in VALUE_FLAGS:
            unknown.append(tok)
            if not eq and i < len(argv) and not argv[i].startswith("-"):
                unknown.append(argv[i])
                i += 1
            continue
        if eq:
            values = [inline]
        else:
            values = []
            while i < len(argv) and not (argv[i].startswith("--") or argv[i] in SHORT_FLAGS):
                values.append(argv[i])
                i += 1
                if name not in NARGS_FLAGS:
                    break
            if not values:
                want = "at least one argument" if name in NARGS_FLAGS else "one argument"
                raise UsageError(f"argument --{raw}: expected {want}")
        opts[name] = values if name in NARGS_FLAGS and not eq else (
            [values[0]] if name in NARGS_FLAGS else _convert(name, values[0]))
    model = opts.pop("model", None)
    if positional:
        model = positional.pop(0)
    unknown += positional
    if unknown:
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)}")
    return ServeArgs(model=model or DEFAULT_MODEL, opts=opts)


# --------------------------------------------------------------------------- environment


def _speed() -> float:
    try:
        return max(0.0, float(os.environ.get("PDTUI_SIM_VLLM_SPEED", "1")))
    except ValueError:
        return 1.0


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "localhost"


def addr_map() -> dict[str, str]:
    out: dict[str, str] = {}
    for part in os.environ.get("PDTUI_SIM_ADDR_MAP", "").split(","):
        k, eq, v = part.strip().partition("=")
        if eq and k and v:
            out[k.strip()] = v.strip()
    return out


def map_addr(host: str) -> str | None:
    """Where to actually connect for ``host``; None when that would leave loopback."""
    target = addr_map().get(host, host)
    if target == "localhost":
        target = "127.0.0.1"
    return target if _is_loopback(target) else None


@dataclass
class SimNodeInfo:
    faults: list[tuple[str, str | None]] = field(default_factory=list)
    ip: str | None = None
    soc: str = "A3"


def _load_node(node_name: str | None = None) -> SimNodeInfo:
    path = os.environ.get("PDTUI_SIM_STATE")
    name = node_name or os.environ.get("PDTUI_SIM_NODE")
    if not path or not name:
        return SimNodeInfo()
    try:
        from pdtui.sim.state import load_state

        node = load_state(path).node(name)
    except Exception:
        return SimNodeInfo()
    return SimNodeInfo([(f.kind, f.value) for f in node.faults], node.ip, node.soc)


def _faults_of_ip(ip: str) -> list[tuple[str, str | None]]:
    path = os.environ.get("PDTUI_SIM_STATE")
    if not path:
        return []
    try:
        from pdtui.sim.state import load_state

        for n in load_state(path).nodes:
            if n.ip == ip:
                return [(f.kind, f.value) for f in n.faults]
    except Exception:
        pass
    return []


def _fault(faults: list[tuple[str, str | None]], kind: str) -> tuple[bool, str | None]:
    for k, v in faults:
        if k == kind:
            return True, v
    return False, None


# --------------------------------------------------------------------------- logging


class Log:
    """vLLM-style lines: ``(APIServer pid=N) INFO MM-DD HH:MM:SS [file.py:line] msg``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    @staticmethod
    def _write(text: str, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        try:
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def line(self, who: str, level: str, where: str, msg: str, err: bool = False) -> None:
        ts = time.strftime("%m-%d %H:%M:%S")
        self._write(f"({who}) {level} {ts} [{where}] {msg}\n", err)

    def raw(self, who: str, text: str, err: bool = False) -> None:
        self._write("".join(f"({who}) {ln}\n" for ln in text.splitlines()), err)

    def glog(self, who: str, level: str, where: str, msg: str) -> None:
        now = time.time()
        stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now))
        self._write(f"({who}) {level[0]}{stamp}.{int(now % 1 * 1e6):06d} "
                    f"{self.pid + 11} {where}] {msg}\n")


# --------------------------------------------------------------------------- crash fingerprints


def _crash_lines(kind: str, cfg: Config) -> tuple[str, list[str]]:
    """(who, lines) for a crash-on-start TEXT."""
    ip = cfg.ip
    w = cfg.worker_name(0)
    fingerprints: dict[str, list[str]] = {
        "hccl-timeout": [
            "RuntimeError: InitHcclComm:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:"
            "HCCL function error: HcclCommInitRootInfoConfig(...), error code is 7",
            "[ERROR] 2025-09-30-10:00:00 (PID:{pid}, Device:0, RankID:-1) ERR02200 DIST call "
            "hccl api failed.",
            "EI0006: [PID: {pid}] 2025-09-30-10:00:00.000.000 Getting socket times out. "
            "Reason: 1. The remote does not initiate a connect request. some NPUs in the "
            "cluster are abnormal. 2. The remote does not initiate a connect request "
            "because the collective communication operator is started too late or is not "
            "started by some NPU in the cluster. 3. The communication link is disconnected. "
            "(For example, the IP addresses are not on the same network segment or the TLS "
            "configurations are inconsistent.)",
            "        Solution: 1. Check the rank service processes with other errors or do not "
            "call the collective communication operator. 2. If this error is reported for "
            "all NPUs, check whether the time difference between the earliest and latest "
            "errors is greater than the connect timeout interval (120s by default). If so, "
            "adjust the timeout interval by using the HCCL_CONNECT_TIMEOUT environment "
            "variable. 3. Check the connectivity of the communication link between nodes.",
            "        TraceBack (most recent call last):",
            "        Get_Socket_Timeout(EI0006): Getting socket times out.",
            "        Communication_Error_Get_Socket(EI0006)",
        ],
        "oom": [
            "ValueError: No available memory for the cache blocks. Try increasing "
            "`gpu_memory_utilization` when initializing the engine.",
        ],
        "port": [
            f"[hccl_socket.cc:100] [{cfg.pid}][Listen][Socket]socket type[0] listen on "
            f"ip[{ip}] and specific port[16666] fail. Please check the port status and "
            "whether the port is being used by other process.",
            "RuntimeError: InitHcclComm: HCCL function error: HcclCommInitClusterInfoConfig,"
            " error code is 7",
        ],
        "device-ip": [
            "[hccl] 'device_ip' is not set correctly,must be set when multi Server or "
            "HCCL_INTRA_ROCE_ENABLE enabled",
            "RuntimeError: InitHcclComm: HCCL function error: HcclCommInitClusterInfoConfig,"
            " error code is 1",
        ],
        "link-timeout": [
            "wait socket establish timeout, role[1] rank[12] timeout[120]",
            "LINK_ERROR_INFO:",
            "| dest_ip(user_rank) | dest_port | src_ip(user_rank) | src_port | MyRole | Status "
            "| TlsStatus |",
            f"| 192.26.2.199(12) | 16666 | {ip}(0) | 0 | client | time out | DISABLE |",
        ],
        "transport": [
            "RuntimeError: Transport init error. Reason: [Create][DestLink]Create Dest error! "
            "creakLink para:rank[1]-localUserrank[1]-localIpAddr[192.25.2.199], "
            "dst_rank[0]-remoteUserrank[0]-remote_ip_addr[192.26.2.199]",
        ],
        "ranktable-dup": [
            "Ranktable_Check_Failed(EI0014): The ranktable is invalid. Reason: "
            "[The IP is used repeatedly] device_ip 192.25.2.199 is already exist",
        ],
        "sdid": [
            "invalid host device id 65535",
            "devdrv_get_vnic_ip_by_sdid fail! sdid:0xffffffff",
        ],
        "zmq": [
            f"zmq.error.ZMQError: Address already in use (addr='tcp://{ip}:{cfg.kv_listen_port}')",
        ],
        "npu-oom": [
            "halMemAlloc failed, size=2097152, desc=[driver error:out of memory]",
            "RuntimeError: NPU out of memory. Tried to allocate 2.00 MiB (NPU 0; 61.27 GiB "
            "total capacity; 58.91 GiB already allocated; 0 bytes free)",
        ],
    }
    if kind == "api-died":
        return "api", [f"RuntimeError: Process ApiServer_0 (PID: {cfg.pid}) died with "
                       "exit code 1"]
    if kind == "engine":
        return "engine", ["EngineCore encountered a fatal error."]
    lines = fingerprints.get(kind, [f"RuntimeError: {kind}"])
    if kind == "oom":
        return "engine-oom", lines
    return w, [ln.replace("{pid}", str(cfg.pid + 9)) for ln in lines]


CRASHES = ("hccl-timeout", "oom", "port", "device-ip", "api-died", "link-timeout", "transport",
           "ranktable-dup", "sdid", "zmq", "npu-oom", "engine")


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    args: ServeArgs
    pid: int
    listen: str
    ip: str
    speed: float
    soc: str
    faults: list[tuple[str, str | None]]

    @property
    def port(self) -> int:
        return self.args.int_("port", 8000)

    @property
    def display_host(self) -> str:
        return str(self.args.get("host") or "0.0.0.0")

    @property
    def served_name(self) -> str:
        names = self.args.get("served-model-name")
        return str(names[0]) if names else self.args.model

    @property
    def max_model_len(self) -> int:
        return self.args.int_("max-model-len", 32768)

    @property
    def tp(self) -> int:
        return max(1, self.args.int_("tensor-parallel-size", 1))

    @property
    def pp(self) -> int:
        return max(1, self.args.int_("pipeline-parallel-size", 1))

    @property
    def dp_rank(self) -> int:
        return self.args.int_("data-parallel-rank", 0)

    @property
    def ep(self) -> bool:
        return self.args.flag("enable-expert-parallel")

    @property
    def block_size(self) -> int:
        return self.args.int_("block-size", 128)

    @property
    def prefix_caching(self) -> bool:
        return self.args.flag("enable-prefix-caching", True)

    @property
    def kv(self) -> dict[str, Any]:
        v = self.args.get("kv-transfer-config")
        return v if isinstance(v, dict) else {}

    @property
    def connector(self) -> str | None:
        c = self.kv.get("kv_connector")
        return str(c) if c else None

    @property
    def llmdd(self) -> bool:
        return self.connector == "LLMDataDistCMgrConnector"

    @property
    def role(self) -> str | None:
        r = self.kv.get("kv_role")
        return str(r) if r else None

    @property
    def producer(self) -> bool:
        return self.connector is not None and self.role in ("kv_producer", "kv_both")

    @property
    def consumer(self) -> bool:
        return self.connector is not None and self.role in ("kv_consumer", "kv_both")

    @property
    def engine_id(self) -> str:
        e = self.kv.get("engine_id")
        if e is None:
            e = str(uuid.UUID(int=textgen.seed_for(self.listen + str(self.port)) << 64))
        return str(e)

    @property
    def kv_listen_port(self) -> int:
        if self.llmdd:
            try:
                base = int(os.environ.get("VLLM_ASCEND_LLMDD_RPC_PORT", "5557"))
            except ValueError:
                base = 5557
            return base + self.dp_rank * self.tp
        try:
            base = int(self.kv.get("kv_port", 20001))
        except (TypeError, ValueError):
            base = 20001
        return base + self.dp_rank * self.tp * self.pp

    @property
    def kv_blocks(self) -> int:
        util = self.args.float_("gpu-memory-utilization", 0.9)
        return max(1, int(400 * self.tp * max(util - 0.5, 0.05) / 0.4))

    @property
    def kv_tokens(self) -> int:
        return self.kv_blocks * self.block_size

    def worker_name(self, tp_rank: int) -> str:
        ep = f"_EP{tp_rank}" if self.ep else ""
        return f"Worker_DP{self.dp_rank}_TP{tp_rank}{ep} pid={self.pid + 9 + tp_rank}"

    @property
    def engine_name(self) -> str:
        return f"EngineCore_DP{self.dp_rank} pid={self.pid + 7}"

    @property
    def api_name(self) -> str:
        return f"APIServer pid={self.pid}"


def make_config(args: ServeArgs) -> Config:
    node = _load_node()
    host = str(args.get("host") or "0.0.0.0")
    listen = os.environ.get("PDTUI_SIM_LISTEN") or host
    ip = (os.environ.get("VLLM_HOST_IP") or os.environ.get("HCCL_IF_IP")
          or os.environ.get("PDTUI_SIM_NODE_IP") or node.ip
          or (listen if listen != "0.0.0.0" else "127.0.0.1"))
    return Config(args=args, pid=os.getpid(), listen=listen, ip=ip, speed=_speed(),
                  soc=node.soc, faults=node.faults)


# --------------------------------------------------------------------------- metrics


_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0)
_E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
                60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
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
        self.ttft = Histogram("vllm:time_to_first_token_seconds",
                              "Histogram of time to first token in seconds.", _TTFT_BUCKETS)
        self.itl = Histogram("vllm:inter_token_latency_seconds",
                             "Histogram of inter-token latency in seconds.", _ITL_BUCKETS)
        self.tpot = Histogram("vllm:time_per_output_token_seconds",
                              "Histogram of time per output token in seconds.", _ITL_BUCKETS)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds",
                             "Histogram of e2e request latency in seconds.", _E2E_BUCKETS)
        self.queue = Histogram("vllm:request_queue_time_seconds",
                               "Histogram of time spent in WAITING phase for request.",
                               _E2E_BUCKETS)
        self.prefill = Histogram("vllm:request_prefill_time_seconds",
                                 "Histogram of time spent in PREFILL phase for request.",
                                 _E2E_BUCKETS)
        self.decode = Histogram("vllm:request_decode_time_seconds",
                                "Histogram of time spent in DECODE phase for request.",
                                _E2E_BUCKETS)
        self.iter_tokens = Histogram("vllm:iteration_tokens_total",
                                     "Histogram of number of tokens per engine_step.",
                                     _TOK_BUCKETS)


# --------------------------------------------------------------------------- engine


class RequestError(Exception):
    def __init__(self, status: int, message: str, type_: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": None,
                          "code": self.status}}


@dataclass
class GenRequest:
    rid: str              # response id: cmpl-X / chatcmpl-X
    internal: str         # engine request id: cmpl-X-0 / chatcmpl-X
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
            self.cfg.api_name, "INFO", "loggers.py:123",
            f"Engine {self.cfg.dp_rank:03d}: Avg prompt throughput: "
            f"{self.interval_prompt / dt:.1f} tokens/s, Avg generation throughput: "
            f"{self.interval_gen / dt:.1f} tokens/s, Running: {self.running} reqs, "
            f"Waiting: {self.waiting} reqs, GPU KV cache usage: {usage:.1f}%, "
            f"Prefix cache hit rate: {hit:.1f}%")
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
            h.update(json.dumps(ids[b * bs:(b + 1) * bs]).encode())
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
        self.kv_store[req.internal] = {"prompt": req.prompt, "token_ids": req.prompt_ids,
                                       "blocks": blocks, "engine_id": self.cfg.engine_id}
        while len(self.kv_store) > 1000:
            self.kv_store.popitem(last=False)

    async def handle_kv_conn(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
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
                self.log.line(self.cfg.engine_name, "WARNING", self._conn_file(),
                              f"Received KV fetch for unknown request {rid} from "
                              f"{peer[0]}:{peer[1]}")
            else:
                reply = {"ok": True, **entry}
                self.kv_fetches_served += 1
                self.log.line(self.cfg.engine_name, "INFO", self._conn_file(),
                              f"KV cache of request {rid} ({len(entry['blocks'])} blocks) "
                              f"sent to {peer[0]}:{peer[1]}")
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _conn_file(self) -> str:
        return "llmdatadist_c_mgr_connector.py:562" if self.cfg.llmdd else \
            "mooncake_connector.py:1035"

    # ---- KV fetch (decoder side)

    async def fetch_kv(self, req: GenRequest, request: Request | None) -> dict[str, Any]:
        params = req.kv_params or {}
        host = str(params.get("remote_host") or "")
        try:
            port = int(params.get("remote_port") or 0)
        except (TypeError, ValueError):
            port = 0
        remote_rid = str(params.get("remote_request_id") or req.internal)
        cfg = self.cfg
        broken, btext = _fault(_load_node().faults, "kv-link-broken")
        if not broken:
            broken, btext = _fault(_faults_of_ip(host), "kv-link-broken")
        engine_who = cfg.engine_name
        worker = cfg.worker_name(0)
        comm = f"pd_comm_{self._device_ip(host, True)}_{self._device_ip(cfg.ip, False)}"
        link_key = f"{host}:{port}"
        error: str | None = None
        data: dict[str, Any] | None = None
        if cfg.llmdd and link_key not in self.linked:
            self.log.line(worker, "INFO", "llmdatadist_c_mgr_connector.py:831",
                          f"try link with remote, comm id: {comm}")
        if broken:
            error = "broken"
        else:
            target = map_addr(host)
            try:
                if target is None or not port:
                    raise OSError("unreachable")
                t0 = time.monotonic()
                local = (cfg.listen, 0) if _is_loopback(cfg.listen) else None
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(target, port, local_addr=local), 3.0)
                try:
                    writer.write((json.dumps({"op": "fetch", "request_id": remote_rid,
                                              "engine_id": cfg.engine_id}) + "\n").encode())
                    await writer.drain()
                    line = await asyncio.wait_for(reader.readline(), 10.0)
                finally:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
                reply = json.loads(line) if line else {"ok": False, "error": "closed"}
                if link_key not in self.linked:
                    self.linked.add(link_key)
                    if cfg.llmdd:
                        self.log.line(worker, "INFO", "llmdatadist_c_mgr_connector.py:858",
                                      f"Linking success, comm id: {comm}")
                    else:
                        cost = int((time.monotonic() - t0) * 1e6)
                        self.log.glog(worker, "I", "ascend_direct_transport.cpp:1119",
                                      f"Connected to segment: {host}:{port}, cost:{cost} us.")
                if reply.get("ok"):
                    data = reply
                    self.kv_fetches_done += 1
                else:
                    error = str(reply.get("error", "fetch failed"))
            except (OSError, TimeoutError, json.JSONDecodeError):
                error = "connect"
        if data is not None:
            return data
        # Failure: sit in WAITING_FOR_REMOTE_KVS for a while, then give up.
        self.waiting += 1
        try:
            self.log_stats()
            tick = 0
            while True:
                self.log.line(engine_who, "DEBUG", "scheduler.py:1285",
                              f"{req.internal} is still in WAITING_FOR_REMOTE_KVS state.")
                tick += 1
                if tick >= 3 and not (broken and btext == "hang"):
                    break
                await asyncio.sleep(max(0.05, 1.0 * cfg.speed))
                if request is not None and await request.is_disconnected():
                    break
        finally:
            self.waiting -= 1
        if cfg.llmdd:
            self.log.line(worker, "ERROR", "llmdatadist_c_mgr_connector.py:866",
                          f"Linking failed, comm id: {comm}")
            reason = "Linking failed"
        elif broken and btext == "timeout":
            self.log.glog(worker, "E", "ascend_direct_transport.cpp:1205",
                          "Sync batch data transfer timeout after 33061142969ns")
            self.log.line(worker, "ERROR", "mooncake_connector.py:1197",
                          f"Mooncake transfer failed for request {req.internal}")
            reason = "Mooncake transfer failed"
        else:
            self.log.glog(worker, "E", "ascend_direct_transport.cpp:1107",
                          f"Failed to connect to target: {host}:{port}, status: 103900")
            self.log.line(worker, "ERROR", "mooncake_connector.py:1190",
                          "Mooncake transfer failed, ret: -1")
            reason = "Mooncake transfer failed, ret: -1"
        if error not in (None, "broken", "connect"):
            reason += f" ({error})"
        self.metrics.success["abort"] += 1
        raise RequestError(500, f"KV transfer from {host}:{port} failed for request "
                                f"{req.internal}: {reason}", "InternalServerError")

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
            p.update({
                "remote_pcp_size": 1, "remote_dcp_size": 1, "remote_ptp_size": cfg.tp,
                "last_token_id": req.prompt_ids[-1] if req.prompt_ids else 0,
                "remote_multi_nodes_meta_mapping": {},
                "num_prompt_blocks": len(blocks), "remote_block_size": cfg.block_size,
            })
        return p

    async def run(self, req: GenRequest, request: Request | None
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
                    self.log.line(cfg.engine_name, "WARNING", "scheduler.py:1301",
                                  f"Remote KV of {req.internal} does not match its prompt")
            else:
                cached = self.prefix_lookup(req.prompt_ids)
                await self.sleep(0.0002 * max(0, n_prompt - cached))
            m.prompt_tokens += n_prompt
            self.interval_prompt += n_prompt
            m.iter_tokens.observe(n_prompt)
            m.prefill.observe(time.monotonic() - t_prefill)
            max_tokens = 1 if remote_decode else req.max_tokens
            tokens, finish = textgen.reply(req.prompt, max_tokens, req.seed)
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
                usage = {"prompt_tokens": n_prompt, "total_tokens": n_prompt + n_out,
                         "completion_tokens": n_out,
                         "prompt_tokens_details": ({"cached_tokens": cached}
                                                   if cfg.args.flag("enable-prompt-tokens-details")
                                                   else None)}
                extra["usage"] = usage
                if done:
                    kvp = None
                    if remote_decode:
                        nb = max(1, math.ceil(n_prompt / cfg.block_size))
                        blocks = [next(self.block_counter) for _ in range(nb)]
                        self.store_kv(req, blocks)
                        kvp = self.kv_transfer_params(req, blocks)
                        if not cfg.llmdd:
                            self.log.line(cfg.worker_name(0), "INFO",
                                          "mooncake_connector.py:1012",
                                          f"Delaying free of {nb} blocks for request "
                                          f"{req.internal}")
                    extra["kv_transfer_params"] = kvp
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
        return JSONResponse({"count": len(ids), "max_model_len": self.cfg.max_model_len,
                             "tokens": ids})

    async def models(self, request: Request) -> Response:
        c = self.cfg
        perm = {"id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission",
                "created": self.created, "allow_create_engine": False,
                "allow_sampling": True, "allow_logprobs": True,
                "allow_search_indices": False, "allow_view": True,
                "allow_fine_tuning": False, "organization": "*", "group": None,
                "is_blocking": False}
        return JSONResponse({"object": "list", "data": [{
            "id": c.served_name, "object": "model", "created": self.created,
            "owned_by": "vllm", "root": c.args.model, "parent": None,
            "max_model_len": c.max_model_len, "permission": [perm]}]})

    async def metrics(self, request: Request) -> Response:
        e = self.engine
        m = e.metrics
        lb = f'engine="{self.cfg.dp_rank}",model_name="{self.cfg.served_name}"'
        out: list[str] = []

        def gauge(name: str, help_: str, v: float) -> None:
            out.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge",
                        f"{name}{{{lb}}} {float(v)}"])

        def counter(name: str, help_: str, v: float) -> None:
            out.extend([f"# HELP {name} {help_}", f"# TYPE {name} counter",
                        f"{name}_total{{{lb}}} {float(v)}"])

        gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
              e.running)
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
              e.waiting)
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
              min(1.0, e.running_tokens / max(1, self.cfg.kv_tokens)))
        counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
                m.preemptions)
        counter("vllm:prefix_cache_queries",
                "Prefix cache queries, in terms of number of queried tokens.", m.prefix_queries)
        counter("vllm:prefix_cache_hits",
                "Prefix cache hits, in terms of number of cached tokens.", m.prefix_hits)
        counter("vllm:prompt_tokens", "Number of prefill tokens processed.", m.prompt_tokens)
        counter("vllm:generation_tokens", "Number of generation tokens processed.",
                m.generation_tokens)
        out += ["# HELP vllm:request_success_total Count of successfully processed requests.",
                "# TYPE vllm:request_success_total counter"]
        for reason in ("stop", "length", "abort"):
            out.append(f'vllm:request_success_total{{{lb},finished_reason="{reason}"}} '
                       f"{float(m.success[reason])}")
        for h in (m.iter_tokens, m.ttft, m.tpot, m.itl, m.e2e, m.queue, m.prefill, m.decode):
            out += h.render(lb)
        return Response("\n".join(out) + "\n",
                        media_type="text/plain; version=0.0.4; charset=utf-8")

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
            p = body.get("prompt")
            if isinstance(p, list) and len(p) == 1 and isinstance(p[0], str | list):
                p = p[0]
            if isinstance(p, str):
                prompt, ids = p, textgen.token_ids(p)
            elif isinstance(p, list) and p and all(isinstance(x, int) for x in p):
                prompt, ids = " ".join(str(x) for x in p), [int(x) for x in p]
            elif isinstance(p, list):
                raise RequestError(400, "the simulator takes one prompt per request")
            else:
                raise RequestError(400, "prompt must be a string or a list of token ids")
        if int(body.get("n") or 1) != 1:
            raise RequestError(400, "n > 1 is not supported by the simulator")
        mt = body.get("max_completion_tokens") if chat else None
        if mt is None:
            mt = body.get("max_tokens")
        if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or mt < 1):
            raise RequestError(400, f"max_tokens must be at least 1, got {mt}.")
        limit = self.cfg.max_model_len
        n = len(ids)
        if n > limit or (mt is not None and n + mt > limit):
            where = "messages" if chat else "prompt"
            if mt is None or n > limit:
                msg = (f"This model's maximum context length is {limit} tokens. However, your "
                       f"request has {n} input tokens. Please reduce the length of the input "
                       f"{where}.")
            else:
                msg = (f"This model's maximum context length is {limit} tokens. However, you "
                       f"requested {n + mt} tokens ({n} in the {where}, {mt} in the "
                       f"completion). Please reduce the length of the {where} or completion.")
            raise RequestError(400, msg)
        if mt is None:
            mt = limit - n
        temp = body.get("temperature")
        if temp is not None and not isinstance(temp, int | float):
            raise RequestError(400, "temperature must be a number")
        seed = body.get("seed")
        kvp = body.get("kv_transfer_params")
        so = body.get("stream_options") or {}
        xid = request.headers.get("x-request-id") or uuid.uuid4().hex
        rid = f"chatcmpl-{xid}" if chat else f"cmpl-{xid}"
        return GenRequest(
            rid=rid, internal=rid if chat else f"{rid}-0", chat=chat, prompt=prompt,
            prompt_ids=ids, max_tokens=mt, seed=seed if isinstance(seed, int) else None,
            kv_params=kvp if isinstance(kvp, dict) else None, created=int(time.time()),
            model=str(model or self.cfg.served_name), stream=bool(body.get("stream")),
            include_usage=bool(isinstance(so, dict) and so.get("include_usage")),
            continuous_usage=bool(isinstance(so, dict) and so.get("continuous_usage_stats")))

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
            return StreamingResponse(self._stream(req, request),
                                     media_type="text/event-stream")
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
            choice = {"index": 0, "message": {"role": "assistant", "content": content,
                                              "reasoning_content": None, "tool_calls": []},
                      "logprobs": None, "finish_reason": finish, "stop_reason": None}
        else:
            choice = {"index": 0, "text": content, "logprobs": None, "finish_reason": finish,
                      "stop_reason": None, "prompt_logprobs": None}
        return JSONResponse({
            "id": req.rid, "object": "chat.completion" if chat else "text_completion",
            "created": req.created, "model": req.model, "choices": [choice],
            "usage": usage, "prompt_logprobs": None,
            "kv_transfer_params": extra.get("kv_transfer_params")})

    async def _stream(self, req: GenRequest, request: Request) -> AsyncIterator[str]:
        obj = "chat.completion.chunk" if req.chat else "text_completion"

        def chunk(choices: list[dict[str, Any]], usage: Any = None) -> str:
            d: dict[str, Any] = {"id": req.rid, "object": obj, "created": req.created,
                                 "model": req.model, "choices": choices}
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
                        yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                      "logprobs": None, "finish_reason": None}], cu)
                    yield chunk([{"index": 0, "delta": {"content": tok}, "logprobs": None,
                                  "finish_reason": fin, "stop_reason": None}], cu)
                else:
                    yield chunk([{"index": 0, "text": tok, "logprobs": None,
                                  "finish_reason": fin, "stop_reason": None}], cu)
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
                self.log.raw(self.who, f'INFO:     {client[0]}:{client[1]} - '
                                       f'"{scope["method"]} {path} HTTP/'
                                       f'{scope.get("http_version", "1.1")}" {status} {phrase}')
            await send(message)

        await self.app(scope, receive, wrapped)


# --------------------------------------------------------------------------- startup


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

    def _crash_check(self, stage: str) -> None:
        on, text = _fault(self.cfg.faults, "crash-on-start")
        if not on:
            return
        kind = (text or "").strip()
        want = {"api-died": "api", "oom": "kv"}.get(kind, "weights")
        if stage != want:
            return
        who, lines = _crash_lines(kind, self.cfg)
        c, L = self.cfg, self.log
        if who == "api":
            L.line(c.api_name, "ERROR", "launcher.py:115", lines[0], err=True)
            L.raw(c.api_name, lines[0], err=True)
        elif who == "engine":
            L.line(c.engine_name, "ERROR", "core.py:711", lines[0], err=True)
            L.raw(c.api_name, "vllm.v1.engine.exceptions.EngineDeadError: EngineCore "
                              "encountered an issue. See stack trace (above) for the root "
                              "cause.", err=True)
        else:
            src = c.engine_name if who == "engine-oom" else who
            if who == "engine-oom":
                L.line(src, "INFO", "kv_cache_utils.py:1087", "Available KV cache memory: "
                                                              "-0.87 GiB")
            L.line(src, "ERROR", "core.py:708", "EngineCore failed to start.", err=True)
            _traceback(L, src, [
                (f"{_SITE}/vllm/v1/engine/core.py", 699, "run_engine_core",
                 "engine_core = EngineCoreProc(*args, **kwargs)"),
                (f"{_SITE}/vllm/v1/engine/core.py", 498, "__init__",
                 "super().__init__(vllm_config, executor_class, log_stats,"),
            ], lines[0])
            for extra in lines[1:]:
                L.raw(src, extra, err=True)
            L.raw(c.api_name, "RuntimeError: Engine core initialization failed. See root "
                              "cause above. Failed core proc(s): {}", err=True)
        raise Fatal(kind)

    def _ranktable(self, w0: str) -> None:
        c, L = self.cfg, self.log
        frames = [(f"{_SITE}/vllm_ascend/distributed/llmdatadist_c_mgr_connector.py", 364,
                   "__init__", "self.local_dev_info = self.read_agent_metadata(global_rank_table)")]
        path = os.environ.get("DISAGGREGATED_PREFILL_RANK_TABLE_PATH")

        def die(last: str) -> None:
            L.line(w0, "ERROR", "multiproc_executor.py:597", "WorkerProc failed to start.",
                   err=True)
            _traceback(L, w0, frames, last)
            L.line(c.engine_name, "ERROR", "core.py:708", "EngineCore failed to start.",
                   err=True)
            L.raw(c.api_name, "RuntimeError: Engine core initialization failed. See root "
                              "cause above. Failed core proc(s): {}", err=True)
            raise Fatal("ranktable")

        if not path:
            frames[0] = (frames[0][0], 339, "__init__",
                         'assert envs_ascend.DISAGGREGATED_PREFILL_RANK_TABLE_PATH is not None, '
                         '"Please set path of rank_table to env variable '
                         'DISAGGREGATED_PREFILL_RANK_TABLE_PATH"')
            die("AssertionError: Please set path of rank_table to env variable "
                "DISAGGREGATED_PREFILL_RANK_TABLE_PATH")
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
        entries = [e for e in table.get(key, []) if isinstance(e, dict)
                   and str(e.get("server_id")) == c.ip]
        vis = os.environ.get("ASCEND_RT_VISIBLE_DEVICES")
        if vis:
            allowed = {v.strip() for v in vis.split(",")}
            entries = [e for e in entries if str(e.get("device_id")) in allowed]
        for rank in range(c.tp):
            if rank >= len(entries):
                die(f"AssertionError: Can't read the target server_id {c.ip} and device_rank "
                    f"{rank} from rank table")
        L.line(w0, "INFO", "llmdatadist_c_mgr_connector.py:371",
               f"LLMDataDistCMgrConnectorWorker: local device info: server_id {c.ip}, "
               f"device_id {entries[0].get('device_id')}, device_ip "
               f"{entries[0].get('device_ip')}, cluster_id {entries[0].get('cluster_id')}")

    def _bind_http(self) -> socket.socket:
        c, L = self.cfg, self.log
        on, val = _fault(c.faults, "port-in-use")
        busy = on and (val is None or val == str(c.port))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            if busy:
                raise OSError(98, "Address already in use")
            sock.bind((c.listen, c.port))
        except OSError as e:
            sock.close()
            _traceback(L, c.api_name, [
                (f"{_SITE}/vllm/entrypoints/openai/api_server.py", 1953, "run_server",
                 "listen_address, sock = setup_server(args)"),
                (f"{_SITE}/vllm/entrypoints/openai/api_server.py", 1915, "setup_server",
                 "sock = create_server_socket(sock_addr)"),
                (f"{_SITE}/vllm/entrypoints/openai/api_server.py", 1872, "create_server_socket",
                 "sock.bind(addr)"),
            ], f"OSError: [Errno {e.errno}] {e.strerror}")
            raise Fatal("port") from None
        sock.set_inheritable(False)
        return sock

    async def _start_kv(self) -> asyncio.Server | None:
        c, L = self.cfg, self.log
        if not c.producer:
            return None
        on, val = _fault(c.faults, "port-in-use")
        port = c.kv_listen_port
        try:
            if on and val == str(port):
                raise OSError(98, "Address already in use")
            return await asyncio.start_server(self.engine.handle_kv_conn, c.listen, port,
                                              reuse_address=True)
        except OSError:
            w0 = c.worker_name(0)
            L.line(w0, "ERROR", "multiproc_executor.py:597", "WorkerProc failed to start.",
                   err=True)
            _traceback(L, w0, [(f"{_SITE}/zmq/sugar/socket.py", 311, "bind",
                                "super().bind(addr)"),
                               ("zmq/backend/cython/_zmq.py", 1009, "zmq.backend.cython._zmq."
                                "Socket.bind", "")],
                       f"zmq.error.ZMQError: Address already in use (addr='tcp://{c.ip}:{port}')")
            L.raw(c.api_name, "RuntimeError: Engine core initialization failed. See root "
                              "cause above. Failed core proc(s): {}", err=True)
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
        L.line(api, "INFO", "scheduler.py:205",
               f"Chunked prefill is enabled with max_num_batched_tokens="
               f"{c.args.int_('max-num-batched-tokens', 8192)}.")
        self._crash_check("api")
        await self.wait(0.1)
        L.line(eng, "INFO", "core.py:644", "Waiting for init message from front-end.")
        L.line(eng, "INFO", "core.py:77",
               f"Initializing a V1 LLM engine (v{VERSION}) with config: model='{c.args.model}', "
               f"speculative_config=None, tokenizer='{c.args.model}', "
               f"max_seq_len={c.max_model_len}, tensor_parallel_size={c.tp}, "
               f"pipeline_parallel_size={c.pp}, quantization={c.args.get('quantization')}, "
               f"enforce_eager={c.args.flag('enforce-eager')}, device_config=npu, "
               f"seed={c.args.int_('seed', 0)}, served_model_name={c.served_name}, "
               f"enable_prefix_caching={c.prefix_caching}")
        await self.wait(0.2)
        if self.stop.is_set():
            return None
        ws = c.tp * c.pp
        for r in range(c.tp):
            L.line(c.worker_name(r), "INFO", "parallel_state.py:1208",
                   f"rank {r} in world size {ws} is assigned as DP rank {c.dp_rank}, "
                   f"PP rank 0, TP rank {r}, EP rank {r if c.ep else 0}")
        w0 = c.worker_name(0)
        if c.connector:
            L.line(w0, "INFO", "factory.py:51",
                   f"Creating v1 connector with name: {c.connector} and engine_id: "
                   f"{c.engine_id}")
            if c.llmdd:
                self._ranktable(w0)
        kv_server = await self._start_kv()
        if kv_server is not None:
            if c.llmdd:
                L.line(w0, "INFO", "llmdatadist_c_mgr_connector.py:405",
                       f"LLMDataDistCMgrConnectorWorker: listening on "
                       f"tcp://{c.ip}:{c.kv_listen_port}")
            else:
                L.line(w0, "INFO", "mooncake_connector.py:873",
                       f"Mooncake Transfer Engine initialized at {c.ip}:{c.kv_listen_port}")
        L.line(w0, "INFO", "weight_utils.py:455", "Using model weights format ['*.safetensors']")
        shards = 3 + textgen.seed_for(c.args.model) % 6
        _, slow = _fault(c.faults, "slow-start")
        try:
            extra = float(slow) if slow else 0.0
        except ValueError:
            extra = 0.0
        t0 = time.monotonic()
        for s in range(shards + 1):
            if s:
                await self.wait(1.2 / shards)
                await self.wait(extra / shards, scaled=False)
                if self.stop.is_set():
                    return None
            el = time.monotonic() - t0
            rate = f"00:00, {el / s:.2f}s/it" if s else "?, ?it/s"
            L.raw(w0, f"Loading safetensors checkpoint shards: {100 * s // shards:3d}% "
                      f"Completed | {s}/{shards} [{int(el) // 60:02d}:{int(el) % 60:02d}<"
                      f"{rate}]")
        L.line(w0, "INFO", "default_loader.py:267",
               f"Loading weights took {time.monotonic() - t0:.2f} seconds")
        gb = 8 + (textgen.seed_for(c.args.model + "gb") % 3200) / 100
        L.line(w0, "INFO", "model_runner_v1.py:2705", f"Loading model weights took {gb:.4f} GB")
        self._crash_check("weights")
        total = 65464696832 if c.soc == "A3" else 31662800896
        util = c.args.float_("gpu-memory-utilization", 0.9)
        avail = int(total * util - gb * 1e9 * 1.07)
        L.line(w0, "INFO", "worker_v1.py:256",
               f"Available memory: {max(avail, 0)}, total memory: {total}")
        await self.wait(0.4)
        self._crash_check("kv")
        L.line(eng, "INFO", "kv_cache_utils.py:1087", f"GPU KV cache size: {c.kv_tokens:,} tokens")
        L.line(eng, "INFO", "kv_cache_utils.py:1091",
               f"Maximum concurrency for {c.max_model_len:,} tokens per request: "
               f"{c.kv_tokens / c.max_model_len:.2f}x")
        if not c.args.flag("enforce-eager"):
            await self.wait(0.5)
            L.line(w0, "INFO", "model_runner_v1.py:3487",
                   f"Graph capturing finished in {max(1, round(5 * c.speed))} secs, took "
                   f"{0.35 + (c.tp % 4) * 0.2:.2f} GiB")
        L.line(eng, "INFO", "core.py:210", f"init engine (profile, create kv cache, warmup "
                                           f"model) took {time.monotonic() - t0 + 0.8:.2f} seconds")
        if self.stop.is_set():
            return None
        await self.wait(0.15)
        L.line(api, "INFO", "api_server.py:1880",
               f"Starting vLLM API server 0 on http://{c.display_host}:{c.port}")
        L.line(api, "INFO", "launcher.py:36", "Available routes are:")
        routes = [("/openapi.json", "HEAD, GET"), ("/docs", "HEAD, GET"),
                  ("/docs/oauth2-redirect", "HEAD, GET"), ("/redoc", "HEAD, GET"),
                  ("/health", "GET"), ("/load", "GET"), ("/ping", "POST"), ("/ping", "GET"),
                  ("/tokenize", "POST"), ("/detokenize", "POST"), ("/v1/models", "GET"),
                  ("/version", "GET"), ("/v1/chat/completions", "POST"),
                  ("/v1/completions", "POST"), ("/reset_prefix_cache", "POST"),
                  ("/metrics", "GET")]
        for path, methods in routes:
            L.line(api, "INFO", "launcher.py:44", f"Route: {path}, Methods: {methods}")
        return sock, kv_server

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
            self.log.line(self.cfg.api_name, "INFO", "launcher.py:99",
                          "Shutting down FastAPI HTTP server.")
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
        config = uvicorn.Config(asgi, log_config=None, access_log=False, lifespan="off",
                                log_level="warning", timeout_graceful_shutdown=2)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-v"):
        print(VERSION)
        return 0
    if not argv or argv[0] != "serve":
        print("usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...",
              file=sys.stderr)
        cmd = argv[0] if argv else ""
        if cmd and cmd not in ("-h", "--help"):
            print(f"vllm: error: argument subparser: invalid choice: '{cmd}' (choose from "
                  "'chat', 'complete', 'serve', 'bench', 'collect-env', 'run-batch')",
                  file=sys.stderr)
        return 2
    try:
        args = parse_serve_args(argv[1:])
    except UsageError as e:
        print(USAGE, file=sys.stderr)
        print(f"vllm serve: error: {e}", file=sys.stderr)
        return 2
    cfg = make_config(args)
    return asyncio.run(Runner(cfg).main())


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

Choices made where vLLM's behaviour does not apply to a simulator, or is not documented:

- Flags: a fixed allowlist (the flags the runbook and samples use plus the common
  ``vllm serve`` flags, see `args.VALUE_FLAGS`/`args.BOOL_FLAGS`); ``_`` in flag names counts
  as ``-`` (vLLM's FlexibleArgumentParser does this); ``--no-X`` is accepted for each boolean
  X. Anything else exits 2 with ``vllm serve: error: unrecognized arguments: ...``. A JSON
  flag whose value is not JSON exits 2 with ``argument --X: invalid loads value: '...'``.
- The HTTP socket is bound before the engine starts (as vLLM 0.11 does), so a busy port fails
  at once with the ``OSError: [Errno 98] Address already in use`` traceback, exit 1.
- KV listener: LLMDataDistCMgrConnector listens on ``VLLM_ASCEND_LLMDD_RPC_PORT`` (5557) +
  dp_rank*tp, as vllm_ascend/distributed/llmdatadist_c_mgr_connector.py does
  (https://github.com/vllm-project/vllm-ascend); other connectors on ``kv_port`` +
  dp_rank*tp*pp. That port is ``remote_port`` in the prefiller's kv_transfer_params.
  Protocol: one JSON line ``{"op": "fetch", "request_id": ...}`` in, one JSON line (prompt,
  token ids, blocks) out.
- Faults: ``crash-on-start=TEXT`` picks a fingerprint from `crashes.CRASHES` (unknown TEXT: a
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

Modules: `args` (command line), `config` (flags + environment), `log` (log line formats),
`crashes` (crash fingerprints), `engine` (scheduling, prefix cache, metrics, KV hand-off),
`api` (HTTP routes), `runner` (start-up, serving, shutdown, `main`).
"""

from pdtui.sim.vllm.args import (
    DEFAULT_MODEL,
    VERSION,
    ServeArgs,
    UsageError,
    parse_command,
    parse_serve_args,
)
from pdtui.sim.vllm.config import Config, make_config, map_addr
from pdtui.sim.vllm.engine import Engine, GenRequest, RequestError
from pdtui.sim.vllm.runner import Runner, main

__all__ = [
    "DEFAULT_MODEL",
    "VERSION",
    "Config",
    "Engine",
    "GenRequest",
    "RequestError",
    "Runner",
    "ServeArgs",
    "UsageError",
    "main",
    "make_config",
    "map_addr",
    "parse_command",
    "parse_serve_args",
]

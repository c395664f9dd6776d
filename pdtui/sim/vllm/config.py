"""Configuration of one fake vLLM instance: its flags plus what the environment says.

Environment read here: ``PDTUI_SIM_LISTEN``, ``PDTUI_SIM_VLLM_SPEED``, ``PDTUI_SIM_STATE`` /
``PDTUI_SIM_NODE``, ``PDTUI_SIM_NODE_IP``, ``PDTUI_SIM_ADDR_MAP``, ``VLLM_HOST_IP``,
``HCCL_IF_IP`` and ``VLLM_ASCEND_LLMDD_RPC_PORT`` (see the package docstring).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from pdtui.sim import textgen
from pdtui.sim.vllm.args import ServeArgs

# --------------------------------------------------------------------------- environment


def _speed() -> float:
    try:
        return max(0.0, float(os.environ.get("PDTUI_SIM_VLLM_SPEED", "1")))
    except ValueError:
        return 1.0


def is_loopback(addr: str) -> bool:
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
    return target if is_loopback(target) else None


@dataclass
class SimNodeInfo:
    faults: list[tuple[str, str | None]] = field(default_factory=list)
    ip: str | None = None
    soc: str = "A3"


def load_node(node_name: str | None = None) -> SimNodeInfo:
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


def faults_of_ip(ip: str) -> list[tuple[str, str | None]]:
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


def find_fault(faults: list[tuple[str, str | None]], kind: str) -> tuple[bool, str | None]:
    for k, v in faults:
        if k == kind:
            return True, v
    return False, None


# --------------------------------------------------------------------------- logging


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
    node = load_node()
    host = str(args.get("host") or "0.0.0.0")
    listen = os.environ.get("PDTUI_SIM_LISTEN") or host
    ip = (
        os.environ.get("VLLM_HOST_IP")
        or os.environ.get("HCCL_IF_IP")
        or os.environ.get("PDTUI_SIM_NODE_IP")
        or node.ip
        or (listen if listen != "0.0.0.0" else "127.0.0.1")
    )
    return Config(
        args=args,
        pid=os.getpid(),
        listen=listen,
        ip=ip,
        speed=_speed(),
        soc=node.soc,
        faults=node.faults,
    )


# --------------------------------------------------------------------------- metrics

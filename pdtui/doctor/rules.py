"""The field's rules for a PD deployment, as a table: one small function per rule.

Each rule reads the resolved cluster (and, when the doctor is online, the nodes' live facts)
and yields findings. Adding a rule is one function, one ``RULES`` entry and one test.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import combinations

from pdtui.cluster import Cluster, Instance
from pdtui.doctor.model import Facts, Finding, Rule, Severity, issue, pull
from pdtui.text import count

Check = Callable[[Cluster, Facts], Iterator[Finding]]

VLLM_DISAGG = "https://docs.vllm.ai/en/latest/features/disagg_prefill.html"
VLLM_PARALLEL = "https://docs.vllm.ai/en/latest/serving/parallelism_scaling.html"
MOONCAKE_CONNECTOR = (
    "https://github.com/vllm-project/vllm-ascend/blob/main/"
    "vllm_ascend/distributed/mooncake_connector.py"
)
NIXL_HOST = "https://github.com/vllm-project/vllm/issues/27083"

ASCEND_BASE_PORT = 20000  # AscendDirectTransport's default base port
ASCEND_TRANSFER_TIMEOUT_MS = 10000  # its default transfer timeout
ENGINE_READY_DEFAULT_S = 600  # vLLM's VLLM_ENGINE_READY_TIMEOUT_S default
PROXY_VARS = ("http_proxy", "https_proxy")
PARITY_KEYS = (
    "served-model-name",
    "quantization",
    "dtype",
    "block-size",
    "kv-cache-dtype",
    "speculative-config",
    "trust-remote-code",
)


# --------------------------------------------------------------------------- helpers


def _connector(inst: Instance) -> str:
    return str(inst.kv_transfer.get("kv_connector", ""))


def _mooncake(inst: Instance) -> bool:
    return "mooncake" in _connector(inst).lower()


def _llmdatadist(inst: Instance) -> bool:
    """LLMDataDistCMgrConnector: its side channel is VLLM_ASCEND_LLMDD_RPC_PORT; it never reads
    kv_port (https://github.com/vllm-project/vllm-ascend/blob/v0.11.0/vllm_ascend/distributed/
    llmdatadist_c_mgr_connector.py), and its own single-node tutorial runs prefill and decode
    on one node without HCCL_INTRA_ROCE_ENABLE (https://github.com/vllm-project/vllm-ascend/
    blob/v0.11.0/docs/source/tutorials/single_node_pd_disaggregation_llmdatadist.md)."""
    return "llmdatadist" in _connector(inst).lower()


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 10:
        return int(value)
    return None


def _tp(inst: Instance) -> int:
    return _int(inst.serve.get("tensor-parallel-size")) or 1


def _pp(inst: Instance) -> int:
    return _int(inst.serve.get("pipeline-parallel-size")) or 1


def _dp_size(inst: Instance) -> int:
    """pdtui's ``dp`` table, else vLLM's own ``--data-parallel-size`` (one command that starts
    every local rank, as in vllm-ascend's multi-node PD tutorials)."""
    if inst.dp:
        return inst.dp.size
    return _int(inst.serve.get("data-parallel-size")) or 1


def _dp_local(inst: Instance) -> int:
    """The data-parallel ranks the instance runs on its node; vLLM's --data-parallel-size-local
    defaults to --data-parallel-size, and a process given --data-parallel-rank is one rank."""
    if inst.dp:
        return inst.dp.local
    if "data-parallel-rank" in inst.serve:
        return 1
    return _int(inst.serve.get("data-parallel-size-local")) or _dp_size(inst)


def _role(cluster: Cluster, role: str) -> list[Instance]:
    return [i for i in cluster.instances if i.role == role]


def _where(inst: Instance) -> str:
    return f"instance {inst.name}"


def _env(cluster: Cluster, facts: Facts, inst: Instance) -> dict[str, str]:
    """The environment the instance's processes will get: the node's login shell, then ours."""
    live = facts.nodes.get(inst.node)
    return {**(live.env if live else {}), **inst.env}


def _kv_ports(inst: Instance) -> range | None:
    """The ports the KV connector takes: one per local rank from ``kv_port``."""
    port = _int(inst.kv_transfer.get("kv_port"))
    if port is None or _llmdatadist(inst):
        return None
    return range(port, port + max(len(inst.devices), 1))


def _hit(
    rule: Rule, severity: Severity, where: str, message: str, fix: str = "", source: str = ""
) -> Finding:
    return Finding(rule.id, severity, where, message, fix or rule.fix, source or rule.source)


def _show(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


# --------------------------------------------------------------------------- rules


KV_PORT_RESERVED = Rule(
    "kv-port-reserved",
    "a Mooncake kv_port inside the ports AscendDirectTransport picks at random",
    "move kv_port to ASCEND_BASE_PORT + npus_per_node*1000 or above",
    pull(6455),
)


def kv_port_reserved(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for inst in cluster.instances:
        ports = _kv_ports(inst)
        if not _mooncake(inst) or ports is None:
            continue
        node = cluster.node(inst.node)
        base = _int(_env(cluster, facts, inst).get("ASCEND_BASE_PORT")) or ASCEND_BASE_PORT
        top = base + node.npus * 1000
        if ports.start < top and ports.stop > base:
            yield _hit(
                KV_PORT_RESERVED,
                "error",
                _where(inst),
                f"kv_port {ports.start} is inside [{base}, {top}), the range "
                f"AscendDirectTransport takes on a {node.npus}-NPU node",
                f"set kv_port to {top} or above",
            )


KV_PORT_OVERLAP = Rule(
    "kv-port-overlap",
    "two instances on one node whose kv_port ranges overlap (one port per local rank)",
    "give each instance on a node its own kv_port, at least its local rank count apart",
    MOONCAKE_CONNECTOR,
)


def kv_port_overlap(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for a, b in combinations(cluster.instances, 2):
        ra, rb = _kv_ports(a), _kv_ports(b)
        if a.node != b.node or ra is None or rb is None:
            continue
        if ra.start < rb.stop and rb.start < ra.stop:
            yield _hit(
                KV_PORT_OVERLAP,
                "error",
                _where(b),
                f"kv ports {ra.start}-{ra.stop - 1} of {a.name} and "
                f"{rb.start}-{rb.stop - 1} of {b.name} overlap on node {a.node}",
                f"set {b.name}'s kv_port to {ra.stop} or above",
            )


EXTRA_CONFIG = Rule(
    "extra-config-topology",
    "kv_connector_extra_config's prefill/decode dp_size and tp_size differ from the plan",
    "make kv_connector_extra_config describe the instances as planned",
    issue(9568),
)


def _planned(cluster: Cluster, role: str) -> dict[str, set[int]]:
    insts = _role(cluster, role)
    return {"dp_size": {_dp_size(i) for i in insts}, "tp_size": {_tp(i) for i in insts}}


def extra_config_topology(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for inst in cluster.instances:
        extra = inst.kv_transfer.get("kv_connector_extra_config")
        if not isinstance(extra, dict):
            continue
        for role in ("prefill", "decode"):
            said, planned = extra.get(role), _planned(cluster, role)
            if not isinstance(said, dict):
                continue
            for key, values in planned.items():
                got = _int(said.get(key))
                if got is not None and values and got not in values:
                    yield _hit(
                        EXTRA_CONFIG,
                        "error",
                        f"{_where(inst)} kv_connector_extra_config",
                        f"{role}.{key} = {got}, but the {role} instances have "
                        f"{key} {_show(sorted(values))}",
                        f"set {role}.{key} = {min(values)}",
                    )


TP_ORDER = Rule(
    "tp-order",
    "Mooncake with a prefill TP smaller than the decode TP",
    "use a prefill tensor-parallel-size greater than or equal to decode's",
    MOONCAKE_CONNECTOR,
)


def tp_order(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    prefill = [i for i in _role(cluster, "prefill") if _mooncake(i)]
    decode = [i for i in _role(cluster, "decode") if _mooncake(i)]
    for p in prefill:
        for d in decode:
            if _tp(p) < _tp(d):
                yield _hit(
                    TP_ORDER,
                    "error",
                    _where(p),
                    f"prefill TP {_tp(p)} is smaller than {d.name}'s TP {_tp(d)}; "
                    "the Mooncake connector requires prefill_tp_size >= decode_tp_size",
                )
                return


MAX_LEN = Rule(
    "max-model-len-parity",
    "prefill and decode with different max_model_len",
    "set the same max-model-len on prefill and decode",
    issue(15527),
)


def _values(cluster: Cluster, key: str) -> dict[str, dict[str, object]]:
    """``{role: {instance: value}}`` of one serve flag (missing = None)."""
    return {
        role: {i.name: i.serve.get(key) for i in _role(cluster, role)}
        for role in ("prefill", "decode")
    }


def _parity(cluster: Cluster, key: str) -> tuple[set[str], set[str]] | None:
    vals = _values(cluster, key)
    pre = {repr(v) for v in vals["prefill"].values()}
    dec = {repr(v) for v in vals["decode"].values()}
    if pre and dec and pre != dec:
        return pre, dec
    return None


def max_model_len_parity(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    diff = _parity(cluster, "max-model-len")
    if diff:
        yield _hit(
            MAX_LEN,
            "error",
            "[serve] max-model-len",
            f"prefill has {_show(sorted(diff[0]))}, decode has {_show(sorted(diff[1]))}: "
            "the decoder answers 400 to requests longer than its own limit",
        )


MODEL_PARITY = Rule(
    "model-parity",
    "prefill and decode serving different model settings (name, quantization, dtype, ...)",
    "use the same model settings on prefill and decode",
    VLLM_DISAGG,
)


def model_parity(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for key in PARITY_KEYS:
        diff = _parity(cluster, key)
        if diff:
            yield _hit(
                MODEL_PARITY,
                "error",
                f"[serve] {key}",
                f"prefill has {_show(sorted(diff[0]))}, decode has {_show(sorted(diff[1]))}",
            )


CONNECTOR_PARITY = Rule(
    "connector-parity",
    "prefill and decode using different KV connectors, or a kv_role that fits the other side",
    "use one kv_connector on both sides; kv_producer for prefill, kv_consumer for decode",
    VLLM_DISAGG,
)
_ROLE_OK = {"prefill": ("kv_producer", "kv_both"), "decode": ("kv_consumer", "kv_both")}


def connector_parity(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    names = {_connector(i) for i in cluster.instances if _connector(i)}
    if len(names) > 1:
        yield _hit(
            CONNECTOR_PARITY,
            "error",
            "kv_transfer kv_connector",
            f"instances use different connectors: {_show(sorted(names))}",
        )
    for inst in cluster.instances:
        role = inst.kv_transfer.get("kv_role")
        if isinstance(role, str) and role not in _ROLE_OK.get(inst.role, (role,)):
            yield _hit(
                CONNECTOR_PARITY,
                "error",
                f"{_where(inst)} kv_role",
                f"a {inst.role} instance with kv_role {role}",
            )


HTTP_PROXY = Rule(
    "http-proxy-env",
    "http_proxy/https_proxy set without a no_proxy that covers the cluster's addresses",
    "unset http_proxy/https_proxy for serving, or add every node address to no_proxy",
    issue(10226),
)


def _covered(address: str, no_proxy: str) -> bool:
    for entry in (e.strip() for e in no_proxy.split(",")):
        if entry in ("*", address):
            return True
        try:
            if ipaddress.ip_address(address) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _cluster_addresses(cluster: Cluster) -> list[str]:
    addrs = [n.ip for n in cluster.nodes]
    addrs += [i.dp.address for i in cluster.instances if i.dp]
    return list(dict.fromkeys(addrs))


def http_proxy_env(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for inst in cluster.instances:
        env = {k.lower(): v for k, v in _env(cluster, facts, inst).items()}
        proxy = [k for k in PROXY_VARS if env.get(k)]
        if not proxy:
            continue
        no_proxy = env.get("no_proxy", "")
        missing = [a for a in _cluster_addresses(cluster) if not _covered(a, no_proxy)]
        if missing:
            yield _hit(
                HTTP_PROXY,
                "error",
                _where(inst),
                f"{_show(proxy)} is set and no_proxy does not cover {_show(missing)}: "
                "traffic between nodes goes through the proxy",
                f"unset {_show(proxy)} or add {_show(missing)} to no_proxy",
            )


TIMEOUT_ORDER = Rule(
    "timeout-order",
    "MC_TRANSFER_TIMEOUT (seconds) not greater than ASCEND_TRANSFER_TIMEOUT (milliseconds)",
    "raise MC_TRANSFER_TIMEOUT above ASCEND_TRANSFER_TIMEOUT/1000 seconds",
    issue(7846),
)


def timeout_order(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for inst in cluster.instances:
        env = _env(cluster, facts, inst)
        mc = _int(env.get("MC_TRANSFER_TIMEOUT"))
        if mc is None:
            continue
        ascend = _int(env.get("ASCEND_TRANSFER_TIMEOUT")) or ASCEND_TRANSFER_TIMEOUT_MS
        if mc * 1000 <= ascend:
            yield _hit(
                TIMEOUT_ORDER,
                "error",
                _where(inst),
                f"MC_TRANSFER_TIMEOUT={mc} s is not greater than "
                f"ASCEND_TRANSFER_TIMEOUT={ascend} ms",
                f"set MC_TRANSFER_TIMEOUT to {ascend // 1000 + 1} or more",
            )


STARTUP_TIMEOUT = Rule(
    "startup-timeout",
    "a very large model with vLLM's default engine start-up timeout",
    "set VLLM_ENGINE_READY_TIMEOUT_S (and HCCL_CONNECT_TIMEOUT) to 1800 or more",
    issue(2416),
)
_BIG = re.compile(r"deepseek-?(v3|r1)|kimi-?k2|\b(\d{3,4})b\b|glm-?4\.5|qwen3-?235b", re.I)


def startup_timeout(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    model = f"{cluster.spec.model.path} {cluster.spec.model.served_name}"
    if not _BIG.search(model.replace("_", "-")):
        return
    for inst in cluster.instances:
        ready = _int(_env(cluster, facts, inst).get("VLLM_ENGINE_READY_TIMEOUT_S"))
        if (ready or ENGINE_READY_DEFAULT_S) < 1800:
            now = f"{ready} s" if ready else f"unset ({ENGINE_READY_DEFAULT_S} s)"
            yield _hit(
                STARTUP_TIMEOUT,
                "warning",
                _where(inst),
                f"VLLM_ENGINE_READY_TIMEOUT_S is {now} for a model this large: "
                "loading can take longer",
            )
            return


INTRA_ROCE = Rule(
    "intra-roce",
    "prefill and decode on one node (not an LLMDataDist pair) without HCCL_INTRA_ROCE_ENABLE=1",
    "set HCCL_INTRA_ROCE_ENABLE=1 on both instances",
    issue(4866),
)


def intra_roce(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for p in _role(cluster, "prefill"):
        for d in _role(cluster, "decode"):
            if p.node != d.node or (_llmdatadist(p) and _llmdatadist(d)):
                continue
            lacking = [
                i.name
                for i in (p, d)
                if _env(cluster, facts, i).get("HCCL_INTRA_ROCE_ENABLE") != "1"
            ]
            if lacking:
                yield _hit(
                    INTRA_ROCE,
                    "error",
                    f"node {p.node}",
                    f"{p.name} and {d.name} share the node; "
                    f"{_show(lacking)} lack HCCL_INTRA_ROCE_ENABLE=1",
                )


DEVICES = Rule(
    "devices-vs-parallel",
    "an instance's visible devices not equal to TP x PP x local DP",
    "give the instance exactly tensor x pipeline x local data parallel devices",
    VLLM_PARALLEL,
)


def devices_vs_parallel(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for inst in cluster.instances:
        local = _dp_local(inst)
        want = _tp(inst) * _pp(inst) * local
        if len(inst.devices) != want:
            yield _hit(
                DEVICES,
                "error",
                _where(inst),
                f"{count(len(inst.devices), 'device')}, but TP {_tp(inst)} x PP "
                f"{_pp(inst)} x "
                f"local DP {local} = {want}",
            )


NIXL = Rule(
    "nixl-side-channel",
    "NixlConnector on several nodes without VLLM_NIXL_SIDE_CHANNEL_HOST",
    "set VLLM_NIXL_SIDE_CHANNEL_HOST to the node's address on every instance",
    NIXL_HOST,
)


def nixl_side_channel(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for inst in cluster.instances:
        if "nixl" in _connector(inst).lower() and not _env(cluster, facts, inst).get(
            "VLLM_NIXL_SIDE_CHANNEL_HOST"
        ):
            yield _hit(NIXL, "warning", _where(inst), "VLLM_NIXL_SIDE_CHANNEL_HOST is not set")


# --------------------------------------------------------------------------- live rules


HCCN_CONF = Rule(
    "hccn-conf-missing",
    "the node's hccn.conf is missing where serving runs",
    "create it with hccn_tool, or mount /etc/hccn.conf into the container",
    issue(7711),
    live=True,
)


def hccn_conf_missing(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for node in cluster.nodes:
        live = facts.nodes.get(node.name)
        path = "/etc/hccn.conf" if node.container is not None else node.hccn_conf
        inside = f" in container {node.container.name}" if node.container is not None else ""
        if live and live.reachable and live.files.get(path) is False:
            yield _hit(
                HCCN_CONF,
                "error",
                f"node {node.name}",
                f"{path} does not exist{inside}: HCCL logs \"'device ip' is not set\" "
                "and answers come back garbled",
            )


MOONCAKE_LIBS = Rule(
    "mooncake-env",
    "Mooncake without /usr/local/lib on LD_LIBRARY_PATH or without jemalloc preloaded",
    "add /usr/local/lib to LD_LIBRARY_PATH and libjemalloc to LD_PRELOAD",
    issue(6949),
    live=True,
)


def mooncake_env(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for inst in cluster.instances:
        if not _mooncake(inst) or inst.node not in facts.nodes:
            continue
        env = _env(cluster, facts, inst)
        if "/usr/local/lib" not in env.get("LD_LIBRARY_PATH", "").split(":"):
            yield _hit(
                MOONCAKE_LIBS,
                "warning",
                _where(inst),
                "/usr/local/lib is not on LD_LIBRARY_PATH: importing the Mooncake "
                "transport can fail with 'ascend_transport.so: cannot open'",
            )
        if "jemalloc" not in env.get("LD_PRELOAD", ""):
            yield _hit(
                MOONCAKE_LIBS,
                "warning",
                _where(inst),
                "libjemalloc is not in LD_PRELOAD: importing mooncake can abort with "
                "'corrupted size vs. prev_size'",
                source=issue(5609),
            )


PORT_IN_USE = Rule(
    "port-in-use",
    "a port an instance or the proxy needs is already taken on its node",
    "stop what holds the port, or move the instance to a free port",
    issue(8938),
    live=True,
)


def _wanted_ports(cluster: Cluster) -> Iterator[tuple[str, str, int]]:
    for inst in cluster.instances:
        for proc in inst.processes:
            yield inst.node, proc.name, proc.port
        for port in _kv_ports(inst) or ():
            yield inst.node, f"{inst.name} kv", port
    proxy = cluster.spec.proxy
    if proxy:
        yield proxy.node, "proxy", proxy.port


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _taken(cluster: Cluster, node: str, port: int, listening: frozenset[tuple[str, int]]) -> bool:
    """Is ``port`` taken for a server on ``node``?

    vLLM and the proxy bind 0.0.0.0, which any listener on the port blocks. A node reached at
    a loopback address (a local or simulated node, whose servers bind that address) is blocked
    only by the wildcard address or its own.
    """
    n = cluster.node(node)
    if not _loopback(n.host):
        return any(p == port for _a, p in listening)
    return any(p == port and a in ("*", n.host, n.ip) for a, p in listening)


def port_in_use(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for node, owner, port in _wanted_ports(cluster):
        live = facts.nodes.get(node)
        name = owner.split(" ")[0].split(".")[0]
        if live and _taken(cluster, node, port, live.listening) and name not in facts.running:
            yield _hit(
                PORT_IN_USE, "error", f"node {node}", f"port {port} ({owner}) is already listening"
            )


NPU_HEALTH = Rule(
    "npu-unhealthy",
    "an instance on NPUs that failed the NPU check",
    "repair the links (pdtui check shows why) or move the instance to healthy devices",
    issue(9447),
    live=True,
)


def npu_unhealthy(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for inst in cluster.instances:
        live = facts.nodes.get(inst.node)
        bad = sorted(set(inst.devices) & live.failed_devices) if live else []
        if bad:
            yield _hit(
                NPU_HEALTH,
                "error",
                _where(inst),
                f"device{'s' if len(bad) > 1 else ''} {_show(bad)} failed the NPU check",
            )


UNREACHABLE = Rule(
    "node-unreachable",
    "a node that did not answer, so its live rules could not run",
    "check SSH access with 'pdtui nodes', and the container with 'pdtui containers status'",
    "https://man.openbsd.org/ssh",
    live=True,
)


def node_unreachable(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    for name, live in facts.nodes.items():
        if not live.reachable:
            yield _hit(UNREACHABLE, "warning", f"node {name}", live.error or "no answer")


RANKTABLE = Rule(
    "ranktable",
    "the legacy connector's ranktable: what `pdtui ranktable lint` finds, against the live NPU "
    "data, and every node's copy against the one the live data give",
    "generate and push the ranktable (pdtui ranktable generate/push, or F4: g, p)",
    "https://github.com/vllm-project/vllm-ascend/blob/v0.11.0rc0/examples/"
    "disaggregated_prefill_v1/gen_ranktable.py",
    live=True,
)


def ranktable(cluster: Cluster, facts: Facts) -> Iterator[Finding]:
    """The ranktable rules (pdtui.ranktable.lint) when the connector reads a ranktable."""
    from pdtui.ranktable import dumps, generate, lint

    if not facts.health or cluster.spec.ranktable is None:
        return
    rt = generate(cluster, facts.health)
    remote = {node: text for node, text in facts.ranktables.items()}
    for f in lint(rt, cluster, facts.health, remote or None, dumps(rt)):
        yield _hit(RANKTABLE, f.severity, f"ranktable {f.location}", f.message, f.fix)


RULES: tuple[tuple[Rule, Check], ...] = (
    (KV_PORT_RESERVED, kv_port_reserved),
    (KV_PORT_OVERLAP, kv_port_overlap),
    (EXTRA_CONFIG, extra_config_topology),
    (TP_ORDER, tp_order),
    (MAX_LEN, max_model_len_parity),
    (MODEL_PARITY, model_parity),
    (CONNECTOR_PARITY, connector_parity),
    (HTTP_PROXY, http_proxy_env),
    (TIMEOUT_ORDER, timeout_order),
    (STARTUP_TIMEOUT, startup_timeout),
    (INTRA_ROCE, intra_roce),
    (DEVICES, devices_vs_parallel),
    (NIXL, nixl_side_channel),
    (HCCN_CONF, hccn_conf_missing),
    (MOONCAKE_LIBS, mooncake_env),
    (PORT_IN_USE, port_in_use),
    (NPU_HEALTH, npu_unhealthy),
    (UNREACHABLE, node_unreachable),
    (RANKTABLE, ranktable),
)

#: The app view that shows (and fixes) a live finding; a finding not listed is fixed in the
#: cluster file at the key its ``where`` names.
VIEWS: dict[str, str] = {
    "hccn-conf-missing": "grid",
    "npu-unhealthy": "grid",
    "port-in-use": "launch",
    "node-unreachable": "overview",
}

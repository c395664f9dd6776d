"""Checks before a start, one SSH round trip per node; each failure says what to do.

Per node: the model path exists; each process's HTTP port (and the kv ports it will use) is
free; the ranktable is at its path when the connector reads one; no proxy variable leaks into
the environment (``http_proxy`` breaks vLLM's internal calls); ``HCCL_IF_IP`` / ``VLLM_HOST_IP``
are addresses of the node; the NIC named by ``*_SOCKET_IFNAME`` exists. Across the cluster: no
process pdtui started is still running on the same devices. A port counts as taken when a
connection to it on 127.0.0.1 or on one of the node's addresses succeeds (what a wildcard or
node-address listener answers; nothing leaves the node).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pdtui.cluster import Cluster, Node
from pdtui.cluster.spec import IFACE_RE, IFNAME_LIST_RE
from pdtui.launch.control import Launchable, launchables
from pdtui.launch.run import status
from pdtui.place import shell
from pdtui.ssh import SshError, SshPool
from pdtui.ssh.remote import target

Severity = Literal["error", "warning"]
_LEGACY = "LLMDataDistCMgrConnector"


@dataclass
class Problem:
    severity: Severity
    node: str
    process: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.node}/{self.process}" if self.process else self.node
        return f"{where}: {self.message} - {self.fix}"

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _kv_ports(item: Launchable, cluster: Cluster) -> list[int]:
    """kv ports the process will listen on (Mooncake: kv_port + rank offsets; LLMDataDist:
    VLLM_ASCEND_LLMDD_RPC_PORT, default 5557)."""
    inst = next(
        (
            i
            for i in cluster.instances
            if item.name == i.name or item.name.startswith(f"{i.name}.dp")
        ),
        None,
    )
    if inst is None or not inst.kv_transfer:
        return []
    if inst.kv_transfer.get("kv_connector") == _LEGACY:
        base = inst.env.get("VLLM_ASCEND_LLMDD_RPC_PORT", "5557")
        return [int(base)] if base.isdigit() else []
    port = str(inst.kv_transfer.get("kv_port", ""))
    return [int(port)] if port.isdigit() else []


def _nics(items: list[Launchable]) -> list[str]:
    """The plain interface names the processes' ``*_SOCKET_IFNAME`` values give (lists and
    ``^``/``=`` prefixes are left to the library that reads them)."""
    return sorted(
        {
            v
            for i in items
            for k, v in i.env.items()
            if k.endswith("SOCKET_IFNAME") and IFACE_RE.match(v)
        }
    )


def _bad_nic(value: str, facts: dict[str, str]) -> bool:
    """No such interface: not an interface name at all, or ``ip link`` does not know it."""
    if IFACE_RE.match(value):
        return facts.get(f"nic_{value}") == "no"
    return not IFNAME_LIST_RE.match(value)


def node_script(cluster: Cluster, node: Node, items: list[Launchable]) -> str:
    """Prints ``key=value`` facts for the node's checks."""
    q = shlex.quote
    lines = [
        'echo "addrs=$(hostname -I 2>/dev/null)"',
        f"test -e {q(cluster.model_path(node))} && echo model=yes || echo model=no",
        "env | grep -i -E '^(http|https|all)_proxy=' | sed 's/^/proxyenv=/'",
    ]
    if cluster.spec.ranktable is not None:
        path = cluster.ranktable_path(node)
        lines.append(f"test -s {q(path)} && echo ranktable=yes || echo ranktable=no")
    ports = sorted(
        {int(i.url.rsplit(":", 1)[1]) for i in items}
        | {p for i in items for p in _kv_ports(i, cluster)}
    )
    # Listening sockets from `ss` (nothing is sent); without ss, a connect to 127.0.0.1 only
    # (what a wildcard listener answers). Never a connect to another address.
    lines.append("LISTEN=$(ss -Hltn 2>/dev/null | awk '{print $4}') || LISTEN=")
    lines.append("HAVE_SS=no; command -v ss >/dev/null 2>&1 && HAVE_SS=yes")
    for port in ports:
        lines.append(
            f'busy=no; if [ $HAVE_SS = yes ]; then for l in $LISTEN; do case "$l" in '
            f'*:{port}) a=${{l%:{port}}}; a=${{a#[}}; a=${{a%]}}; case " 0.0.0.0 * :: '
            f'127.0.0.1 $(hostname -I 2>/dev/null) " in *" $a "*) busy=yes;; esac;; '
            f"esac; done; else (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && busy=yes; "
            f"fi; echo port{port}=$busy"
        )
    for nic in _nics(items):  # names only (IFACE_RE): safe in the echo as well
        lines.append(
            f"ip -o link show dev {q(nic)} >/dev/null 2>&1 && echo {q('nic_' + nic)}"
            f"=yes || echo {q('nic_' + nic)}=no"
        )
    return "\n".join(lines) + "\n"


async def check_node(
    pool: SshPool, cluster: Cluster, node: Node, items: list[Launchable]
) -> list[Problem]:
    try:
        res = await pool.run(
            target(node),
            shell(node),
            input=node_script(cluster, node, items),
            timeout=node.ssh.command_timeout,
            label=f"preflight for {', '.join(i.name for i in items)}",
        )
    except SshError as exc:
        return [
            Problem(
                "error",
                node.name,
                None,
                f"unreachable: {exc.message}",
                "fix SSH access first (pdtui nodes)",
            )
        ]
    facts, proxy_env = _facts(res.stdout)
    out = _node_problems(cluster, node, items, facts, proxy_env)
    addrs = facts.get("addrs", "").split()
    for item in items:
        out += _env_problems(node, item, addrs, facts)
        out += _port_problems(cluster, node, item, facts)
    return list({str(p): p for p in out}.values())


def _facts(stdout: str) -> tuple[dict[str, str], list[str]]:
    """``key=value`` lines of :func:`node_script`, and the proxy variables it found."""
    facts: dict[str, str] = {}
    proxy_env: list[str] = []
    for line in stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "proxyenv":
            proxy_env.append(value.split("=", 1)[0])
        else:
            facts[key] = value
    return facts, proxy_env


def _node_problems(
    cluster: Cluster,
    node: Node,
    items: list[Launchable],
    facts: dict[str, str],
    proxy_env: list[str],
) -> list[Problem]:
    """The model, the ranktable and the login environment."""
    out: list[Problem] = []
    vllm_items = [i for i in items if i.role != "proxy"]
    if vllm_items and facts.get("model") == "no":
        out.append(
            Problem(
                "error",
                node.name,
                None,
                f"model path {cluster.model_path(node)} does not exist",
                "copy the weights there or fix [model] path",
            )
        )
    if (
        vllm_items
        and facts.get("ranktable") == "no"
        and any(
            i.kv_transfer.get("kv_connector") == _LEGACY
            for i in cluster.instances
            if i.node == node.name
        )
    ):
        out.append(
            Problem(
                "error",
                node.name,
                None,
                f"no ranktable at {cluster.ranktable_path(node)}",
                "generate and push it: pdtui ranktable generate/push (F4: g, p)",
            )
        )
    for name in proxy_env:
        out.append(
            Problem(
                "warning",
                node.name,
                None,
                f"{name} is set in the login environment",
                "unset it for vLLM (internal HTTP calls go through the proxy)",
            )
        )
    return out


def _env_problems(
    node: Node, item: Launchable, addrs: list[str], facts: dict[str, str]
) -> list[Problem]:
    """Proxy variables, host addresses and NIC names in the process's environment."""
    out: list[Problem] = []
    for key in item.env:
        if key.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            out.append(
                Problem(
                    "warning",
                    node.name,
                    item.name,
                    f"{key} is set in [env]",
                    "remove it: vLLM's internal calls must not use a proxy",
                )
            )
    for ip_key in ("HCCL_IF_IP", "VLLM_HOST_IP"):
        ip_value = item.env.get(ip_key)
        if ip_value and addrs and ip_value not in addrs:
            out.append(
                Problem(
                    "error",
                    node.name,
                    item.name,
                    f"{ip_key}={ip_value} is not an address of the node "
                    f"(hostname -I: {' '.join(addrs)})",
                    "set the node's ip in the cluster file to its data-plane address",
                )
            )
    for key, value in item.env.items():
        if key.endswith("SOCKET_IFNAME") and value and _bad_nic(value, facts):
            out.append(
                Problem(
                    "error",
                    node.name,
                    item.name,
                    f"{key}={value}: no such interface on the node",
                    "set nic in the cluster file to an interface of 'ip -o link'",
                )
            )
    return out


def _port_problems(
    cluster: Cluster, node: Node, item: Launchable, facts: dict[str, str]
) -> list[Problem]:
    """The HTTP port and the kv ports, taken by something already listening."""
    out: list[Problem] = []
    port = int(item.url.rsplit(":", 1)[1])
    if facts.get(f"port{port}") == "yes":
        out.append(
            Problem(
                "error",
                node.name,
                item.name,
                f"port {port} is already in use",
                "stop what listens there (ss -ltnp) or change the port",
            )
        )
    for kv in _kv_ports(item, cluster):
        if facts.get(f"port{kv}") == "yes":
            out.append(
                Problem(
                    "error",
                    node.name,
                    item.name,
                    f"kv port {kv} is already in use",
                    "give each instance its own kv_port (>= 36000 on 16-NPU nodes)",
                )
            )
    return out


async def preflight(
    pool: SshPool, cluster: Cluster, only: Iterable[str] | None = None
) -> list[Problem]:
    """Every check for the selected processes, all nodes at once."""
    items = launchables(cluster, only)
    by_node: dict[str, list[Launchable]] = {}
    for item in items:
        by_node.setdefault(item.node, []).append(item)
    boxed = await asyncio.gather(
        *(_container_problems(pool, cluster, cluster.node(n)) for n in by_node)
    )
    broken = {p.node for ps in boxed for p in ps if p.message.startswith("container ")}
    results = await asyncio.gather(
        *(
            check_node(pool, cluster, cluster.node(n), its)
            for n, its in by_node.items()
            if n not in broken
        )
    )
    problems = _doctor_problems(cluster, items)
    problems += [p for r in boxed for p in r] + [p for r in results for p in r]
    problems += await _busy_devices(pool, cluster, items)
    return problems


async def _container_problems(pool: SshPool, cluster: Cluster, node: Node) -> list[Problem]:
    """The node's container, checked from inside (one exec): exists and runs, mounts,
    devices, tools, vLLM installed. A container that does not run is the only problem
    reported for its node (the other checks would run inside it)."""
    if node.container is None:
        return []
    from pdtui import containers

    st = await containers.status(pool, cluster, node)
    path = str(cluster.path) if cluster.path else "CLUSTER"
    return [
        Problem(sev, node.name, None, msg, fix.replace("CLUSTER", path))  # type: ignore[arg-type]
        for sev, msg, fix in containers.findings(
            node, st, mooncake=containers.uses_mooncake(cluster, node)
        )
    ]


def _doctor_problems(cluster: Cluster, items: list[Launchable]) -> list[Problem]:
    """The deployment doctor's errors that concern the selected processes (file rules only:
    the live facts are this preflight's own checks)."""
    from pdtui.doctor import examine

    instances = {i.name: i.node for i in cluster.instances}
    chosen = {item.name.split(".")[0] for item in items}
    out: list[Problem] = []
    for f in examine(cluster):
        kind, _, name = f.where.partition(" ")
        name = name.split(" ")[0]
        if f.severity != "error" or (kind == "instance" and name not in chosen):
            continue
        node = instances.get(name, name) if kind in ("instance", "node") else cluster.name
        process = name if kind == "instance" else None
        out.append(Problem("error", node, process, f"{f.id}: {f.message}", f.fix))
    return out


async def _busy_devices(pool: SshPool, cluster: Cluster, items: list[Launchable]) -> list[Problem]:
    """A process pdtui started that is still running on a device a new one would use."""
    from pdtui.launch.plan import plan_cluster

    devices = {p.name: (p.node, set(p.devices)) for p in plan_cluster(cluster)}
    wanted = [i for i in items if i.name in devices]
    out: list[Problem] = []
    running = await asyncio.gather(
        *(status(pool, cluster.node(i.node), cluster.name, i.name) for i in wanted)
    )
    for item, st in zip(wanted, running, strict=True):
        if st.state == "running":
            node, devs = devices[item.name]
            out.append(
                Problem(
                    "error",
                    node,
                    item.name,
                    f"already running (pid {st.pid}) on devices {','.join(map(str, sorted(devs)))}",
                    "stop it first (pdtui stop --only " + item.name + ")",
                )
            )
    return out

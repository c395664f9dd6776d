"""Live facts for the doctor: one batched, read-only script per node over SSH.

The script prints the login shell's environment (what a launched process inherits), the TCP
ports something listens on (from ``/proc/net/tcp*``, state 0A), whether each path the rules
need exists, and the serving packages' versions. Nothing it prints is trusted: the output is
capped, parsed line by line, and anything that does not parse is ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
from collections.abc import Callable, Iterable

from pdtui.cluster import Cluster, Node
from pdtui.doctor.model import Facts, NodeFacts
from pdtui.ssh import SshError, SshPool
from pdtui.ssh.remote import target

MAX_OUTPUT = 1 << 20  # a node's answer beyond this is not read
PACKAGES = ("vllm", "vllm_ascend", "torch_npu", "mooncake-transfer-engine")
_VERSIONS = (
    "import importlib.metadata as m\n"
    f"for p in {PACKAGES!r}:\n"
    "    try: print('ver', p, m.version(p))\n"
    "    except Exception: pass\n"
)


def node_script(node: Node, paths: Iterable[str], python: str = "python3") -> str:
    """The read-only script the doctor runs on ``node``."""
    tests = "".join(
        f"if [ -e {shlex.quote(p)} ]; then echo 'file 1 '{shlex.quote(p)}; "
        f"else echo 'file 0 '{shlex.quote(p)}; fi\n"
        for p in paths
    )
    return (
        "env | sed 's/^/env /'\n"
        'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk \'$4=="0A"{print "tcp " $2}\'\n'
        + tests
        + f"{shlex.quote(python)} -c {shlex.quote(_VERSIONS)} 2>/dev/null\n"
        "true\n"
    )


def _address(hexaddr: str) -> str | None:
    """``/proc/net/tcp``'s address (32-bit words in host order, little-endian here) as text;
    ``*`` for the wildcard address."""
    try:
        raw = bytes.fromhex(hexaddr)
    except ValueError:
        return None
    if len(raw) not in (4, 16):
        return None
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if not any(ordered):
        return "*"
    return str(ipaddress.ip_address(ordered))


def _listener(field: str) -> tuple[str, int] | None:
    hexaddr, _, hexport = field.rpartition(":")
    try:
        port = int(hexport, 16)
    except ValueError:
        return None
    address = _address(hexaddr)
    return (address, port) if address and 0 < port < 65536 else None


def parse_node(name: str, text: str) -> NodeFacts:
    """Parse the script's answer; lines that do not fit are skipped."""
    facts = NodeFacts(name)
    ports: set[tuple[str, int]] = set()
    for line in text[:MAX_OUTPUT].splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "env" and "=" in rest:
            key, _, value = rest.partition("=")
            facts.env[key] = value
        elif kind == "tcp" and (listener := _listener(rest)) is not None:
            ports.add(listener)
        elif kind == "file" and rest[:2] in ("0 ", "1 "):
            facts.files[rest[2:]] = rest[0] == "1"
        elif kind == "ver" and len(rest.split(" ")) == 2:
            pkg, version = rest.split(" ")
            facts.versions[pkg] = version
    facts.listening = frozenset(ports)
    return facts


def hccn_conf_path(node: Node) -> str:
    """Where serving reads hccn.conf: the node's own path, or /etc/hccn.conf in its container."""
    return "/etc/hccn.conf" if node.container is not None else node.hccn_conf


def _paths(cluster: Cluster, node: Node) -> list[str]:
    return [hccn_conf_path(node), cluster.model_path(node)]


async def node_facts(pool: SshPool, cluster: Cluster, node: Node) -> NodeFacts:
    """The node's facts where serving runs: its login shell, or inside its container (the
    environment, files and packages that vLLM will really get)."""
    from pdtui.place import wrap

    script = node_script(node, _paths(cluster, node))
    command = (
        wrap(node, script, sh="bash")
        if node.container is not None
        else shlex.join(["bash", "-c", script])
    )
    try:
        result = await pool.run(target(node), command, label="doctor facts")
    except SshError as exc:
        return NodeFacts(node.name, reachable=False, error=str(exc))
    if result.exit_status != 0 and not result.stdout.strip():
        where = f"container {node.container.name}" if node.container else "the login shell"
        why = (result.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return NodeFacts(node.name, reachable=False, error=f"{where}: {why}")
    return parse_node(node.name, result.stdout)


async def gather(
    pool: SshPool,
    cluster: Cluster,
    *,
    failed_devices: dict[str, frozenset[int]] | None = None,
    running: Iterable[str] = (),
    on_node: Callable[[NodeFacts], None] | None = None,
) -> Facts:
    """Every node's facts, asked at once; ``on_node`` is told as each node answers."""

    async def one(node: Node) -> NodeFacts:
        facts = await node_facts(pool, cluster, node)
        facts.failed_devices = (failed_devices or {}).get(node.name, frozenset())
        if on_node is not None:
            on_node(facts)
        return facts

    answers = await asyncio.gather(*(one(n) for n in cluster.nodes))
    return Facts(nodes={f.node: f for f in answers}, running=frozenset(running))


def failed_devices(report_nodes: Iterable[object]) -> dict[str, frozenset[int]]:
    """``{node: devices whose NPU check state is fail}`` from a check report's nodes."""
    out: dict[str, frozenset[int]] = {}
    for node in report_nodes:
        devices = getattr(node, "devices", [])
        out[str(getattr(node, "name", ""))] = frozenset(
            d.id for d in devices if getattr(d, "state", None) == "fail"
        )
    return out


async def running_names(pool: SshPool, cluster: Cluster) -> list[str]:
    """Names (and instance names) of the processes pdtui runs now: only their pid records
    are read, not their logs (the ports of a running process are its own)."""
    from pdtui.launch.control import launchables
    from pdtui.launch.run import status

    items = launchables(cluster)
    found = await asyncio.gather(
        *(status(pool, cluster.node(i.node), cluster.name, i.name) for i in items)
    )
    live = [i.name for i, st in zip(items, found, strict=True) if st.state == "running"]
    return live + [name.split(".")[0] for name in live]


async def collect(
    pool: SshPool,
    cluster: Cluster,
    *,
    npu: bool = True,
    check_nodes: Iterable[object] | None = None,
    on_node: Callable[[NodeFacts], None] | None = None,
) -> Facts:
    """Live facts: each node's script, the NPU check and what pdtui already runs.

    ``check_nodes`` (a check report's nodes) is used instead of a new NPU check; with neither
    it nor ``npu``, no device counts as failed.
    """
    from pdtui.npu.health import check

    async def npu_nodes() -> list[object]:
        if check_nodes is not None:
            return list(check_nodes)
        return list((await check(pool, cluster)).nodes) if npu else []

    nodes, names, copies = await asyncio.gather(
        npu_nodes(), running_names(pool, cluster), _ranktables(pool, cluster)
    )
    facts = await gather(
        pool, cluster, failed_devices=failed_devices(nodes), running=names, on_node=on_node
    )
    facts.health = {str(getattr(n, "name", "")): n for n in nodes}
    facts.ranktables = copies
    return facts


async def _ranktables(pool: SshPool, cluster: Cluster) -> dict[str, str | None]:
    """Each instance node's ranktable copy, when the connector reads one (unreachable nodes
    are left out)."""
    from pdtui.runbook import needs_ranktable

    if not needs_ranktable(cluster):
        return {}
    from pdtui.ranktable.sync import fetch_all

    return {c.node: c.text for c in await fetch_all(pool, cluster) if c.state != "unreachable"}

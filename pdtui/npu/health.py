"""NPU network health of a whole cluster: one probe round trip per node, then pings.

``sweep`` probes every node at once (each node's script runs its own checks in parallel) and
reports each node as soon as it answers; ``pings`` then has every device ping its peers on the
other nodes (``-hccs_ping`` to vNIC IPs on A3, ``-ping`` to RoCE IPs on A2). ``check`` does both
and classifies the result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pdtui.cluster import Cluster, Node
from pdtui.npu.classify import classify_cluster
from pdtui.npu.model import DeviceHealth, NodeHealth, PingResult, Raw, worst
from pdtui.npu.parse import node_from_raw, ping_from_raw
from pdtui.npu.probe import (
    Frame,
    ProbeSpec,
    build_script,
    framed_script,
    job_commands,
    new_nonce,
    parse_frames,
    ping_jobs,
)
from pdtui.ssh import SshError, SshPool
from pdtui.ssh.remote import target
from pdtui.text import count

PingMode = Literal["peers", "all"]


@dataclass
class CheckReport:
    """A finished check: every node (classified) and, if asked, every ping."""

    cluster: str
    nodes: list[NodeHealth]
    pings: list[PingResult] = field(default_factory=list)
    started_at: float = 0.0
    seconds: float = 0.0

    @property
    def state(self) -> str:
        return worst(n.state for n in self.nodes)

    def to_dict(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "state": self.state,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "nodes": [n.to_dict() for n in self.nodes],
            "pings": [p.to_dict() for p in self.pings],
        }


def _spec(node: Node, cap: int, timeout: int) -> ProbeSpec:
    return ProbeSpec(
        node.soc,
        tuple(range(node.npus)),
        node.hccn_tool,
        node.npu_smi,
        node.hccn_conf,
        cap=cap,
        timeout=timeout,
    )


def _unreachable(node: Node, error: str, taken_at: float) -> NodeHealth:
    return NodeHealth(
        name=node.name,
        soc=node.soc,
        reachable=False,
        error=error,
        devices=[DeviceHealth(id=i) for i in range(node.npus)],
        taken_at=taken_at,
    )


def health_from_frames(
    node: Node, frames: list[Frame], spec: ProbeSpec, taken_at: float
) -> NodeHealth:
    """Turn one node's probe frames into an (unclassified) ``NodeHealth``."""
    commands = job_commands(spec)
    tool_names = {
        node.hccn_tool.rsplit("/", 1)[-1]: "hccn_tool",
        node.npu_smi.rsplit("/", 1)[-1]: "npu-smi",
    }
    tools: dict[str, bool] = {}
    node_raw: dict[str, Raw] = {}
    device_raw: dict[int, dict[str, Raw]] = {i: {} for i in spec.devices}
    for f in frames:
        if f.key.startswith("tool."):
            name = f.key.removeprefix("tool.")
            tools[tool_names.get(name, name)] = f.rc == 0
            continue
        raw = Raw(commands.get(f.key, f.key), f.rc, f.stdout, f.stderr)
        scope, _, check = f.key.partition(".")
        if scope == "n":
            node_raw[check] = raw
        elif scope.startswith("d") and scope[1:].isdigit():
            device_raw.setdefault(int(scope[1:]), {})[check] = raw
    return node_from_raw(node.name, node.soc, node_raw, device_raw, tools=tools, taken_at=taken_at)


async def probe_node(
    pool: SshPool,
    node: Node,
    *,
    cap: int = 16,
    timeout: int = 20,
    clock: Callable[[], float] = time.time,
) -> NodeHealth:
    """Run the batched probe on one node; never raises for node trouble."""
    spec = _spec(node, cap, timeout)
    commands = job_commands(spec)
    nonce = new_nonce()
    taken_at = clock()
    try:
        result = await pool.run(
            target(node),
            "bash -s",
            input=build_script(spec, nonce),
            timeout=timeout + node.ssh.command_timeout,
            label=f"NPU probe: {count(len(spec.devices), 'device')}, {len(commands)} tool calls",
        )
    except SshError as exc:
        return _unreachable(node, exc.message, taken_at)
    # A polled node usually prints exactly what it printed last time: then its parsed health
    # is the same too, and only the time it was taken changes.
    key, seen = (node.name, spec), result.stdout.replace(nonce, "")
    last = _LAST_PROBE.get(key)
    if last is not None and last[0] == seen:
        return dataclasses.replace(last[1], taken_at=taken_at)
    frames = parse_frames(result.stdout.encode(), nonce)
    if not frames:
        why = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exit_status}"]
        return _unreachable(node, f"probe script failed: {why[0][:200]}", taken_at)
    health = health_from_frames(node, frames, spec, taken_at)
    if len(_LAST_PROBE) >= 1024:
        _LAST_PROBE.clear()
    _LAST_PROBE[key] = (seen, health)
    return health


#: Each node's last probe output (nonce removed) and its parsed, unclassified health. Only
#: ``probe_node`` hands these out, as shallow copies that callers classify into new objects.
_LAST_PROBE: dict[tuple[str, ProbeSpec], tuple[str, NodeHealth]] = {}


async def sweep(
    pool: SshPool,
    cluster: Cluster,
    *,
    cap: int = 16,
    timeout: int = 20,
    on_node: Callable[[NodeHealth], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[NodeHealth]:
    """Probe every node at once; ``on_node`` sees each node (classified alone) as it lands.

    Returns the nodes classified together (cross-node rules such as TLS consistency).
    """
    results: dict[str, NodeHealth] = {}

    async def one(node: Node) -> None:
        health = await probe_node(pool, node, cap=cap, timeout=timeout, clock=clock)
        results[node.name] = health
        if on_node is not None:
            on_node(classify_cluster([health])[0])

    await asyncio.gather(*(one(n) for n in cluster.nodes))
    return classify_cluster([results[n.name] for n in cluster.nodes])


@dataclass(frozen=True)
class PlannedPing:
    src_node: str
    src_dev: int
    dst_node: str
    dst_dev: int
    kind: Literal["ping", "hccs_ping"]
    address: str


def plan_pings(
    cluster: Cluster, nodes: list[NodeHealth], mode: PingMode = "peers"
) -> list[PlannedPing]:
    """Who pings whom: each device its peers on every other node.

    ``peers``: device i pings device i of every other node (the runbook's cross-node step, done
    for every node pair). ``all``: every device pings every device of every other node.
    A3 uses ``-hccs_ping`` to vNIC IPs, only within a super pod (HCCS does not cross one);
    A2 ``-ping`` to RoCE IPs. Devices whose address is not known are left out (they are
    already marked unknown or failed).
    """
    by_name = {n.name: n for n in nodes if n.reachable}
    plan: list[PlannedPing] = []
    for src in cluster.nodes:
        sh = by_name.get(src.name)
        if sh is None:
            continue
        for dst in cluster.nodes:
            dh = by_name.get(dst.name)
            if dst.name != src.name and dh is not None:
                plan += _pair_pings(sh, dh, "hccs_ping" if src.soc == "A3" else "ping", mode)
    return plan


def _pair_pings(
    sh: NodeHealth, dh: NodeHealth, kind: Literal["ping", "hccs_ping"], mode: PingMode
) -> list[PlannedPing]:
    """The pings from the devices of ``sh`` to those of ``dh``."""
    plan = []
    peers = {d.id: d for d in dh.devices}
    for sd in sh.devices:
        targets = [peers.get(sd.id)] if mode == "peers" else list(peers.values())
        for td in targets:
            if td is None:
                continue
            if kind == "hccs_ping" and not _same_pod(sd.super_pod_id, td.super_pod_id):
                continue  # HCCS does not leave a super pod
            address = td.vnic_ip if kind == "hccs_ping" else td.ip
            if address:
                plan.append(PlannedPing(sh.name, sd.id, dh.name, td.id, kind, address))
    return plan


def _same_pod(a: int | None, b: int | None) -> bool:
    """Same super pod, or not known (then try: the ping result will say)."""
    return a is None or b is None or a == b


async def pings(
    pool: SshPool,
    cluster: Cluster,
    nodes: list[NodeHealth],
    *,
    mode: PingMode = "peers",
    count: int = 3,
    cap: int = 16,
    timeout: int = 20,
) -> list[PingResult]:
    """Run the planned pings, one batched script per source node, all nodes at once."""
    plan = plan_pings(cluster, nodes, mode)
    out: list[PingResult] = []

    async def one(node: Node) -> None:
        mine = [p for p in plan if p.src_node == node.name]
        if not mine:
            return
        jobs = ping_jobs([(p.src_dev, p.kind, p.address) for p in mine], node.hccn_tool, count)
        nonce = new_nonce()
        script = framed_script(jobs, nonce, tools=[node.hccn_tool], cap=cap, timeout=timeout)
        commands = {key: " ".join(argv) for key, argv in jobs}
        try:
            result = await pool.run(
                target(node),
                "bash -s",
                input=script,
                label=f"{len(jobs)} pings to peers",
                timeout=timeout * (len(jobs) // max(cap, 1) + 1) + node.ssh.command_timeout,
            )
            frames = {f.key: f for f in parse_frames(result.stdout.encode(), nonce)}
        except SshError as exc:
            frames = {}
            error = exc.message
        else:
            error = "no output for this ping"
        for i, p in enumerate(mine):
            f = frames.get(f"p{i}")
            raw = (
                Raw(commands[f"p{i}"], f.rc, f.stdout, f.stderr)
                if f is not None
                else Raw(commands[f"p{i}"], None, "", error)
            )
            out.append(
                ping_from_raw(
                    p.src_node,
                    p.src_dev,
                    p.dst_node,
                    p.dst_dev,
                    p.address,
                    raw,
                    "hccs" if p.kind == "hccs_ping" else "roce",
                )
            )

    await asyncio.gather(*(one(n) for n in cluster.nodes))
    return out


async def check(
    pool: SshPool,
    cluster: Cluster,
    *,
    ping: bool = False,
    ping_mode: PingMode = "peers",
    cap: int = 16,
    timeout: int = 20,
    on_node: Callable[[NodeHealth], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> CheckReport:
    """The whole runbook section: probe every node, optionally ping, classify."""
    started = clock()
    t0 = time.monotonic()
    nodes = await sweep(pool, cluster, cap=cap, timeout=timeout, on_node=on_node, clock=clock)
    results: list[PingResult] = []
    if ping:
        results = await pings(pool, cluster, nodes, mode=ping_mode, cap=cap, timeout=timeout)
        nodes = classify_cluster(nodes, results)
    return CheckReport(cluster.name, nodes, results, started, time.monotonic() - t0)

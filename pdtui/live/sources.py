"""What the pollers ask the cluster, and how the answers land in the live model.

Each function is one poll: NPU health of the nodes that are due (a node that did not answer is
backed off), every process's status, each node's ranktable copy, the proxy and its backends.
``pollers`` puts them on their intervals.
"""

from __future__ import annotations

import asyncio

from pdtui.cluster import Cluster
from pdtui.launch.control import ProcessStatus, launchables, process_status
from pdtui.live.model import Backend, LiveModel
from pdtui.live.poll import Poller
from pdtui.npu.classify import classify_cluster
from pdtui.npu.health import probe_node
from pdtui.ssh import SshPool


async def poll_npu(
    pool: SshPool, cluster: Cluster, model: LiveModel, *, cap: int = 16, timeout: int = 20
) -> None:
    """Probe the nodes that are due; classify them with the others' last samples."""
    due = [n for n in cluster.nodes if model.node_due(n.name)]
    if not due:
        return
    fresh = await asyncio.gather(
        *(probe_node(pool, n, cap=cap, timeout=timeout, clock=model.clock) for n in due)
    )
    names = {n.name for n in due}
    kept = [s.health for name, s in model.npu.items() if name not in names]
    classified = classify_cluster([*fresh, *kept])
    model.apply_npu([h for h in classified if h.name in names])


async def poll_processes(pool: SshPool, cluster: Cluster, model: LiveModel) -> None:
    """Every process's status, skipping nodes that are backed off."""
    items = [i for i in launchables(cluster) if model.node_due(i.node)]
    found: list[ProcessStatus] = list(
        await asyncio.gather(*(process_status(pool, cluster, i) for i in items))
    )
    for node in {p.node for p in found}:
        errors = [p.run.error for p in found if p.node == node and p.run.state == "unknown"]
        model.apply_reach(node, errors[0] if errors and errors[0] else None)
    model.apply_processes(p for p in found if p.run.state != "unknown")


async def poll_ranktable(pool: SshPool, cluster: Cluster, model: LiveModel) -> None:
    from pdtui.ranktable.sync import fetch_all, instance_nodes

    if cluster.spec.ranktable is None:
        return
    nodes = [n for n in instance_nodes(cluster) if model.node_due(n.name)]
    model.apply_copies(await fetch_all(pool, cluster, None, nodes))


async def poll_proxy(pool: SshPool, cluster: Cluster, model: LiveModel) -> None:
    from pdtui.console import EndpointHealth, health_report

    def backend(e: EndpointHealth) -> Backend:
        if e.error is not None:
            return Backend(e.name, False, e.error)
        if e.backend is None:
            proxy = e.proxy or {}
            err = proxy.get("error")
            return Backend(e.name, err is None, str(err) if err else "answers /healthcheck")
        h = e.backend
        return Backend(e.name, h.ok, f"{e.where}: {'up' if h.ok else h.error}")

    report = await health_report(pool, cluster, timeout=5.0)
    model.apply_proxy(backend(e) for e in report.entries)


def pollers(
    pool: SshPool, cluster: Cluster, model: LiveModel, *, intervals: dict[str, float] | None = None
) -> list[Poller]:
    """The four pollers with their default intervals (NPU 15 s, processes 3 s, ranktable
    30 s, proxy 10 s), overridable by name."""
    every = {"npu": 15.0, "processes": 3.0, "ranktable": 30.0, "proxy": 10.0, **(intervals or {})}

    return [
        Poller(
            "npu", every["npu"], lambda: poll_npu(pool, cluster, model), frozenset({"npu", "nodes"})
        ),
        Poller(
            "processes",
            every["processes"],
            lambda: poll_processes(pool, cluster, model),
            frozenset({"processes", "runbook"}),
        ),
        Poller(
            "ranktable",
            every["ranktable"],
            lambda: poll_ranktable(pool, cluster, model),
            frozenset({"ranktable"}),
        ),
        Poller(
            "proxy", every["proxy"], lambda: poll_proxy(pool, cluster, model), frozenset({"proxy"})
        ),
    ]

"""``pdtui containers CLUSTER [up|status|down]``: the serving container of every node."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from pdtui.cli.common import EXIT_CONFIG, EXIT_FINDINGS, EXIT_OK, add_host_key_flag, err

if TYPE_CHECKING:
    from pdtui.cluster import Cluster, Node
    from pdtui.containers import Result, Status


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML) with a [defaults.container] table")
    p.add_argument(
        "action",
        nargs="?",
        choices=("up", "status", "down"),
        default="status",
        help="up: create or start (never pulls); status (default): state, mounts, "
        "devices and versions inside; down: stop and remove managed containers",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print each node's `docker run` (as the tutorial writes it); no SSH",
    )
    p.add_argument("--only", nargs="+", metavar="NODE", help="only these nodes")
    p.add_argument(
        "--recreate",
        action="store_true",
        help="up: remove and create a running managed container again",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_host_key_flag(p)


def _nodes(cluster: Cluster, only: list[str] | None) -> list[Node] | None:
    names = [n.name for n in cluster.nodes]
    bad = [o for o in only or [] if o not in names]
    if bad:
        err(f"--only: unknown node {', '.join(repr(b) for b in bad)} (nodes: {', '.join(names)})")
        return None
    nodes = [n for n in cluster.nodes if not only or n.name in only]
    boxed = [n for n in nodes if n.container is not None]
    if not boxed:
        err(
            f"{ns_source(cluster)}: no [defaults.container] or [nodes.container] table for "
            f"{', '.join(n.name for n in nodes)}: serving runs in the login shell; add the table "
            "to run it in a container (README, section Containers)"
        )
        return None
    return boxed


def ns_source(cluster: Cluster) -> str:
    return str(cluster.path) if cluster.path else cluster.name


def _dry_run(nodes: list[Node]) -> int:
    from pdtui.containers import dry_run_text

    for node in nodes:
        box = node.container
        assert box is not None
        print(f"# {node.name} ({node.host}): {box.mode} container {box.name}")
        if box.managed:
            print(dry_run_text(node))
        else:
            print(f"# adopted: pdtui only runs `{box.cli} exec {box.name} ...` in it")
        print()
    return EXIT_OK


def _result_line(r: Result) -> str:
    mark = "ok  " if r.ok else "FAIL"
    return f"{mark} {r.node:<14} {r.container:<20} {r.action:<10} {r.message}"


def _status_lines(s: Status, cluster: Cluster, path: str) -> list[str]:
    """The node's line, what is inside, and each problem with its fix."""
    from pdtui.containers import VERSION_KEYS, findings, format_uptime, uses_mooncake

    mark = "ok  " if s.ok else "FAIL"
    lines = [
        f"{mark} {s.node:<14} {s.container:<20} {s.state:<9} {s.mode:<8} "
        f"up {format_uptime(s.uptime_s):<7} {s.image}"
    ]
    if s.state == "running" and not s.error:
        present = sum(s.mounts.values()) + sum(s.devices.values())
        tools = "  ".join(f"{t} {'ok' if ok else 'FAILS'}" for t, ok in s.tools.items())
        lines.append(
            f"       inside: {present}/{len(s.mounts) + len(s.devices)} required "
            f"paths present  {tools}"
        )
        lines.append("       " + "  ".join(f"{k} {s.versions.get(k, '-')}" for k in VERSION_KEYS))
    node = cluster.node(s.node)
    for _, message, fix in findings(node, s, mooncake=uses_mooncake(cluster, node)):
        lines += [f"       ✗ {message}", f"         → {fix.replace('CLUSTER', path)}"]
    return lines


def run(ns: argparse.Namespace) -> int:
    import asyncio

    from pdtui import containers as ct
    from pdtui.cli.common import load_or_report
    from pdtui.ssh.remote import pool_for

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    nodes = _nodes(cluster, ns.only)
    if nodes is None:
        return EXIT_CONFIG
    if ns.dry_run:
        return _dry_run(nodes)

    def shown(item: Result | Status) -> None:
        if ns.json:
            return
        lines = (
            [_result_line(item)]
            if isinstance(item, ct.Result)
            else _status_lines(item, cluster, ns.cluster)
        )
        print("\n".join(lines), flush=True)

    async def main() -> list[Result | Status]:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:

            async def work(node: Node) -> Result | Status:
                if ns.action == "up":
                    return await ct.up(pool, node, recreate=ns.recreate)
                if ns.action == "down":
                    return await ct.down(pool, node)
                return await ct.status(pool, cluster, node)

            if not ns.json:
                print(f"{ns.action}: {len(nodes)} node(s) ...", flush=True)
            return await ct.each(nodes, work, shown)

    results = asyncio.run(main())
    if ns.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FINDINGS

"""``pdtui launch CLUSTER``: start prefill, decode and proxy on their nodes (detached)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pdtui.cli.common import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_OK,
    add_only_args,
    cluster_and_only,
    err,
)

if TYPE_CHECKING:
    from pdtui.cluster import Cluster
    from pdtui.launch.control import ProcessStatus
    from pdtui.ssh import SshPool


def add_args(p: argparse.ArgumentParser) -> None:
    add_only_args(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print each process's script (the runbook's shape) and start nothing",
    )
    p.add_argument(
        "--wait", action="store_true", help="wait until every process is ready or one fails"
    )
    p.add_argument("--timeout", type=float, default=1800, help="with --wait (default 1800 s)")
    p.add_argument(
        "--force", action="store_true", help="start even if the preflight checks find errors"
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="stop the selected processes first (restart = stop + start)",
    )


def _dry_run(cluster: Cluster, only: list[str] | None) -> int:
    from pdtui.launch.control import launchables
    from pdtui.launch.plan import render_script

    for i in launchables(cluster, only):  # the shebang on line 1: each is a script as is
        print(render_script(i.env, i.argv, comment=f"{i.name} on {i.node} ({i.url})"))
    return EXIT_OK


async def _preflight_ok(pool: SshPool, cluster: Cluster, ns: argparse.Namespace) -> bool:
    from pdtui.launch.preflight import preflight

    problems = await preflight(pool, cluster, ns.only)
    for p in problems:
        print(f"{'✗' if p.severity == 'error' else '!'} preflight: {p}")
    if any(p.severity == "error" for p in problems) and not ns.force:
        err("not started: fix the preflight errors above, or use --force")
        return False
    return True


async def _start(cluster: Cluster, ns: argparse.Namespace) -> int:
    from pdtui.cli.status import print_status
    from pdtui.launch.control import launch, stop_all
    from pdtui.ssh.remote import pool_for

    async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
        if ns.restart:
            for name, result in (await stop_all(pool, cluster, ns.only)).items():
                print(f"  stop {name}: {result}")
        if not await _preflight_ok(pool, cluster, ns):
            return EXIT_FINDINGS
        started = await launch(pool, cluster, ns.only)
        for s in started:
            if s.error:
                print(f"✗ {s.name:<16} on {s.node}: {s.error}")
            else:
                print(f"✓ {s.name:<16} on {s.node}: pid {s.pid}  (log {s.dir}/out.log)")
        if any(s.error for s in started):
            return EXIT_FINDINGS
        if not ns.wait:
            return EXIT_OK
        final = await _wait(pool, cluster, ns)
        print_status([s.to_dict() for s in final])
        return EXIT_OK if all(s.state == "ready" for s in final) else EXIT_FINDINGS


async def _wait(
    pool: SshPool,
    cluster: Cluster,
    ns: argparse.Namespace,
) -> list[ProcessStatus]:
    """Wait for every process, printing each stage as a process reaches it."""
    from pdtui.cli.progress import Progress
    from pdtui.launch.control import launchables, wait_ready

    progress = Progress()
    seen: dict[str, str] = {}

    def on_poll(current: list[ProcessStatus]) -> None:
        summary = "  ".join(f"{p.name} {p.stage or p.state}" for p in current)
        for p in current:
            now = p.state if p.state in ("failed", "stopped") else (p.stage or p.state)
            if seen.get(p.name) != now:
                seen[p.name] = now
                progress.stage(f"{p.name}: {now}", summary)

    count = len(launchables(cluster, ns.only))
    progress.line(
        f"waiting for {count} process{'es' if count != 1 else ''} to be ready "
        f"(at most {ns.timeout:.0f} s)"
    )
    async with progress.ticking():
        final = await wait_ready(pool, cluster, ns.only, timeout=ns.timeout, on_poll=on_poll)
    progress.line(
        f"{progress.elapsed():>5} "
        + ("all ready" if all(s.state == "ready" for s in final) else "not all ready")
    )
    return final


def run(ns: argparse.Namespace) -> int:
    import asyncio

    cluster = cluster_and_only(ns)
    if cluster is None:
        return EXIT_CONFIG
    if ns.dry_run:
        return _dry_run(cluster, ns.only)
    return asyncio.run(_start(cluster, ns))

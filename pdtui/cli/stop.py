"""``pdtui stop CLUSTER``: stop what pdtui started (TERM, then KILL after --grace)."""

from __future__ import annotations

import argparse

from pdtui.cli.common import EXIT_CONFIG, EXIT_FINDINGS, EXIT_OK, add_only_args, cluster_and_only


def add_args(p: argparse.ArgumentParser) -> None:
    add_only_args(p)
    p.add_argument(
        "--grace", type=int, default=30, help="seconds between TERM and KILL (default 30)"
    )


def run(ns: argparse.Namespace) -> int:
    import asyncio

    from pdtui.launch.control import stop_all
    from pdtui.ssh.remote import pool_for

    cluster = cluster_and_only(ns)
    if cluster is None:
        return EXIT_CONFIG

    async def stop() -> dict[str, str]:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            return await stop_all(pool, cluster, ns.only, grace=ns.grace)

    results = asyncio.run(stop())
    for name, result in results.items():
        print(f"{name:<16} {result}")
    bad = [r for r in results.values() if r.startswith("error") or r == "pid-reused"]
    return EXIT_FINDINGS if bad else EXIT_OK

"""``pdtui logs CLUSTER NAME``: print (and follow) a process's log."""

from __future__ import annotations

import argparse
import sys

from pdtui.cli.common import EXIT_CONFIG, EXIT_OK, add_host_key_flag, err, load_or_report


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("name", help="process name (see 'pdtui status') or 'proxy'")
    p.add_argument("-f", "--follow", action="store_true", help="keep following")
    p.add_argument("-n", "--lines", type=int, default=200, help="last N lines (default 200)")
    add_host_key_flag(p)


def run(ns: argparse.Namespace) -> int:
    import asyncio

    from pdtui.launch.control import launchables
    from pdtui.launch.run import run_dir, tail
    from pdtui.ssh.remote import pool_for

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    items = {i.name: i for i in launchables(cluster)}
    if ns.name not in items:
        err(f"{ns.name!r}: no such process (processes: {', '.join(items)})")
        return EXIT_CONFIG
    item = items[ns.name]
    node = cluster.node(item.node)
    path = run_dir(node, cluster.name, item.name) + "/out.log"

    async def follow() -> int:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            async for line in tail(pool, node, path, follow=ns.follow, start_lines=ns.lines):
                sys.stdout.write(line.text + "\n")
                sys.stdout.flush()
        return EXIT_OK

    try:
        return asyncio.run(follow())
    except KeyboardInterrupt:
        return EXIT_OK

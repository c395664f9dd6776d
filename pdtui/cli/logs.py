"""``pdtui logs CLUSTER NAME [--plog]``: print (and follow) a process's log, or its CANN
logs (the plog)."""

from __future__ import annotations

import argparse
import sys

from pdtui.cli.common import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_OK,
    add_host_key_flag,
    err,
    load_or_report,
)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("name", help="process name (see 'pdtui status') or 'proxy'")
    p.add_argument("-f", "--follow", action="store_true", help="keep following")
    p.add_argument("-n", "--lines", type=int, default=200, help="last N lines (default 200)")
    p.add_argument("--plog", action="store_true",
                   help="this run's CANN logs (ASCEND_PROCESS_LOG_PATH) instead of stdout; "
                   "with -f, follow the newest")
    p.add_argument("--raw", action="store_true",
                   help="print the log's bytes as they are (escape sequences reach the terminal)")
    add_host_key_flag(p)


def run(ns: argparse.Namespace) -> int:
    import asyncio

    from pdtui.launch.control import launchables, plog_base, read_plogs
    from pdtui.launch.run import run_dir, tail
    from pdtui.ssh.remote import pool_for
    from pdtui.text import printable as escaped

    def printable(text: str) -> str:
        return text if ns.raw else escaped(text)

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
        nonlocal path
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            if ns.plog:
                files = await read_plogs(pool, cluster, item, ns.lines)
                if not files:
                    err(f"{item.name}: no CANN log of this run in {plog_base(cluster, item)}"
                        "/debug (CANN writes one when a process uses the NPU)")
                    return EXIT_FINDINGS
                if not ns.follow:
                    for name, lines in files:
                        print(printable(f"==> {name} <=="))
                        print("\n".join(printable(x) for x in lines))
                    return EXIT_OK
                path = files[-1][0]
                err(printable(f"following {path}"))
            async for line in tail(pool, node, path, follow=ns.follow, start_lines=ns.lines):
                sys.stdout.write(printable(line.text) + "\n")
                sys.stdout.flush()
        return EXIT_OK

    try:
        return asyncio.run(follow())
    except KeyboardInterrupt:
        return EXIT_OK

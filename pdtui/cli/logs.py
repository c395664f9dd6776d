"""``pdtui logs CLUSTER NAME [--plog]``: print (and follow) a process's log, or its CANN
logs (the plog)."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from pdtui.cli.common import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_OK,
    add_host_key_flag,
    err,
    load_or_report,
)

if TYPE_CHECKING:
    from pdtui.cluster import Cluster
    from pdtui.launch.control import Launchable
    from pdtui.launch.run import LogLine
    from pdtui.ssh import SshPool


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("name", help="process name (see 'pdtui status') or 'proxy'")
    p.add_argument("-f", "--follow", action="store_true", help="keep following")
    p.add_argument("-n", "--lines", type=int, default=200, help="last N lines (default 200)")
    p.add_argument(
        "--plog",
        action="store_true",
        help="this run's CANN logs (ASCEND_PROCESS_LOG_PATH) instead of stdout; "
        "with -f, follow the newest",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="print the log's bytes as they are (escape sequences reach the terminal)",
    )
    add_host_key_flag(p)


async def _until_exit(
    pool: SshPool, cluster: Cluster, item: Launchable, path: str, lines: AsyncIterator[LogLine]
) -> AsyncIterator[LogLine]:
    """``lines`` of a followed log until its process is no longer running and the log's end
    (its size then) has been passed, or nothing came for 2 s after that (an unfinished last
    line): ``-f`` on a process that has exited ends by itself."""
    from pdtui.launch.run import shell_path, status
    from pdtui.place import wrap
    from pdtui.ssh.remote import target

    node = cluster.node(item.node)

    async def log_end() -> int:
        while (await status(pool, node, cluster.name, item.name)).state == "running":
            await asyncio.sleep(1.0)
        res = await pool.run(target(node), wrap(node, f"wc -c < {shell_path(path)}"), timeout=30)
        size = res.stdout.strip()
        return int(size) if size.isdigit() else 0

    end, stop_at = 0, None
    poller = asyncio.create_task(log_end())
    nxt = asyncio.ensure_future(anext(lines))
    try:
        while True:
            waiting = {nxt} if poller.done() else {nxt, poller}
            done, _ = await asyncio.wait(
                waiting,
                timeout=None if stop_at is None else 2.0,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if poller in done and stop_at is None:
                stop_at = poller.result()
            if nxt not in done:
                if not done or end >= (stop_at or 0):
                    return
                continue
            try:
                line = nxt.result()
            except StopAsyncIteration:
                return
            yield line
            end = line.offset
            if stop_at is not None and end >= stop_at:
                return
            nxt = asyncio.ensure_future(anext(lines))
    finally:
        for task in (poller, nxt):
            task.cancel()
        await asyncio.gather(poller, nxt, return_exceptions=True)
        close = getattr(lines, "aclose", None)  # tail's generator: its remote tail ends
        if close is not None:
            await close()


def run(ns: argparse.Namespace) -> int:
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
                    err(
                        f"{item.name}: no CANN log of this run in {plog_base(cluster, item)}"
                        "/debug (CANN writes one when a process uses the NPU)"
                    )
                    return EXIT_FINDINGS
                if not ns.follow:
                    for name, lines in files:
                        print(printable(f"==> {name} <=="))
                        print("\n".join(printable(x) for x in lines))
                    return EXIT_OK
                path = files[-1][0]
                err(printable(f"following {path}"))
            stream = tail(pool, node, path, follow=ns.follow, start_lines=ns.lines)
            if ns.follow:  # ends once the process has exited and its log is read
                stream = _until_exit(pool, cluster, item, path, stream)
            async for line in stream:
                sys.stdout.write(printable(line.text) + "\n")
                sys.stdout.flush()
            if ns.follow:
                err(
                    f"{item.name} is not running: that was the end of its log "
                    f"(see 'pdtui status {shlex.quote(ns.cluster)} --only {item.name}')"
                )
        return EXIT_OK

    try:
        return asyncio.run(follow())
    except KeyboardInterrupt:
        return EXIT_OK

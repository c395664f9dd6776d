"""``pdtui check CLUSTER``: the NPU network of every node (hccn_tool, npu-smi; --ping for peers).

SSH, the probes and the report are imported after the arguments are parsed, so a usage error
or ``--help`` costs no more than argparse.
"""

from __future__ import annotations

import argparse
import sys
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
    from pdtui.live import LiveModel
    from pdtui.npu.health import CheckReport


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("--json", action="store_true", help="print every parsed value and raw output")
    p.add_argument(
        "--ping", action="store_true", help="also ping every device's peers on the other nodes"
    )
    p.add_argument(
        "--ping-all",
        action="store_true",
        help="with --ping: every device pings every device of the other nodes "
        "(default: device i pings device i)",
    )
    p.add_argument(
        "--watch", type=float, metavar="SECONDS", help="repeat every SECONDS until ctrl+c"
    )
    p.add_argument(
        "--cap", type=int, default=16, help="devices probed at once on each node (default 16)"
    )
    p.add_argument(
        "--tool-timeout", type=int, default=20, help="seconds one tool call may take (default 20)"
    )
    add_host_key_flag(p)


def _failed(report: CheckReport) -> bool:
    return any(d.state in ("fail", "unknown") for n in report.nodes for d in n.devices) or any(
        not n.reachable for n in report.nodes
    )


def _show(report: CheckReport, ns: argparse.Namespace, color: bool) -> None:
    if ns.json:
        import json

        print(json.dumps(report.to_dict()), flush=True)
        return
    import time

    from pdtui.npu.report import render

    if ns.watch is not None and color:
        print("\x1b[H\x1b[2J", end="")
    stamp = time.strftime("%H:%M:%S")
    print(render(report, color=color) + (f"\n[{stamp}]" if ns.watch else ""), flush=True)


def watched(model: LiveModel, cluster: Cluster, report: CheckReport) -> CheckReport:
    """What ``--watch`` shows: the live model's NPU samples (the app's own picture), fed
    with ``report``; pings are dropped when the health under them changed."""
    from pdtui.npu.health import CheckReport

    model.apply_npu(report.nodes, pings=report.pings if report.pings else None)
    nodes = [model.npu[n.name].health for n in cluster.nodes if n.name in model.npu]
    return CheckReport(cluster.name, nodes, list(model.pings), report.started_at, report.seconds)


async def _sweeps(cluster: Cluster, ns: argparse.Namespace, color: bool) -> int:
    import asyncio

    from pdtui.npu.health import check
    from pdtui.ssh.remote import pool_for

    model = None
    if ns.watch is not None:  # a single check does not load the live model
        from pdtui.live import LiveModel

        model = LiveModel()
    async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
        while True:
            report = await check(
                pool,
                cluster,
                ping=ns.ping,
                ping_mode="all" if ns.ping_all else "peers",
                cap=ns.cap,
                timeout=ns.tool_timeout,
            )
            if model is not None:
                report = watched(model, cluster, report)
            _show(report, ns, color)
            if ns.watch is None:
                return EXIT_FINDINGS if _failed(report) else EXIT_OK
            await asyncio.sleep(ns.watch)


def run(ns: argparse.Namespace) -> int:
    import asyncio
    import os

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    if ns.cap < 1 or ns.tool_timeout < 1 or (ns.watch is not None and ns.watch <= 0):
        err("pdtui check: --cap, --tool-timeout and --watch must be positive")
        return EXIT_CONFIG
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    try:
        return asyncio.run(_sweeps(cluster, ns, color))
    except KeyboardInterrupt:
        return EXIT_OK

"""``pdtui doctor CLUSTER``: the field's known mistakes, caught before launch.

Exit 0 with no errors, 1 with any, 2 on usage or cluster-file errors. ``--json`` prints
``{"findings": [{"id", "severity", "where", "message", "fix", "source"}]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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
    from pdtui.doctor import Facts, Finding, NodeFacts


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument(
        "--offline", action="store_true", help="check the cluster file only; ask the nodes nothing"
    )
    p.add_argument(
        "--no-npu",
        action="store_true",
        help="skip the NPU check among the live facts (it takes a sweep)",
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    add_host_key_flag(p)


def _live(cluster: Cluster, ns: argparse.Namespace) -> Facts:
    import asyncio

    from pdtui.doctor.facts import collect
    from pdtui.ssh.remote import pool_for

    started = time.monotonic()
    answered: list[str] = []
    total = len(cluster.nodes)

    def progress(facts: NodeFacts) -> None:
        answered.append(facts.node)
        mark = "answered" if facts.reachable else f"did not answer: {facts.error}"
        err(
            f"doctor: {len(answered)}/{total} {facts.node} {mark} "
            f"({time.monotonic() - started:.1f} s)"
        )

    async def run() -> Facts:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            return await collect(pool, cluster, npu=not ns.no_npu, on_node=progress)

    if not ns.json:
        what = "NPU check, processes and node facts" if not ns.no_npu else "node facts"
        err(f"doctor: asking {total} node{'s' if total != 1 else ''} ({what}) ...")
    return asyncio.run(run())


def _print(findings: list[Finding]) -> None:
    for f in findings:
        print(f.line())
        print(f"    fix: {f.fix}")
        print(f"    see: {f.source}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    print(
        f"{errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )


def run(ns: argparse.Namespace) -> int:
    from pdtui.doctor import Facts, examine, has_errors

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    facts = Facts() if ns.offline else _live(cluster, ns)
    findings = examine(cluster, facts)
    if ns.json:
        json.dump({"findings": [f.to_dict() for f in findings]}, sys.stdout, indent=2)
        print()
    else:
        _print(findings)
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK

"""``pdtui nodes CLUSTER``: reach every node over SSH and check its identity (hostname -I)."""

from __future__ import annotations

import argparse

from pdtui.cli.common import EXIT_CONFIG, EXIT_FINDINGS, EXIT_OK, add_host_key_flag, load_or_report


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_host_key_flag(p)


def run(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    from pdtui.ssh.nodes import reach_all
    from pdtui.text import printable

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    results = asyncio.run(reach_all(cluster, accept_new=ns.accept_new_host_keys))
    bad = [r for r in results if not r.reachable or r.findings]
    if ns.json:
        print(
            json.dumps({"cluster": cluster.name, "nodes": [r.to_dict() for r in results]}, indent=2)
        )
        return EXIT_FINDINGS if bad else EXIT_OK
    for r in results:
        if r.reachable:
            mark = "✓" if not r.findings else "!"
            ips = " ".join(r.addresses)
            print(
                printable(
                    f"{mark} {r.name:<12} {r.address:<28} {r.hostname or '?':<14} {ips}"
                    f"  ({r.seconds * 1000:.0f} ms)"
                )
            )
        else:
            print(printable(f"✗ {r.name:<12} {r.address:<28} {r.error}"))
        for f in r.findings:
            print(printable(f"    {f}"))
    ok = len(results) - len(bad)
    print(f"{ok}/{len(results)} nodes reachable and consistent")
    return EXIT_FINDINGS if bad else EXIT_OK

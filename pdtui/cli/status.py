"""``pdtui status CLUSTER``: state, startup stage and known errors of every process."""

from __future__ import annotations

import argparse

from pdtui.cli.common import EXIT_CONFIG, EXIT_FINDINGS, EXIT_OK, add_only_args, cluster_and_only


def add_args(p: argparse.ArgumentParser) -> None:
    add_only_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def _out(text: str) -> None:
    """Print a line holding node text (log lines, errors) with control characters shown."""
    from pdtui.text import printable

    print(printable(text))


def _unknown(r: dict[str, object]) -> bool:
    """The node did not tell (no pid, no exit status, an error): not known to have failed."""
    return bool(r.get("error")) and r.get("pid") is None and r.get("exit_status") is None


def _print_details(r: dict[str, object]) -> None:
    stages = r.get("stages")
    if isinstance(stages, dict) and stages:
        _out("    " + "  ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
    stats = r.get("stats")
    if isinstance(stats, dict):
        _out(f"    running {stats['running']}  waiting {stats['waiting']}  "
              f"kv cache {stats['kv_cache_pct']:.1f}%  "
              f"gen {stats['generation_tps']:.1f} tok/s")
    error = r.get("error")
    if error:
        unknown = _unknown(r)
        _out(f"    cannot tell its state: {error}" if unknown else f"    {error}")
        if unknown:
            _out("    → check SSH access to the node with 'pdtui nodes CLUSTER'")
    fingerprints = r["fingerprints"]
    assert isinstance(fingerprints, list)
    for f in fingerprints:
        where = f" ({f.get('source')} line {f.get('lineno')})" if f.get("source") else ""
        _out(f"    {f['meaning']}{where}: {f['line']}")
        _out(f"    → {f['hint']}")


def print_status(rows: list[dict[str, object]]) -> None:
    """One line per process, then its stage times, load and known errors."""
    marks = {"ready": "✓", "starting": "◌", "stopped": "·", "failed": "✗"}
    for r in rows:
        stage = r["stage"] or "-"
        pid = str(r["pid"] or "-")
        if r.get("host_pid"):
            pid += f" (host {r['host_pid']})"
        state = "unknown" if _unknown(r) else str(r["state"])
        _out(f"{marks.get(state, '?')} {r['name']:<16} {r['role']:<8} "
              f"{r['node']:<12} {state:<9} stage {stage:<9} pid {pid:<8} {r['url']}")
        if str(r.get("where", "host")) != "host":
            _out(f"    runs in {r['where']}")
        _print_details(r)


def run(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    from pdtui.launch.control import statuses
    from pdtui.ssh.remote import pool_for

    cluster = cluster_and_only(ns)
    if cluster is None:
        return EXIT_CONFIG

    async def fetch() -> list[dict[str, object]]:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            return [s.to_dict() for s in await statuses(pool, cluster, ns.only)]

    rows = asyncio.run(fetch())
    if ns.json:
        print(json.dumps({"cluster": cluster.name, "processes": rows}, indent=2))
    else:
        print_status(rows)
    return EXIT_FINDINGS if any(r["state"] == "failed" for r in rows) else EXIT_OK

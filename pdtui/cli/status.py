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


def _stage_group(stage: str, members: list[tuple[str, float | None]]) -> str:
    """``kv_cache 12.0s on EngineCore_DP1`` or ``weights on 16 (Worker_DP0_TP0 …
    Worker_DP0_TP15) 9.8-12.3s``."""
    times = [t for _n, t in members if t is not None]
    low, high = (f"{min(times):.1f}", f"{max(times):.1f}") if times else ("", "")
    when = "" if not times else f" {low}s" if low == high else f" {low}-{high}s"
    if len(members) == 1:
        return f"{stage}{when} on {members[0][0]}"
    names = [n for n, _t in members]
    who = ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"
    return f"{stage} on {len(names)} ({who}){when}"


def rank_line(ranks: list[dict[str, object]]) -> str:
    """The DP ranks of one log, grouped by the stage each reached, the slowest first:
    ``4 DP ranks: kv_cache on 2 (DP1, DP3) 60.1-60.3s; graphs on 2 (DP0, DP2) 64.0-64.3s``."""
    from pdtui.launch.logs.stages import STAGE_ORDER

    by_stage: dict[str, list[tuple[str, float | None]]] = {}
    for r in ranks:
        stage, stages = str(r["stage"]), r["stages"]
        t = stages.get(stage) if isinstance(stages, dict) else None
        by_stage.setdefault(stage, []).append((str(r["name"]), t))
    slowest_first = sorted(by_stage, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else -1)
    return f"    {len(ranks)} DP ranks: " + "; ".join(
        _stage_group(s, by_stage[s]) for s in slowest_first
    )


def _print_details(r: dict[str, object]) -> None:
    stages = r.get("stages")
    if isinstance(stages, dict) and stages:
        _out("    " + "  ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
    ranks = r.get("ranks")
    if isinstance(ranks, list) and len(ranks) > 1:
        _out(rank_line(ranks))
    stats = r.get("stats")
    if isinstance(stats, dict):
        _out(
            f"    running {stats['running']}  waiting {stats['waiting']}  "
            f"kv cache {stats['kv_cache_pct']:.1f}%  "
            f"gen {stats['generation_tps']:.1f} tok/s"
        )
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
        _out(
            f"{marks.get(state, '?')} {r['name']:<16} {r['role']:<8} "
            f"{r['node']:<12} {state:<9} stage {stage:<9} pid {pid:<8} {r['url']}"
        )
        if str(r.get("where", "host")) != "host":
            _out(f"    runs in {r['where']}")
        _print_details(r)


def print_instances(summaries: list[dict[str, object]]) -> None:
    """The overall line of each instance run as several processes (DP ranks)."""
    for s in summaries:
        failed = s["failed"]
        behind = s["behind"]
        line = (
            f"{s['name']}: {s['processes']} DP processes, {s['ready']} ready, overall {s['state']}"
        )
        if s["stage"] and s["state"] != "ready":
            line += f", slowest at {s['stage']}"
        if isinstance(behind, list) and behind and s["state"] != "ready":
            line += f"; behind: {', '.join(behind)}"
        if isinstance(failed, list) and failed:
            line += f"; failed: {', '.join(failed)}"
        _out(line)


def run(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    from pdtui.launch.control import ProcessStatus, instance_summaries, statuses
    from pdtui.ssh.remote import pool_for

    cluster = cluster_and_only(ns)
    if cluster is None:
        return EXIT_CONFIG

    async def fetch() -> list[ProcessStatus]:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            return await statuses(pool, cluster, ns.only)

    found = asyncio.run(fetch())
    rows = [s.to_dict() for s in found]
    summaries = instance_summaries(found)
    if ns.json:
        print(
            json.dumps(
                {"cluster": cluster.name, "processes": rows, "instances": summaries}, indent=2
            )
        )
    else:
        print_status(rows)
        print_instances(summaries)
    return EXIT_FINDINGS if any(r["state"] == "failed" for r in rows) else EXIT_OK

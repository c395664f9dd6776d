"""``pdtui launch|status|stop|logs``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from pdtui.cli import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_OK,
    add_host_key_flag,
    err,
    load_or_report,
    register,
)
from pdtui.cluster import Cluster
from pdtui.launch.control import (
    launch,
    launchables,
    statuses,
    stop_all,
    unknown_names,
    wait_ready,
)
from pdtui.launch.preflight import preflight
from pdtui.launch.run import run_dir, tail
from pdtui.ssh.remote import pool_for


def _cluster_and_only(ns: argparse.Namespace) -> Cluster | None:
    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return None
    only = getattr(ns, "only", None)
    if only:
        bad = unknown_names(cluster, only)
        if bad:
            names = ", ".join(i.name for i in launchables(cluster))
            err(f"--only: unknown {', '.join(repr(b) for b in bad)} (processes: {names}; "
                "or an instance name, 'prefill', 'decode', 'proxy')")
            return None
    return cluster


def _only_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="process, instance, role (prefill/decode) or 'proxy'")
    add_host_key_flag(p)


def _print_status(rows: list[dict[str, object]]) -> None:
    marks = {"ready": "✓", "starting": "◌", "stopped": "·", "failed": "✗"}
    for r in rows:
        stage = r["stage"] or "-"
        pid = r["pid"] or "-"
        print(f"{marks.get(str(r['state']), '?')} {r['name']:<16} {r['role']:<8} "
              f"{r['node']:<12} {r['state']:<9} stage {stage:<9} pid {pid:<8} {r['url']}")
        stages = r.get("stages")
        if isinstance(stages, dict) and stages:
            print("    " + "  ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
        stats = r.get("stats")
        if isinstance(stats, dict):
            print(f"    running {stats['running']}  waiting {stats['waiting']}  "
                  f"kv cache {stats['kv_cache_pct']:.1f}%  "
                  f"gen {stats['generation_tps']:.1f} tok/s")
        fingerprints = r["fingerprints"]
        assert isinstance(fingerprints, list)
        for f in fingerprints:
            print(f"    {f['meaning']}: {f['line']}")
            print(f"    → {f['hint']}")


# --- launch -----------------------------------------------------------------


def _launch_args(p: argparse.ArgumentParser) -> None:
    _only_args(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print each process's script (the runbook's shape) and start nothing")
    p.add_argument("--wait", action="store_true",
                   help="wait until every process is ready or one fails")
    p.add_argument("--timeout", type=float, default=1800, help="with --wait (default 1800 s)")
    p.add_argument("--force", action="store_true",
                   help="start even if the preflight checks find errors")
    p.add_argument("--restart", action="store_true",
                   help="stop the selected processes first (restart = stop + start)")


def _launch(ns: argparse.Namespace) -> int:
    cluster = _cluster_and_only(ns)
    if cluster is None:
        return EXIT_CONFIG
    items = launchables(cluster, ns.only)
    if ns.dry_run:
        for i in items:
            print(f"# {i.name} on {i.node} ({i.url})")
            from pdtui.launch.plan import render_script

            print(render_script(i.env, i.argv))
        return EXIT_OK

    async def run() -> int:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            if ns.restart:
                for name, result in (await stop_all(pool, cluster, ns.only)).items():
                    print(f"  stop {name}: {result}")
            problems = await preflight(pool, cluster, ns.only)
            for p in problems:
                print(f"{'✗' if p.severity == 'error' else '!'} preflight: {p}")
            if any(p.severity == "error" for p in problems) and not ns.force:
                err("not started: fix the preflight errors above, or use --force")
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
            final = await wait_ready(pool, cluster, ns.only, timeout=ns.timeout)
            _print_status([s.to_dict() for s in final])
            return EXIT_OK if all(s.state == "ready" for s in final) else EXIT_FINDINGS

    return asyncio.run(run())


# --- status -----------------------------------------------------------------


def _status_args(p: argparse.ArgumentParser) -> None:
    _only_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def _status(ns: argparse.Namespace) -> int:
    cluster = _cluster_and_only(ns)
    if cluster is None:
        return EXIT_CONFIG

    async def run() -> list[dict[str, object]]:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            return [s.to_dict() for s in await statuses(pool, cluster, ns.only)]

    rows = asyncio.run(run())
    if ns.json:
        print(json.dumps({"cluster": cluster.name, "processes": rows}, indent=2))
    else:
        _print_status(rows)
    return EXIT_FINDINGS if any(r["state"] == "failed" for r in rows) else EXIT_OK


# --- stop -------------------------------------------------------------------


def _stop_args(p: argparse.ArgumentParser) -> None:
    _only_args(p)
    p.add_argument("--grace", type=int, default=30,
                   help="seconds between TERM and KILL (default 30)")


def _stop(ns: argparse.Namespace) -> int:
    cluster = _cluster_and_only(ns)
    if cluster is None:
        return EXIT_CONFIG

    async def run() -> dict[str, str]:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            return await stop_all(pool, cluster, ns.only, grace=ns.grace)

    results = asyncio.run(run())
    for name, result in results.items():
        print(f"{name:<16} {result}")
    bad = [r for r in results.values() if r.startswith("error") or r == "pid-reused"]
    return EXIT_FINDINGS if bad else EXIT_OK


# --- logs -------------------------------------------------------------------


def _logs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("name", help="process name (see 'pdtui status') or 'proxy'")
    p.add_argument("-f", "--follow", action="store_true", help="keep following")
    p.add_argument("-n", "--lines", type=int, default=200, help="last N lines (default 200)")
    add_host_key_flag(p)


def _logs(ns: argparse.Namespace) -> int:
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

    async def run() -> int:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            async for line in tail(pool, node, path, follow=ns.follow, start_lines=ns.lines):
                sys.stdout.write(line.text + "\n")
                sys.stdout.flush()
        return EXIT_OK

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return EXIT_OK


register("launch", "start prefill, decode and proxy on their nodes (detached)",
         _launch_args, _launch)
register("status", "state, startup stage and known errors of every process", _status_args,
         _status)
register("stop", "stop what pdtui started (TERM, then KILL after --grace)", _stop_args, _stop)
register("logs", "print (and follow) a process's log", _logs_args, _logs)


# --- import -----------------------------------------------------------------


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scripts", nargs="+", metavar="SCRIPT",
                   help="launch scripts (exports + vllm serve), the proxy command, gen_ranktable")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="cluster file to write (atomically; a previous file is kept as .bak)")
    p.add_argument("--name", default=None, help="cluster name (default: the output file's stem)")


def _import(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from pdtui.cluster import ClusterError, atomic_write, dump_spec, loads, read_text
    from pdtui.launch.importer import import_scripts

    texts: dict[str, str] = {}
    for path in ns.scripts:
        try:
            texts[Path(path).name] = read_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            err(f"{path}: cannot read: {exc}")
            return EXIT_CONFIG
    out = Path(ns.output)
    try:
        result = import_scripts(texts, name=ns.name or out.stem)
        text = dump_spec(result.spec)
        loads(text, source=out.name)
    except ClusterError as exc:
        for line in exc.problems:
            err(line)
        return EXIT_CONFIG
    header = "".join(f"# imported from {p}\n" for p in ns.scripts)
    header += "".join(f"# warning: {w}\n" for w in result.warnings)
    backup = atomic_write(out, header + text)
    for w in result.warnings:
        print(f"warning: {w}")
    print(f"wrote {out}" + (f" (previous file: {backup})" if backup else ""))
    return EXIT_OK


register("import", "read runbook-style launch scripts into a cluster file", _import_args,
         _import)

"""``pdtui ranktable generate|lint|diff|push``: the LLMDataDist ranktable.

The ranktable code, SSH and the probes are imported when a subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdtui.cli.common import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_OK,
    add_group,
    add_host_key_flag,
    err,
    load_or_report,
    run_group,
)

if TYPE_CHECKING:
    from pdtui.cli.progress import Progress
    from pdtui.cluster import Cluster
    from pdtui.npu.model import NodeHealth
    from pdtui.ranktable import Finding
    from pdtui.ranktable.sync import NodeCopy


def _cluster_with_ranktable(path: str) -> Cluster | None:
    cluster = load_or_report(path)
    if cluster is None:
        return None
    if cluster.spec.ranktable is None:
        err(
            f"{path}: ranktable: missing [ranktable] section (path, prefill_device_count, "
            "decode_device_count); this cluster's connector may not need a ranktable"
        )
        return None
    return cluster


async def _live(
    cluster: Cluster,
    accept_new: bool,
    progress: Progress | None = None,
) -> tuple[dict[str, NodeHealth], list[NodeCopy]]:
    """Every instance node's NPU data and ranktable copy; ``progress`` hears each node."""
    from pdtui.npu.health import sweep
    from pdtui.ranktable.sync import fetch_all, instance_nodes
    from pdtui.ssh.remote import pool_for

    answered: list[str] = []
    total = len(cluster.nodes)

    def on_node(n: NodeHealth) -> None:
        answered.append(n.name)
        how = "answered" if n.reachable else f"did not answer: {n.error}"
        if progress is not None:
            progress.stage(f"NPU data: {n.name} {how} ({len(answered)} of {total} nodes)")

    async with pool_for(cluster, accept_new=accept_new) as pool:
        names = {n.name for n in instance_nodes(cluster)}
        if progress is not None:
            progress.stage(f"NPU data: asking {total} nodes")
        nodes = await sweep(pool, cluster, on_node=on_node)
        if progress is not None:
            progress.stage("reading every node's ranktable copy")
        copies = await fetch_all(pool, cluster)
    return {n.name: n for n in nodes if n.name in names}, copies


async def _live_with_progress(
    cluster: Cluster,
    accept_new: bool,
) -> tuple[dict[str, NodeHealth], list[NodeCopy]]:
    """``_live`` with each stage on stderr (stdout may be the ranktable itself)."""
    from pdtui.cli.progress import Progress

    progress = Progress(sys.stderr)
    async with progress.ticking():
        return await _live(cluster, accept_new, progress)


def _print_findings(findings: list[Finding], source: str) -> None:
    for f in findings:
        print(f"{source}: {f.location}: {f.severity}: {f.message} (fix: {f.fix})")
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    print(f"{errors} errors, {warnings} warnings" if findings else f"{source}: clean")


def _code(findings: list[Finding]) -> int:
    return EXIT_FINDINGS if any(f.severity == "error" for f in findings) else EXIT_OK


def _unreachable(live: dict[str, NodeHealth]) -> list[str]:
    return [f"{n.name}: {n.error}" for n in live.values() if not n.reachable]


# --- generate ---------------------------------------------------------------


def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML) with a [ranktable] section")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write here (atomically, previous file kept as FILE.bak); default stdout",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print {ranktable, findings} as JSON instead of the file",
    )
    add_host_key_flag(p)


def _generate(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    from pdtui.cluster import atomic_write
    from pdtui.ranktable import RanktableError, dumps, generate, lint

    cluster = _cluster_with_ranktable(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    live, _copies = asyncio.run(_live_with_progress(cluster, ns.accept_new_host_keys))
    down = _unreachable(live)
    if down:
        for line in down:
            err(f"cannot generate: {line}")
        return EXIT_FINDINGS
    try:
        rt = generate(cluster, live)
    except RanktableError as exc:
        err(f"cannot generate: {exc}")
        return EXIT_FINDINGS
    text = dumps(rt)
    findings = lint(rt, cluster, live)
    if ns.json:
        print(json.dumps({"ranktable": rt, "findings": [f.to_dict() for f in findings]}, indent=2))
    elif ns.output:
        backup = atomic_write(Path(ns.output), text)
        print(f"wrote {ns.output}" + (f" (previous copy: {backup})" if backup else ""))
        if findings:
            _print_findings(findings, ns.output)
    else:
        sys.stdout.write(text)
        for f in findings:
            err(f"warning: {f.location}: {f.message}")
    return _code(findings)


# --- lint -------------------------------------------------------------------


def _read_ranktable(path: str) -> tuple[str, Any] | None:
    from pdtui.cluster import read_text
    from pdtui.ranktable import RanktableError, loads

    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        err(f"{path}: cannot read: {exc}")
        return None
    try:
        return text, loads(text, source=Path(path).name)
    except RanktableError as exc:
        err(str(exc))
        return None


def _lint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="ranktable JSON")
    p.add_argument(
        "--cluster",
        metavar="CLUSTER",
        help="also check against this cluster file and its live nodes",
    )
    p.add_argument(
        "--offline", action="store_true", help="with --cluster: do not connect to the nodes"
    )
    p.add_argument("--json", action="store_true", help="print findings as JSON")
    add_host_key_flag(p)


def _lint(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    from pdtui.ranktable import lint

    got = _read_ranktable(ns.file)
    if got is None:
        return EXIT_CONFIG
    text, rt = got
    cluster = None
    live: dict[str, NodeHealth] | None = None
    remote: dict[str, str | None] | None = None
    if ns.cluster:
        cluster = _cluster_with_ranktable(ns.cluster)
        if cluster is None:
            return EXIT_CONFIG
        if not ns.offline:
            live, copies = asyncio.run(_live(cluster, ns.accept_new_host_keys))
            remote = {c.node: c.text for c in copies if c.state != "unreachable"}
    findings = lint(rt, cluster, live, remote, text)
    if ns.json:
        print(json.dumps({"file": ns.file, "findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        _print_findings(findings, Path(ns.file).name)
        for line in _unreachable(live or {}):
            print(f"not checked: {line}")
    return _code(findings)


# --- diff -------------------------------------------------------------------


def _diff_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("file", help="ranktable JSON to compare every node's copy with")
    p.add_argument("--json", action="store_true", help="print per-node states as JSON")
    add_host_key_flag(p)


async def _copies(cluster: Cluster, text: str, accept_new: bool) -> list[NodeCopy]:
    from pdtui.ranktable.sync import fetch_all
    from pdtui.ssh.remote import pool_for

    async with pool_for(cluster, accept_new=accept_new) as pool:
        return await fetch_all(pool, cluster, text)


def _diff(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    from pdtui.ranktable import diff

    cluster = _cluster_with_ranktable(ns.cluster)
    got = _read_ranktable(ns.file)
    if cluster is None or got is None:
        return EXIT_CONFIG
    text, _rt = got
    copies = asyncio.run(_copies(cluster, text, ns.accept_new_host_keys))
    if ns.json:
        print(json.dumps({"file": ns.file, "nodes": [c.to_dict() for c in copies]}, indent=2))
    else:
        for c in copies:
            print(f"{c.node}: {c.state} ({c.path})" + (f": {c.error}" if c.error else ""))
            if c.state == "different" and c.text is not None:
                sys.stdout.write(diff(c.text, text, f"{c.node}:{c.path}", ns.file))
    return EXIT_OK if all(c.state == "same" for c in copies) else EXIT_FINDINGS


# --- push -------------------------------------------------------------------


def _push_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("file", help="ranktable JSON to push to every node that runs an instance")
    p.add_argument(
        "-y", "--yes", action="store_true", help="replace differing copies without asking"
    )
    p.add_argument("--force", action="store_true", help="push even if lint finds errors")
    p.add_argument("--json", action="store_true", help="print per-node results as JSON")
    add_host_key_flag(p)


def _push(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    from pdtui.ranktable import diff, lint
    from pdtui.ranktable.sync import fetch_all, push
    from pdtui.ssh.remote import pool_for

    cluster = _cluster_with_ranktable(ns.cluster)
    got = _read_ranktable(ns.file)
    if cluster is None or got is None:
        return EXIT_CONFIG
    text, rt = got
    errors = [f for f in lint(rt, cluster) if f.severity == "error"]
    if errors and not ns.force:
        _print_findings(errors, Path(ns.file).name)
        err("not pushed: fix the errors above or use --force")
        return EXIT_FINDINGS

    async def run() -> int:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            copies = await fetch_all(pool, cluster, text)
            changed = [c for c in copies if c.state == "different"]
            if not ns.json:
                for c in copies:
                    print(f"{c.node}: {c.state}" + (f": {c.error}" if c.error else ""))
                    if c.state == "different" and c.text is not None:
                        sys.stdout.write(diff(c.text, text, f"{c.node}:{c.path}", ns.file))
            if changed and not ns.yes:
                if not sys.stdin.isatty():
                    err(
                        f"{len(changed)} node(s) have a different copy; rerun with --yes to "
                        "replace them"
                    )
                    return EXIT_CONFIG
                answer = input(f"replace the copy on {', '.join(c.node for c in changed)}? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("not pushed")
                    return EXIT_FINDINGS
            results = await push(pool, cluster, text)
        if ns.json:
            print(json.dumps({"file": ns.file, "nodes": [r.to_dict() for r in results]}, indent=2))
        else:
            for r in results:
                if not r.ok:
                    print(f"✗ {r.node}: not pushed: {r.error} (its old copy is untouched)")
                elif r.changed:
                    bak = f", previous copy {r.backup}" if r.backup else ""
                    print(f"✓ {r.node}: {r.path} written, sha256 {r.sha256}{bak}")
                else:
                    print(f"✓ {r.node}: {r.path} already up to date")
        return EXIT_OK if all(r.ok for r in results) else EXIT_FINDINGS

    return asyncio.run(run())


# --- the group --------------------------------------------------------------


SUBCOMMANDS = (
    (
        "generate",
        _generate_args,
        _generate,
        "build the ranktable from the nodes' live hccn_tool/npu-smi data",
    ),
    ("lint", _lint_args, _lint, "check a ranktable (and, with --cluster, the live nodes)"),
    ("diff", _diff_args, _diff, "compare every node's copy with a local file"),
    ("push", _push_args, _push, "write a ranktable to every node, atomically with backup"),
)


def add_args(p: argparse.ArgumentParser) -> None:
    add_group(p, "ranktable", SUBCOMMANDS)


run = run_group

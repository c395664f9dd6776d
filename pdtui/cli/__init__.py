"""The headless command line: ``pdtui [CLUSTER]`` opens the app, subcommands do one step each.

Exit codes: 0 ok, 1 findings or failures, 2 usage or configuration errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pdtui import __version__
from pdtui.cluster import Cluster, ClusterError, load

EXIT_OK, EXIT_FINDINGS, EXIT_CONFIG = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Handler, str]] = {}


def register(
    name: str, help: str, add_args: Callable[[argparse.ArgumentParser], None], handler: Handler
) -> None:
    """Add a subcommand: ``add_args`` declares its arguments, ``handler`` runs it."""
    _COMMANDS[name] = (add_args, handler, help)


Subcommand = tuple[str, Callable[[argparse.ArgumentParser], None], Handler, str]


def register_group(name: str, help: str, subcommands: Sequence[Subcommand]) -> None:
    """Add ``pdtui NAME SUB ...``: each subcommand is ``(name, add_args, handler, help)``."""

    def add_args(p: argparse.ArgumentParser) -> None:
        sub = p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)
        for sub_name, sub_add, sub_handler, text in subcommands:
            sp = sub.add_parser(sub_name, help=text, description=text,
                                prog=f"pdtui {name} {sub_name}")
            sub_add(sp)
            sp.set_defaults(group_handler=sub_handler)

    def handler(ns: argparse.Namespace) -> int:
        chosen: Handler = ns.group_handler
        return chosen(ns)

    register(name, help, add_args, handler)


def err(msg: str) -> None:
    print(msg, file=sys.stderr)


def load_or_report(path: str) -> Cluster | None:
    """Load a cluster file; print its problems (one per line) and return None on failure."""
    try:
        return load(path)
    except ClusterError as exc:
        for line in exc.problems:
            err(line)
        return None


# --- validate ---------------------------------------------------------------


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")


def _validate(ns: argparse.Namespace) -> int:
    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    if not ns.quiet:
        print(f"{ns.cluster}: ok")
        for line in cluster.summary():
            print(line)
    for w in cluster.warnings:
        err(f"warning: {w}")
    return EXIT_OK


register("validate", "check a cluster file and print a summary or its errors", _validate_args,
         _validate)


# --- the app ----------------------------------------------------------------


def run_app(cluster_path: str | None, notes: list[str] | None = None) -> int:
    cluster = None
    if cluster_path is not None:
        cluster = load_or_report(cluster_path)
        if cluster is None:
            return EXIT_CONFIG
    from pdtui.tui.app import PdTui  # Textual is imported only when the app runs

    app = PdTui(cluster=cluster, notes=notes)
    app.run()
    return app.return_code or EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdtui",
        usage="pdtui [CLUSTER]  |  pdtui COMMAND [ARGS...]",
        description="Bring up and verify prefill-decode disaggregated vLLM-Ascend serving.",
        epilog="Run 'pdtui COMMAND --help' for a command's options. "
        "'pdtui demo' starts a simulated cluster and opens the app on it.",
    )
    parser.add_argument("--version", action="version", version=f"pdtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    order = ["validate", "nodes", "check", "ranktable", "launch", "status", "stop", "logs",
             "prompt", "verify", "import", "sim", "demo", "serve"]
    names = sorted(_COMMANDS, key=lambda n: order.index(n) if n in order else len(order))
    for name in names:
        add_args, _handler, help_text = _COMMANDS[name]
        sp = sub.add_parser(name, help=help_text, description=help_text, prog=f"pdtui {name}")
        add_args(sp)
    return parser


def _load_commands() -> None:
    # Modules that register further subcommands.
    from pdtui.cli import console as _console_cli  # noqa: F401
    from pdtui.cli import ranktable as _ranktable_cli  # noqa: F401
    from pdtui.cli import runbook as _runbook_cli  # noqa: F401
    from pdtui.cli import serve as _serve_cli  # noqa: F401
    from pdtui.cli import launch as _launch_cli  # noqa: F401
    from pdtui.cli import sim as _sim_cli  # noqa: F401


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # without importing every subcommand (asyncssh, pydantic, ...)
        print(f"pdtui {__version__}")
        return EXIT_OK
    _load_commands()
    if args and not args[0].startswith("-") and args[0] not in _COMMANDS:
        if len(args) > 1:
            err(f"pdtui: unknown command {args[0]!r}; see 'pdtui --help'")
            return EXIT_CONFIG
        return run_app(args[0])
    parser = build_parser()
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if ns.command is None:
        return run_app(None)
    _add, handler, _help = _COMMANDS[ns.command]
    try:
        return handler(ns)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pdtui check ... | head`: the reader left, nothing to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


# --- nodes ------------------------------------------------------------------


def add_host_key_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--accept-new-host-keys", action="store_true",
        help="trust and save host keys never seen before (like OpenSSH's "
        "StrictHostKeyChecking=accept-new); a changed key is always refused",
    )


def _nodes_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_host_key_flag(p)


def _nodes(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    from pdtui.ssh.nodes import reach_all

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    results = asyncio.run(reach_all(cluster, accept_new=ns.accept_new_host_keys))
    bad = [r for r in results if not r.reachable or r.findings]
    if ns.json:
        print(json.dumps({"cluster": cluster.name, "nodes": [r.to_dict() for r in results]},
                         indent=2))
        return EXIT_FINDINGS if bad else EXIT_OK
    for r in results:
        if r.reachable:
            mark = "✓" if not r.findings else "!"
            ips = " ".join(r.addresses)
            print(f"{mark} {r.name:<12} {r.address:<28} {r.hostname or '?':<14} {ips}"
                  f"  ({r.seconds * 1000:.0f} ms)")
        else:
            print(f"✗ {r.name:<12} {r.address:<28} {r.error}")
        for f in r.findings:
            print(f"    {f}")
    ok = len(results) - len(bad)
    print(f"{ok}/{len(results)} nodes reachable and consistent")
    return EXIT_FINDINGS if bad else EXIT_OK


register("nodes", "connect to every node over SSH and check its identity (hostname -I)",
         _nodes_args, _nodes)


# --- check ------------------------------------------------------------------


def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("--json", action="store_true", help="print every parsed value and raw output")
    p.add_argument("--ping", action="store_true",
                   help="also ping every device's peers on the other nodes")
    p.add_argument("--ping-all", action="store_true",
                   help="with --ping: every device pings every device of the other nodes "
                   "(default: device i pings device i)")
    p.add_argument("--watch", type=float, metavar="SECONDS",
                   help="repeat every SECONDS until ctrl+c")
    p.add_argument("--cap", type=int, default=16,
                   help="devices probed at once on each node (default 16)")
    p.add_argument("--tool-timeout", type=int, default=20,
                   help="seconds one tool call may take (default 20)")
    add_host_key_flag(p)


def _check(ns: argparse.Namespace) -> int:
    import asyncio
    import json
    import os
    import time

    from pdtui.npu.health import check
    from pdtui.npu.report import render
    from pdtui.ssh.remote import pool_for

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    if ns.cap < 1 or ns.tool_timeout < 1 or (ns.watch is not None and ns.watch <= 0):
        err("pdtui check: --cap, --tool-timeout and --watch must be positive")
        return EXIT_CONFIG
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ

    async def run() -> int:
        code = EXIT_OK
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            while True:
                report = await check(pool, cluster, ping=ns.ping,
                                     ping_mode="all" if ns.ping_all else "peers",
                                     cap=ns.cap, timeout=ns.tool_timeout)
                bad = any(d.state in ("fail", "unknown") for n in report.nodes
                          for d in n.devices) or any(not n.reachable for n in report.nodes)
                code = EXIT_FINDINGS if bad else EXIT_OK
                if ns.json:
                    print(json.dumps(report.to_dict()), flush=True)
                else:
                    if ns.watch is not None and color:
                        print("\x1b[H\x1b[2J", end="")
                    stamp = time.strftime("%H:%M:%S")
                    print(render(report, color=color) + (f"\n[{stamp}]" if ns.watch else ""),
                          flush=True)
                if ns.watch is None:
                    return code
                await asyncio.sleep(ns.watch)

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return EXIT_OK


register("check", "check the NPU network of every node (hccn_tool, npu-smi; --ping for peers)",
         _check_args, _check)

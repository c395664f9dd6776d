"""What every command shares: exit codes, error output, the cluster file, common flags, groups.

Kept cheap to import: the cluster model (pydantic), SSH and the app are imported by the
functions that need them, after the command line has been parsed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from pdtui.cluster import Cluster

EXIT_OK, EXIT_FINDINGS, EXIT_CONFIG = 0, 1, 2

Handler = Callable[["argparse.Namespace"], int]
AddArgs = Callable[["argparse.ArgumentParser"], None]
Subcommand = tuple[str, AddArgs, Handler, str]
"""``(name, add_args, run, one-line help)`` of one subcommand of a group."""


def err(msg: str) -> None:
    print(msg, file=sys.stderr)


def load_or_report(path: str) -> Cluster | None:
    """Load a cluster file; print its problems (one per line) and return None on failure."""
    from pdtui.cluster import ClusterError, load

    try:
        return load(path)
    except ClusterError as exc:
        for line in exc.problems:
            err(line)
        return None


def add_host_key_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust and save host keys never seen before (like OpenSSH's "
        "StrictHostKeyChecking=accept-new); a changed key is always refused",
    )


def add_group(p: argparse.ArgumentParser, name: str, subcommands: Sequence[Subcommand]) -> None:
    """Give ``pdtui NAME`` its subcommands; :func:`run_group` then runs the chosen one."""
    sub = p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)
    for sub_name, sub_add, sub_run, text in subcommands:
        sp = sub.add_parser(sub_name, help=text, description=text, prog=f"pdtui {name} {sub_name}")
        sub_add(sp)
        sp.set_defaults(group_handler=sub_run)


def run_group(ns: argparse.Namespace) -> int:
    chosen: Handler = ns.group_handler
    return chosen(ns)


def add_only_args(p: argparse.ArgumentParser) -> None:
    """The cluster file and ``--only`` of the commands that act on launched processes."""
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="process, instance, role (prefill/decode) or 'proxy'",
    )
    add_host_key_flag(p)


def cluster_and_only(ns: argparse.Namespace) -> Cluster | None:
    """The cluster file, once every ``--only`` name is known in it (else None, reported)."""
    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return None
    only = getattr(ns, "only", None)
    if only:
        from pdtui.launch.control import launchables, unknown_names

        bad = unknown_names(cluster, only)
        if bad:
            names = ", ".join(i.name for i in launchables(cluster))
            err(
                f"--only: unknown {', '.join(repr(b) for b in bad)} (processes: {names}; "
                "or an instance name, 'prefill', 'decode', 'proxy')"
            )
            return None
    return cluster


def run_app(cluster_path: str | None, notes: list[str] | None = None) -> int:
    """Open the app, on ``cluster_path`` when given. A file that cannot be read or is not TOML
    is reported before the screen; the rest of its validation follows the first frame, and
    its problems are printed here when the app has closed (exit 2)."""
    source = None
    if cluster_path is not None:
        from pdtui.cluster import ClusterError, read_source

        try:
            source = read_source(cluster_path)
        except ClusterError as exc:
            for line in exc.problems:
                err(line)
            return EXIT_CONFIG
    from pdtui.tui.app import PdTui  # Textual is imported only when the app runs

    app = PdTui(source=source, notes=notes)
    app.run()
    for line in app.load_problems:
        err(line)
    return app.return_code or EXIT_OK

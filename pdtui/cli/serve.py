"""``pdtui serve``: the app in a browser through textual-serve, on loopback by default.

Every browser connection starts its own pdtui process, with this machine's SSH access to the
cluster, and textual-serve has no authentication. So pdtui puts a guard in front of it (a
per-run token printed once in the URL, and Host and Origin checks: pdtui/cli/serve_guard.py), binds
to 127.0.0.1 and refuses any other address unless told it is meant (reach it from elsewhere with
``ssh -L 8000:127.0.0.1:8000 jump-host``).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from pdtui.cli.common import EXIT_CONFIG, EXIT_OK, err, load_or_report


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", nargs="?", help="cluster file to open (optional)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on a non-loopback address although anyone who reaches it gets "
        "this machine's SSH access to the cluster",
    )


def run(ns: argparse.Namespace) -> int:
    from pdtui.ssh.remote import is_loopback

    if not is_loopback(ns.host) and not ns.allow_remote:
        err(
            f"pdtui serve: refusing to listen on {ns.host}: textual-serve has no "
            "authentication and every browser gets this machine's SSH access to the cluster. "
            "Use the default 127.0.0.1 and 'ssh -L', or pass --allow-remote if you mean it."
        )
        return EXIT_CONFIG
    if not is_loopback(ns.host):
        err(f"warning: serving pdtui on {ns.host}:{ns.port}, guarded by its token only")
    argv = [sys.executable, "-m", "pdtui"]
    if ns.cluster:
        if load_or_report(ns.cluster) is None:
            return EXIT_CONFIG
        argv.append(ns.cluster)
    try:
        from textual_serve.server import Server

        from pdtui.cli.serve_guard import Guard, serve
    except ImportError:
        err("pdtui serve needs textual-serve: python3 -m pip install -e '.[web]'")
        return EXIT_CONFIG
    guard = Guard(ns.host, ns.port)
    print(f"serving pdtui on {guard.url} (ctrl+c stops)", flush=True)
    serve(Server(shlex.join(argv), host=ns.host, port=ns.port, title="pdtui"), guard)
    return EXIT_OK

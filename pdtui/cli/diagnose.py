"""``pdtui diagnose FILE... [--json]``: read saved logs offline (vLLM output, CANN plog, proxy
log; ``-`` for stdin; gzip accepted) and report stages, known failures and engine stats.

Exit 0: no fatal finding; 1: at least one; 2: usage error (no file, unreadable file).
"""

from __future__ import annotations

import argparse
import sys

from pdtui.cli.common import EXIT_CONFIG, EXIT_FINDINGS, EXIT_OK, err


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="a saved log (out.log, a plog, a proxy log; .gz too) or - for stdin",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--max-mb",
        type=float,
        default=64.0,
        help="read at most this many MiB of each file (default 64)",
    )


def run(ns: argparse.Namespace) -> int:
    import json

    from pdtui.launch.logs.diagnose import diagnose_file, render
    from pdtui.text import printable

    if ns.max_mb <= 0:
        err(f"--max-mb {ns.max_mb}: give a positive size in MiB")
        return EXIT_CONFIG
    if ns.files.count("-") > 1:
        err("'-' (stdin) may be given once")
        return EXIT_CONFIG
    limit = int(ns.max_mb * 2**20)
    reports = [diagnose_file(f, limit, sys.stdin.buffer if f == "-" else None) for f in ns.files]
    for r in reports:
        if r.error:
            err(printable(f"{r.path}: {r.error}"))
        elif r.cut:
            err(printable(f"{r.path}: {r.cut}"))
    if ns.json:
        print(json.dumps({"files": [r.to_json() for r in reports if not r.error]}, indent=2))
    else:
        for i, r in enumerate(x for x in reports if not x.error):
            if i:
                print()
            print("\n".join(printable(ln) for ln in render(r)))
    if any(r.error for r in reports):
        return EXIT_CONFIG
    return EXIT_FINDINGS if any(r.fatal for r in reports) else EXIT_OK

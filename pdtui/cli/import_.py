"""``pdtui import SCRIPT... -o FILE``: read runbook-style launch scripts into a cluster file.

The module is named ``import_`` because ``import`` is a Python keyword.
"""

from __future__ import annotations

import argparse

from pdtui.cli.common import EXIT_CONFIG, EXIT_OK, err


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "scripts",
        nargs="+",
        metavar="SCRIPT",
        help="launch scripts (exports + vllm serve), the proxy command, gen_ranktable",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="cluster file to write (atomically; a previous file is kept as .bak)",
    )
    p.add_argument("--name", default=None, help="cluster name (default: the output file's stem)")


def run(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from pdtui.cluster import ClusterError, atomic_write, dump_spec, loads, read_text
    from pdtui.launch.importer import import_scripts
    from pdtui.launch.importer.assemble import missing_scripts

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
    except ClusterError as exc:
        for line in exc.problems:
            err(line)
        return EXIT_CONFIG
    text = dump_spec(result.spec)
    try:
        loads(text, source=out.name)
    except ClusterError as exc:  # a missing script explains most problems: it comes first
        for line in [*missing_scripts(result.warnings), *exc.problems]:
            err(line)
        return EXIT_CONFIG
    header = "".join(f"# imported from {p}\n" for p in ns.scripts)
    header += "".join(f"# warning: {w}\n" for w in result.warnings)
    backup = atomic_write(out, header + text)
    for w in result.warnings:
        print(f"warning: {w}")
    print(f"wrote {out}" + (f" (previous file: {backup})" if backup else ""))
    return EXIT_OK

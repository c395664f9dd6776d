"""``pdtui validate CLUSTER``: check a cluster file and print a summary or its errors."""

from __future__ import annotations

import argparse

from pdtui.cli.common import EXIT_CONFIG, EXIT_OK, err, load_or_report


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")


def run(ns: argparse.Namespace) -> int:
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

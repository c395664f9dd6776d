"""``pdtui bundle CLUSTER [-o FILE.tar.gz]``: one archive to attach to an issue: versions, the
cluster file, NPU check, ranktable checksums, each process's redacted command, env, logs,
CANN logs and their diagnosis, and the command log; secrets masked."""

from __future__ import annotations

import argparse
import sys

from pdtui.cli.common import EXIT_CONFIG, EXIT_OK, add_host_key_flag, err, load_or_report


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE.tar.gz",
        help="where to write it (default: pdtui-bundle-CLUSTER-TIME.tar.gz here)",
    )
    p.add_argument(
        "--log-mb",
        type=float,
        default=4.0,
        help="keep the last this many MiB of each log (default 4; 1/4 of it for each CANN log)",
    )
    add_host_key_flag(p)


def run(ns: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from pdtui.bundle import collect
    from pdtui.ssh.remote import pool_for

    if ns.log_mb <= 0:
        err(f"--log-mb {ns.log_mb}: give a positive size in MiB")
        return EXIT_CONFIG
    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    log_bytes = int(ns.log_mb * 2**20)

    def progress(what: str) -> None:
        print(f"bundle: {what}…", file=sys.stderr, flush=True)

    async def go() -> int:
        async with pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool:
            bundle = await collect(
                pool,
                cluster,
                Path(ns.cluster),
                log_bytes=log_bytes,
                plog_bytes=max(log_bytes // 4, 4096),
                progress=progress,
            )
        out = Path(ns.output or f"{bundle.root}.tar.gz")
        try:
            bundle.write(out)
        except OSError as exc:
            err(f"{out}: cannot write it: {exc.strerror or exc}")
            return EXIT_CONFIG
        print(
            f"{out}: {len(bundle.files) + 1} files, {bundle.size / 2**20:.1f} MiB of text "
            f"(secrets masked)"
        )
        for note in bundle.notes:
            print(f"  left out: {note}")
        return EXIT_OK

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        return EXIT_CONFIG

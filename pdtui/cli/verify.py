"""``pdtui verify``: the whole runbook, headless, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pdtui.cli.common import EXIT_CONFIG, EXIT_FINDINGS, EXIT_OK, add_host_key_flag, load_or_report

if TYPE_CHECKING:
    from pdtui.runbook import Step


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument(
        "--report",
        metavar="DIR",
        help="write verify.md and verify.json (and the ranktable) into DIR",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds each launch step may take to become ready (default 1800)",
    )
    add_host_key_flag(p)


def run(ns: argparse.Namespace) -> int:
    import asyncio

    from pdtui.cli.progress import Progress
    from pdtui.runbook import STEP_MARKS, run_all, verification, write_report
    from pdtui.ssh.remote import pool_for

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    folder = Path(ns.report) if ns.report else None

    progress = Progress()

    def show(step: Step) -> None:
        if step.state == "running":
            progress.stage(f"{step.title}: {step.progress}" if step.progress else f"{step.title} …")
            return
        took = f" ({step.seconds:.1f} s)" if step.seconds is not None else ""
        reason = f": {step.reason}" if step.reason else ""
        progress.line(
            f"{progress.elapsed():>5} {STEP_MARKS[step.state]} {step.title}{took}{reason}"
        )
        for line in step.details[:10] if step.state == "failed" else []:
            progress.line(f"      {line}")

    async def run_book() -> int:
        async with (
            pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool,
            progress.ticking(),
        ):
            report = await run_all(
                pool,
                cluster,
                verification(pool, cluster),
                on_step=show,
                ready_timeout=ns.timeout,
                ranktable_file=(folder / "ranktable.json") if folder else None,
            )
        if report.verification and report.verification.get("text"):
            print(f"\nanswer: {report.verification['text'].strip()}")
        if folder is not None:
            md, js = write_report(report, folder)
            print(f"report: {md} and {js}")
        failed = report.failed_step
        if failed is not None:
            print(f"\nFAILED at '{failed.title}': {failed.reason}")
            return EXIT_FINDINGS
        print(f"\nrunbook passed in {report.seconds:.1f} s")
        return EXIT_OK

    return asyncio.run(run_book())

"""1,000,000 vLLM-like log lines through a launch log pane: time and memory stay bounded.

The pane keeps the last 5,000 lines (``Log(max_lines=5000)``) and writes in batches, as the
Launch view does. Prints lines/s, the process's peak RSS and the memory still held after the
run (tracemalloc, after a collection), against a baseline run of 10,000 lines: the held memory
is what must stay flat; the peak RSS is the allocator's high-water mark.

    python benchmarks/log_pane.py [--lines 1000000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import time
import tracemalloc

from textual.app import App, ComposeResult
from textual.widgets import Log

LINE = (
    "(APIServer pid=1) INFO 06-11 12:33:59 [loggers.py:259] Engine 000: Avg prompt "
    "throughput: 430.1 tokens/s, Avg generation throughput: 45.4 tokens/s, Running: 3 reqs, "
    "Waiting: 0 reqs, GPU KV cache usage: 40.0% #{}"
)


class Pane(App[None]):
    def compose(self) -> ComposeResult:
        yield Log(max_lines=5000, highlight=True, id="log")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def feed(lines: int, batch: int) -> tuple[float, float, float]:
    """Seconds, peak RSS (MB) and memory still held after the run (MB, tracemalloc)."""
    app = Pane()
    async with app.run_test(size=(160, 50)) as pilot:
        log = app.query_one(Log)
        tracemalloc.start()
        t0 = time.monotonic()
        for start in range(0, lines, batch):
            log.write_lines(
                [LINE.format(i) for i in range(start, min(start + batch, lines))], scroll_end=True
            )
            if start % (batch * 20) == 0:
                await pilot.pause()
        await pilot.pause()
        seconds = time.monotonic() - t0
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        assert log.line_count <= 5000
    return seconds, rss_mb(), held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=500)
    ns = ap.parse_args()
    base_s, base_rss, base_held = asyncio.run(feed(10_000, ns.batch))
    s, peak, held = asyncio.run(feed(ns.lines, ns.batch))
    print(
        f"baseline 10,000 lines: {base_s:.2f} s, peak RSS {base_rss:.0f} MB, "
        f"held after the run {base_held:.1f} MB"
    )
    print(
        f"{ns.lines:,} lines: {s:.2f} s ({ns.lines / s:,.0f} lines/s), peak RSS {peak:.0f} MB "
        f"({peak / base_rss:.2f}x), held after the run {held:.1f} MB "
        f"({held / base_held:.2f}x the baseline's)"
    )


if __name__ == "__main__":
    main()

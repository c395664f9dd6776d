"""50 concurrent prompts through the proxy of the simulated 1P1D deployment.

Starts the simulator, pushes the ranktable, launches prefill, decode and proxy, then sends
--requests completions, --concurrency at once, through an SSH port forward (as the console
does), and prints p50/p90 time to first token and time per output token; the baseline is one
request at a time in the same run.

    python benchmarks/console_load.py [--requests 50] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

import httpx

from pdtui.cluster import load
from pdtui.console import LoadReport, Request, load_test, reach
from pdtui.launch.control import launch, stop_all, wait_ready
from pdtui.npu.health import sweep
from pdtui.ranktable import dumps, generate
from pdtui.ranktable.sync import push
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.ssh.remote import pool_for


def show(label: str, r: LoadReport) -> None:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f} ms"

    print(
        f"{label:<22} {r.ok}/{r.n} ok in {r.seconds:.2f} s  TTFT p50 {ms(r.ttft_p50)} p90 "
        f"{ms(r.ttft_p90)}  TPOT p50 {ms(r.tpot_p50)} p90 {ms(r.tpot_p90)}  "
        f"{r.tokens_per_s_total:.0f} tok/s"
    )


async def run(requests: int, concurrency: int, folder: Path) -> None:
    os.environ.setdefault("PDTUI_SIM_VLLM_SPEED", "0.2")
    sim = Simulator(
        runbook_spec(), folder / "c.toml", latency_ms=0, address_prefix="127.0.24", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            live = {n.name: n for n in await sweep(pool, cluster)}
            await push(pool, cluster, dumps(generate(cluster, live)))
            await launch(pool, cluster)
            await wait_ready(pool, cluster, timeout=120, interval=0.5)
            req = Request(
                "completion",
                "Who are you?",
                cluster.spec.model.served_name,
                max_tokens=50,
                stream=True,
            )
            try:
                async with reach(pool, cluster) as base, httpx.AsyncClient(timeout=120) as c:
                    show("one at a time (x10)", await load_test(c, base, req, 10, 1))
                    show(
                        f"{concurrency} at once (x{requests})",
                        await load_test(c, base, req, requests, concurrency),
                    )
            finally:
                await stop_all(pool, cluster, grace=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=50)
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(ns.requests, ns.concurrency, Path(tmp)))


if __name__ == "__main__":
    main()

"""How long a full NPU health sweep takes: `pdtui check` vs the runbook's loops over ssh.

Runs on the simulator (fake A3 nodes over real SSH, each tool call taking --latency-ms) and
prints, for each cluster size, pdtui's sweep (cold: including the SSH connects; warm: over the
open connections) and the runbook's own per-node loops run with the plain `ssh` client node
after node, with the ratio. Runbook times beyond --runbook-max-nodes are extrapolated from the
largest measured size (marked "est.").

    python benchmarks/check_sweep.py                # 2, 8 and 32 nodes
    python benchmarks/check_sweep.py --nodes 2 --latency-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from pdtui.cluster import load
from pdtui.npu.health import sweep
from pdtui.remote import pool_for
from pdtui.sim.rig import Simulator, generated_spec, runbook_spec

RUNBOOK_LOOPS = (
    "for i in {0..15}; do hccn_tool -i $i -lldp -g | grep Ifname; done; "
    "for i in {0..15}; do hccn_tool -i $i -link -g ; done; "
    "for i in {0..15}; do hccn_tool -i $i -net_health -g ; done; "
    "for i in {0..15}; do hccn_tool -i $i -netdetect -g ; done; "
    "for i in {0..15}; do hccn_tool -i $i -gateway -g ; done; "
    "cat {conf}; "
    "for i in {0..15}; do hccn_tool -i $i -ip -g;done"
)


async def measure(n: int, latency: int, runbook: bool, workdir: Path) -> dict[str, float]:
    spec = runbook_spec() if n == 2 else generated_spec(n, "A3", 16)
    sim = Simulator(spec, workdir / f"bench{n}.toml", latency_ms=latency,
                    address_prefix="127.0.10", port=0)
    out: dict[str, float] = {}
    async with sim:
        cluster = load(sim.cluster_file)
        t = time.monotonic()
        async with pool_for(cluster) as pool:
            nodes = await sweep(pool, cluster)
            out["cold"] = time.monotonic() - t
            t = time.monotonic()
            nodes = await sweep(pool, cluster)
            out["warm"] = time.monotonic() - t
        bad = [d for x in nodes for d in x.devices if d.state != "ok"]
        if bad:
            print(f"  warning: {len(bad)} devices not ok in the {n}-node sweep")
        if runbook:
            t = time.monotonic()
            for node in cluster.nodes:  # node after node, as the runbook does it
                cmd = RUNBOOK_LOOPS.replace("{conf}", node.hccn_conf)
                # Not subprocess.run: the simulated nodes are served by this event loop.
                proc = await asyncio.create_subprocess_exec(
                    "ssh", "-F", str(sim.ssh_config_path), node.name, cmd,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                if await asyncio.wait_for(proc.wait(), 600) != 0:
                    raise SystemExit(f"runbook loops failed on {node.name}")
            out["runbook"] = time.monotonic() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[2, 8, 32])
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--runbook-max-nodes", type=int, default=8,
                    help="measure the runbook loops up to this size, extrapolate beyond")
    ns = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in ns.nodes:
            print(f"measuring {n} nodes ...", flush=True)
            rows.append((n, asyncio.run(measure(n, ns.latency_ms, n <= ns.runbook_max_nodes,
                                                Path(tmp)))))
    per_node = None
    for n, r in rows:
        if "runbook" in r:
            per_node = r["runbook"] / n
    base = rows[0][1]["warm"]
    print(f"\nA3 nodes x 16 devices, {ns.latency_ms} ms per tool call; times in seconds")
    print(f"{'nodes':>5} {'pdtui cold':>11} {'pdtui warm':>11} {'runbook':>12} "
          f"{'runbook/pdtui':>14} {'vs 2 nodes':>11}")
    for n, r in rows:
        rb = r.get("runbook")
        est = ""
        if rb is None and per_node is not None:
            rb, est = per_node * n, " est."
        ratio = f"{rb / r['cold']:.1f}x" if rb else "-"
        rb_text = f"{rb:.1f}{est}" if rb else "-"
        print(f"{n:>5} {r['cold']:>11.2f} {r['warm']:>11.2f} {rb_text:>12} {ratio:>14} "
              f"{r['warm'] / base:>10.2f}x")


if __name__ == "__main__":
    main()

"""How long a full NPU health sweep takes: `pdtui check` vs the runbook's loops over ssh.

The simulated A3 nodes (each tool call taking --latency-ms) run in their own process,
`pdtui sim up`, as a real cluster's nodes run apart from the jump host. Printed per cluster
size:

* pdtui, node work in-process (`--inproc-probe`): each fake node answers the probe script
  inside the simulator, so the nodes' work costs this machine almost nothing, as on a real
  cluster where every node has its own CPUs. The answers are byte-identical to bash's
  (tests/sim/test_inproc.py). Cold (including the SSH connects) and warm (median of
  --repeat sweeps over the open connections).
* pdtui, node work in bash: the same script run by real bash on the fake nodes. All nodes
  then share this machine's cores (about 4.5 ms of CPU per tool call), which is what this
  column measures beyond a few nodes.
* the runbook's own per-node loops, run with the plain `ssh` client node after node (as an
  operator does), against the bash nodes; beyond --runbook-max-nodes extrapolated from the
  largest measured size ("est.").

    python benchmarks/check_sweep.py                # 2, 8 and 32 nodes
    python benchmarks/check_sweep.py --nodes 2 --latency-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pdtui.cluster import Cluster, load
from pdtui.npu.health import sweep
from pdtui.sim.rig import sim_dir_for
from pdtui.ssh.remote import pool_for

RUNBOOK_LOOPS = (
    "for i in {0..15}; do hccn_tool -i $i -lldp -g | grep Ifname; done; "
    "for i in {0..15}; do hccn_tool -i $i -link -g ; done; "
    "for i in {0..15}; do hccn_tool -i $i -net_health -g ; done; "
    "for i in {0..15}; do hccn_tool -i $i -netdetect -g ; done; "
    "for i in {0..15}; do hccn_tool -i $i -gateway -g ; done; "
    "cat {conf}; "
    "for i in {0..15}; do hccn_tool -i $i -ip -g;done"
)


@contextlib.contextmanager
def simulator(n: int, latency: int, inproc: bool, workdir: Path) -> Iterator[Path]:
    """`pdtui sim up` in its own process; yields the cluster file it wrote."""
    cluster = workdir / f"bench{n}{'-inproc' if inproc else ''}.toml"
    argv = [
        sys.executable,
        "-m",
        "pdtui",
        "sim",
        "up",
        "--write-cluster",
        str(cluster),
        "--latency-ms",
        str(latency),
        "--address-prefix",
        "127.0.10",
        "--port",
        "0",
    ]
    if n != 2:  # 2: the runbook's own 1P1D layout
        argv += ["--nodes", str(n)]
    if inproc:
        argv.append("--inproc-probe")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("running;"):
                break
        else:
            raise SystemExit(f"pdtui sim up failed: {proc.stderr.read() if proc.stderr else ''}")
        yield cluster
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _not_ok(nodes: list[object]) -> int:
    return sum(1 for x in nodes for d in x.devices if d.state != "ok")  # type: ignore[attr-defined]


async def pdtui_times(cluster: Cluster, repeat: int) -> tuple[float, list[float]]:
    t = time.monotonic()
    async with pool_for(cluster) as pool:
        nodes = await sweep(pool, cluster)
        cold = time.monotonic() - t
        warm = []
        for _ in range(repeat):
            t = time.monotonic()
            nodes = await sweep(pool, cluster)
            warm.append(time.monotonic() - t)
    if _not_ok(nodes):
        print(f"  warning: {_not_ok(nodes)} devices not ok", flush=True)
    return cold, warm


async def runbook_time(cluster: Cluster, cluster_file: Path) -> float:
    ssh_config = sim_dir_for(cluster_file) / "ssh_config"
    t = time.monotonic()
    for node in cluster.nodes:  # node after node, as the runbook does it
        cmd = RUNBOOK_LOOPS.replace("{conf}", node.hccn_conf)
        proc = await asyncio.create_subprocess_exec(
            "ssh",
            "-F",
            str(ssh_config),
            node.name,
            cmd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        if await asyncio.wait_for(proc.wait(), 900) != 0:
            raise SystemExit(f"runbook loops failed on {node.name}")
    return time.monotonic() - t


def measure(n: int, ns: argparse.Namespace, workdir: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    with simulator(n, ns.latency_ms, True, workdir) as f:
        cold, warm = asyncio.run(pdtui_times(load(f), ns.repeat))
        out["cold"], out["warm"] = cold, statistics.median(warm)
        print("  warm sweeps:", " ".join(f"{w:.3f}" for w in warm), flush=True)
    if n <= ns.bash_max_nodes or n <= ns.runbook_max_nodes:
        with simulator(n, ns.latency_ms, False, workdir) as f:
            cluster = load(f)
            if n <= ns.bash_max_nodes:
                _, warm = asyncio.run(pdtui_times(cluster, 1))
                out["bash"] = warm[0]
            if n <= ns.runbook_max_nodes:
                out["runbook"] = asyncio.run(runbook_time(cluster, f))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[2, 8, 32])
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5, help="warm sweeps (the median is shown)")
    ap.add_argument(
        "--runbook-max-nodes",
        type=int,
        default=8,
        help="measure the runbook loops up to this size, extrapolate beyond",
    )
    ap.add_argument(
        "--bash-max-nodes",
        type=int,
        default=32,
        help="measure pdtui against bash-run nodes up to this size",
    )
    ns = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in ns.nodes:
            print(f"measuring {n} nodes ...", flush=True)
            rows.append((n, measure(n, ns, Path(tmp))))
    per_node = None
    for n, r in rows:
        if "runbook" in r:
            per_node = r["runbook"] / n
    base = rows[0][1]["warm"]
    print(f"\nA3 nodes x 16 devices, {ns.latency_ms} ms per tool call; times in seconds")
    print(
        f"{'nodes':>5} {'pdtui cold':>11} {'pdtui warm':>11} {'vs first':>9} "
        f"{'bash nodes':>11} {'runbook':>12} {'runbook/pdtui':>14}"
    )
    for n, r in rows:
        rb = r.get("runbook")
        est = ""
        if rb is None and per_node is not None:
            rb, est = per_node * n, " est."
        ratio = f"{rb / r['warm']:.0f}x" if rb else "-"
        rb_text = f"{rb:.1f}{est}" if rb else "-"
        bash = f"{r['bash']:.2f}" if "bash" in r else "-"
        print(
            f"{n:>5} {r['cold']:>11.2f} {r['warm']:>11.3f} {r['warm'] / base:>8.2f}x "
            f"{bash:>11} {rb_text:>12} {ratio:>14}"
        )


if __name__ == "__main__":
    main()

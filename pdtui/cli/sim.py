"""``pdtui sim up|fault|clear|status``: a simulated cluster of fake NPU nodes over real SSH."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pdtui.cli.common import EXIT_CONFIG, EXIT_OK, add_group, err, load_or_report, run_group

if TYPE_CHECKING:
    from pdtui.cluster import ClusterSpec


def _up_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--from",
        dest="source",
        metavar="CLUSTER",
        help="simulate the nodes of this cluster file (names, roles, SoC, NPUs, IPs)",
    )
    src.add_argument(
        "--nodes",
        type=int,
        metavar="N",
        help="simulate N nodes (half prefill, half decode) instead of the runbook's 1P1D",
    )
    p.add_argument("--soc", choices=["A2", "A3"], default="A3", help="with --nodes (default A3)")
    p.add_argument(
        "--npus",
        type=int,
        default=None,
        help="with --nodes: NPUs per node (default 16 on A3, 8 on A2)",
    )
    p.add_argument(
        "--latency-ms", type=int, default=100, help="time each fake tool call takes (default 100)"
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="NODE[:DEVICE]:KIND[=VALUE], e.g. decode-0:3:link-down (repeatable)",
    )
    p.add_argument(
        "--address-prefix",
        default="127.0.1",
        metavar="A.B.C",
        help="nodes listen on A.B.C.1, A.B.C.2, ... (default 127.0.1)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=2222,
        help="SSH port of every node (default 2222; a free port is taken where it is busy)",
    )
    p.add_argument(
        "--write-cluster",
        required=True,
        metavar="FILE",
        help="write a cluster file that reaches the fake nodes",
    )
    p.add_argument(
        "--containers",
        action="store_true",
        help="run each node's serving side in a real podman container, created by "
        "pdtui's own `containers up` (needs: apt-get install podman runc); faults "
        "NODE:container-stopped, NODE:container-gone, "
        "NODE:container-missing-mount=/etc/hccn.conf",
    )
    p.add_argument(
        "--inproc-probe",
        action="store_true",
        help="answer pdtui's NPU probe scripts inside the simulator instead of in "
        "bash: node work no longer competes for this machine's CPUs (for "
        "benchmarks and many nodes); the answers are the same bytes",
    )


def _base_spec(ns: argparse.Namespace) -> ClusterSpec | None:
    from pdtui.cluster import ClusterError
    from pdtui.sim.rig import SimError, generated_spec, runbook_spec

    if ns.source:
        cluster = load_or_report(ns.source)
        return cluster.spec if cluster else None
    if ns.nodes is not None:
        npus = ns.npus or (16 if ns.soc == "A3" else 8)
        try:
            return generated_spec(ns.nodes, ns.soc, npus)
        except (SimError, ClusterError) as exc:
            err(f"pdtui sim up: {exc}")
            return None
    return runbook_spec()


def _up(ns: argparse.Namespace) -> int:
    import asyncio
    import signal

    from pdtui.sim.rig import SimError, Simulator

    base = _base_spec(ns)
    if base is None:
        return EXIT_CONFIG
    sim = Simulator(
        base,
        Path(ns.write_cluster),
        latency_ms=ns.latency_ms,
        faults=ns.fault,
        address_prefix=ns.address_prefix,
        port=ns.port,
        inproc=ns.inproc_probe,
        containers=ns.containers,
    )

    async def run() -> int:
        try:
            await sim.start()
        except SimError as exc:
            err(f"pdtui sim up: {exc}")
            return EXIT_CONFIG
        print("\n".join(sim.describe()), flush=True)
        print("\nrunning; ctrl+c stops the simulated nodes", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sim.stop()
        print("stopped", flush=True)
        return EXIT_OK

    return asyncio.run(run())


def _state_path(cluster_file: str) -> Path | None:
    from pdtui.sim.rig import sim_dir_for

    path = sim_dir_for(Path(cluster_file)) / "state.json"
    if not path.exists():
        err(
            f"{cluster_file}: not a simulated cluster (no {path}); start one with "
            "'pdtui sim up --write-cluster FILE'"
        )
        return None
    return path


def _fault_args(p: argparse.ArgumentParser) -> None:
    from pdtui.sim.faults import KINDS

    p.add_argument("cluster", help="cluster file written by 'pdtui sim up'")
    p.add_argument(
        "faults",
        nargs="+",
        metavar="SPEC",
        help="NODE[:DEVICE]:KIND[=VALUE], e.g. decode-0:3:link-down",
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    width = max(len(k.usage()) for k in KINDS.values())
    p.epilog = "fault kinds (after NODE):\n" + "\n".join(
        f"  {k.usage():<{width}}  {k.help}" for k in KINDS.values()
    )


def _fault(ns: argparse.Namespace) -> int:
    from pdtui.sim.faults import FaultError, apply_fault, parse_fault
    from pdtui.sim.state import modify_state
    from pdtui.sim.tools import sync_tools

    path = _state_path(ns.cluster)
    if path is None:
        return EXIT_CONFIG
    code = _container_faults(ns.cluster, path.parent, ns.faults)
    if code is not None:
        return code
    with modify_state(path) as state:
        try:
            faults = [apply_fault(state, parse_fault(s, state.node_names())) for s in ns.faults]
        except FaultError as exc:
            err(str(exc))
            return EXIT_CONFIG
    sync_tools(state, path, path.parent / "nodes")
    for f in faults:
        print(f"fault set: {f}")
    return EXIT_OK


def _container_faults(cluster: str, sim_dir: Path, specs: list[str]) -> int | None:
    """Container faults, applied at once to the simulator's podman (None: there are none)."""
    from pdtui.sim.boxes import BoxError, apply_now, is_container_fault

    boxed = [s for s in specs if is_container_fault(s)]
    if not boxed:
        return None
    if len(boxed) != len(specs):
        err("give container faults (container-stopped, container-gone) on their own")
        return EXIT_CONFIG
    try:
        done = apply_now(Path(cluster), sim_dir, boxed)
    except BoxError as exc:
        err(str(exc))
        return EXIT_CONFIG
    for line in done:
        print(f"fault set: {line}")
    return EXIT_OK


def _clear_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file written by 'pdtui sim up'")
    p.add_argument("--node", help="only this node's faults")
    p.add_argument("--device", type=int, help="only this device's faults")
    p.add_argument("--kind", help="only faults of this kind")


def _clear(ns: argparse.Namespace) -> int:
    from pdtui.sim.faults import clear_faults
    from pdtui.sim.state import modify_state
    from pdtui.sim.tools import sync_tools

    path = _state_path(ns.cluster)
    if path is None:
        return EXIT_CONFIG
    with modify_state(path) as state:
        if ns.node is not None and ns.node not in state.node_names():
            err(f"--node: unknown node {ns.node!r} (known: {', '.join(state.node_names())})")
            return EXIT_CONFIG
        removed = clear_faults(state, ns.node, ns.device, ns.kind)
    sync_tools(state, path, path.parent / "nodes")
    for f in removed:
        print(f"fault cleared: {f}")
    if not removed:
        print("no matching faults")
    return EXIT_OK


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file written by 'pdtui sim up'")


def _status(ns: argparse.Namespace) -> int:
    from pdtui.sim.state import load_state

    path = _state_path(ns.cluster)
    if path is None:
        return EXIT_CONFIG
    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    state = load_state(path)
    print(f"simulated cluster {cluster.name}: tool latency {state.latency_ms} ms")
    for node in state.nodes:
        n = cluster.node(node.name)
        faults = ", ".join(str(f) for f in node.faults) or "no faults"
        print(
            f"  {node.name:<12} ssh {n.host}:{n.ssh.port}  ip {node.ip:<15} {node.soc} "
            f"x{node.npus}  {faults}"
        )
    return EXIT_OK


SUBCOMMANDS = (
    ("up", _up_args, _up, "start fake nodes and write a cluster file that reaches them"),
    ("fault", _fault_args, _fault, "inject faults into a running (or stopped) simulator"),
    ("clear", _clear_args, _clear, "clear faults (all, or by node, device, kind)"),
    ("status", _status_args, _status, "show the simulated nodes and their faults"),
)


def add_args(p: argparse.ArgumentParser) -> None:
    add_group(p, "sim", SUBCOMMANDS)


run = run_group

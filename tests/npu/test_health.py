"""The whole check over real SSH against the simulator: each fault on the right device."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pdtui.cluster import Cluster, load
from pdtui.npu.health import check, plan_pings
from pdtui.npu.model import NodeHealth
from pdtui.sim.rig import Simulator, generated_spec, runbook_spec
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for

Start = Callable[..., "AsyncIterator[tuple[Cluster, SshPool]]"]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    started: list[Simulator] = []
    pools: list[SshPool] = []

    async def start(
        faults: tuple[str, ...] = (), spec: object = None, prefix: str = "127.0.8"
    ) -> tuple[Cluster, SshPool]:
        s = Simulator(
            spec or runbook_spec(),  # type: ignore[arg-type]
            tmp_path / f"c{len(started)}.toml",
            latency_ms=0,
            faults=list(faults),
            address_prefix=prefix,
            port=0,
        )
        await s.start()
        started.append(s)
        cluster = load(s.cluster_file)
        pool = pool_for(cluster)
        await pool.__aenter__()
        pools.append(pool)
        return cluster, pool

    yield start
    for p in pools:
        await p.close()
    for s in started:
        await s.stop()


def dev(nodes: list[NodeHealth], node: str, device: int) -> tuple[str, list[str]]:
    n = next(x for x in nodes if x.name == node)
    d = n.device(device)
    assert d is not None
    return d.state, d.reasons


@pytest.mark.slow
async def test_a_healthy_a3_cluster_is_all_ok(sim) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = await sim()
    report = await check(pool, cluster, ping=True)
    assert report.state == "ok", [
        d.reasons for n in report.nodes for d in n.devices if d.state != "ok"
    ]
    assert all(
        len(n.devices) == 16 and n.tools == {"hccn_tool": True, "npu-smi": True}
        for n in report.nodes
    )
    d = report.nodes[1].device(1)
    assert d is not None and d.vnic_ip == "192.26.3.198" and d.sdid == 109117441
    assert len(report.pings) == 32 and all(p.ok for p in report.pings)


@pytest.mark.slow
async def test_a_healthy_a2_cluster_is_all_ok_with_roce_pings(sim) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = await sim(spec=generated_spec(2, "A2", 8))
    report = await check(pool, cluster, ping=True)
    assert report.state == "ok"
    assert {p.kind for p in report.pings} == {"roce"} and len(report.pings) == 16


@pytest.mark.parametrize(
    ("fault", "node", "device", "state", "reason"),
    [
        ("decode-0:3:link-down", "decode-0", 3, "fail", "link DOWN"),
        (
            "prefill-0:5:net-health=Receive timeout",
            "prefill-0",
            5,
            "fail",
            "net health 'Receive timeout' (expected Success)",
        ),
        ("decode-0:2:no-ip", "decode-0", 2, "warn", "RoCE plane not configured"),
        (
            "decode-0:tls-mismatch",
            "decode-0",
            7,
            "fail",
            "TLS switch 1 here, 0 on prefill-0 (the nodes disagree)",
        ),
    ],
)
@pytest.mark.slow
async def test_each_fault_shows_on_the_right_device_with_the_reason(  # type: ignore[no-untyped-def]
    sim,
    fault: str,
    node: str,
    device: int,
    state: str,
    reason: str,
) -> None:
    cluster, pool = await sim((fault,))
    report = await check(pool, cluster)
    got_state, reasons = dev(report.nodes, node, device)
    assert got_state == state and any(r.startswith(reason) for r in reasons), reasons
    others = [
        (n.name, d.id)
        for n in report.nodes
        for d in n.devices
        if d.state != "ok" and not fault.endswith("tls-mismatch")
    ]
    assert others in ([], [(node, device)])


@pytest.mark.slow
async def test_ping_loss_fails_both_ends_only(sim) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = await sim(("prefill-0:1:ping-loss=decode-0:1",))
    report = await check(pool, cluster, ping=True)
    bad = sorted((n.name, d.id) for n in report.nodes for d in n.devices if d.state != "ok")
    assert bad == [("decode-0", 1), ("prefill-0", 1)]
    _state, reasons = dev(report.nodes, "prefill-0", 1)
    assert any(r.startswith("hccs_ping to decode-0:1 192.26.3.198 lost 3/3") for r in reasons)


@pytest.mark.slow
async def test_a_missing_tool_is_said_and_its_data_is_unknown(sim) -> None:  # type: ignore[no-untyped-def]
    cluster, pool = await sim(("decode-0:tool-missing=hccn_tool",))
    report = await check(pool, cluster)
    node = next(n for n in report.nodes if n.name == "decode-0")
    assert node.tools["hccn_tool"] is False
    assert all(d.state in ("unknown", "fail") for d in node.devices)
    assert next(n for n in report.nodes if n.name == "prefill-0").state == "ok"


@pytest.mark.slow
async def test_unreachable_and_hanging_nodes_do_not_hold_up_the_others(sim) -> None:  # type: ignore[no-untyped-def]
    spec = generated_spec(3, "A3", 16)
    cluster, pool = await sim(("decode-0:unreachable", "decode-1:tool-hang"), spec=spec)
    arrived: list[str] = []
    report = await check(pool, cluster, timeout=2, on_node=lambda n: arrived.append(n.name))
    assert arrived[0] in ("prefill-0", "decode-0") and arrived[-1] == "decode-1"
    by = {n.name: n for n in report.nodes}
    assert by["prefill-0"].state == "ok"
    assert not by["decode-0"].reachable and "refused" in (by["decode-0"].error or "")
    assert all(d.state == "unknown" for d in by["decode-0"].devices)
    assert by["decode-1"].reachable
    state, reasons = dev(report.nodes, "decode-1", 0)
    # The hanging tool is named as the cause, first, on the device and on the node.
    assert state == "unknown" and reasons[0] in (
        "hccn_tool timed out on decode-1",
        "npu-smi timed out on decode-1",
    ), reasons
    hung = [r for r in by["decode-1"].reasons if " timed out on decode-1 (" in r]
    assert hung and "the tool hangs there" in hung[0], by["decode-1"].reasons


def test_ping_plan_pairs_same_devices_or_all() -> None:
    cluster = load(
        Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
    )
    nodes = [NodeHealth(n.name, n.soc, True) for n in cluster.nodes]
    assert plan_pings(cluster, nodes) == []  # no addresses known: nothing to ping


def test_hccs_pings_stay_inside_a_super_pod() -> None:
    from pdtui.npu.model import DeviceHealth

    cluster = load(
        Path(__file__).resolve().parents[2] / "sample_clusters" / "deepseek-v3.2-a3-1p1d.toml"
    )

    def node(name: str, pod: int | None) -> NodeHealth:
        devs = [
            DeviceHealth(id=i, vnic_ip=f"192.{i}.2.{199 - i}", super_pod_id=pod) for i in range(2)
        ]
        return NodeHealth(name, "A3", True, devices=devs)

    names = [n.name for n in cluster.nodes]
    same = plan_pings(cluster, [node(names[0], 0), node(names[1], 0)])
    assert len(same) == 4 and {p.kind for p in same} == {"hccs_ping"}
    assert plan_pings(cluster, [node(names[0], 0), node(names[1], 1)]) == []
    assert len(plan_pings(cluster, [node(names[0], 0), node(names[1], None)])) == 4


@pytest.mark.slow
async def test_a_repeated_sweep_reuses_unchanged_nodes_and_sees_changes(  # type: ignore[no-untyped-def]
    sim,
) -> None:
    from pdtui.cli import main
    from pdtui.npu.health import sweep

    cluster, pool = await sim(prefix="127.0.30")
    first = await sweep(pool, cluster, clock=lambda: 100.0)
    again = await sweep(pool, cluster, clock=lambda: 200.0)
    assert [n.taken_at for n in again] == [200.0, 200.0]
    for a, b in zip(first, again, strict=True):  # the same health, taken later
        assert [(d.id, d.state, d.reasons, d.ip) for d in a.devices] == [
            (d.id, d.state, d.reasons, d.ip) for d in b.devices
        ]
        assert a.devices[0] is not b.devices[0]  # classified into new objects each time
    assert all(d.state == "ok" for n in again for d in n.devices)
    cluster_file = cluster.path
    assert cluster_file is not None
    assert main(["sim", "fault", str(cluster_file), "decode-0:3:link-down"]) == 0
    changed = await sweep(pool, cluster, clock=lambda: 300.0)
    state, reasons = dev(changed, "decode-0", 3)
    assert state == "fail" and any("DOWN" in r for r in reasons), reasons
    assert dev(changed, "prefill-0", 3)[0] == "ok"

"""Pushing the ranktable to the simulated nodes over real SSH."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pdtui.cluster import Cluster, load
from pdtui.ranktable.sync import fetch_all, instance_nodes, push
from pdtui.sim.faults import apply_fault
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.sim.state import modify_state
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for

NEW = json.dumps(
    {
        "version": "1.2",
        "server_count": "2",
        "prefill_device_list": [],
        "decode_device_list": [],
        "status": "completed",
    },
    indent=4,
)
OLD = NEW.replace('"completed"', '"old"')


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Simulator, Cluster, SshPool]]:
    sim = Simulator(
        runbook_spec(), tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.11", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            yield sim, cluster, pool


def on_node(cluster: Cluster, node: str) -> Path:
    return Path(cluster.ranktable_path(cluster.node(node)))


async def test_each_fake_node_has_its_own_copy_path(rig) -> None:  # type: ignore[no-untyped-def]
    _sim, cluster, _pool = rig
    paths = {on_node(cluster, n.name) for n in cluster.nodes}
    assert len(paths) == 2
    assert all(
        str(p).endswith(
            "/vllm-workspace/vllm-ascend/examples/disaggregated_prefill_v1/ranktable.json"
        )
        for p in paths
    )
    env = cluster.instance("decode-0").env["DISAGGREGATED_PREFILL_RANK_TABLE_PATH"]
    assert env == str(on_node(cluster, "decode-0"))


async def test_push_writes_every_node_keeps_a_backup_and_reports_sync(rig) -> None:  # type: ignore[no-untyped-def]
    _sim, cluster, pool = rig
    old = on_node(cluster, "prefill-0")
    old.parent.mkdir(parents=True)
    old.write_text(OLD)
    before = {c.node: c.state for c in await fetch_all(pool, cluster, NEW)}
    assert before == {"prefill-0": "different", "decode-0": "missing"}

    results = {r.node: r for r in await push(pool, cluster, NEW)}
    assert all(r.ok and r.changed for r in results.values())
    assert results["prefill-0"].backup == f"{old}.bak"
    assert results["decode-0"].backup is None
    assert Path(f"{old}.bak").read_text() == OLD
    for n in instance_nodes(cluster):
        assert on_node(cluster, n.name).read_text() == NEW
        assert oct(on_node(cluster, n.name).stat().st_mode & 0o777) == "0o644"
    assert {c.state for c in await fetch_all(pool, cluster, NEW)} == {"same"}
    again = await push(pool, cluster, NEW)
    assert [r.changed for r in again] == [False, False]  # already up to date: nothing written


async def test_a_node_that_fails_keeps_its_old_copy_and_the_others_are_pushed(rig) -> None:  # type: ignore[no-untyped-def]
    sim, cluster, pool = rig
    for n in ("prefill-0", "decode-0"):
        p = on_node(cluster, n)
        p.parent.mkdir(parents=True)
        p.write_text(OLD)
    with modify_state(sim.state_path) as state:
        apply_fault(state, "decode-0:unreachable")
    await sim._apply_reachability(state)
    pool.reset("decode-0")
    results = {r.node: r for r in await push(pool, cluster, NEW)}
    assert results["prefill-0"].ok and not results["decode-0"].ok
    assert "refused" in (results["decode-0"].error or "")
    assert on_node(cluster, "prefill-0").read_text() == NEW
    assert on_node(cluster, "decode-0").read_text() == OLD
    leftovers = [p.name for p in on_node(cluster, "decode-0").parent.iterdir()]
    assert leftovers == ["ranktable.json"]


async def test_a_write_that_fails_on_the_node_leaves_the_old_copy(rig) -> None:  # type: ignore[no-untyped-def]
    _sim, cluster, pool = rig
    p = on_node(cluster, "decode-0")
    p.parent.mkdir(parents=True)
    p.write_text(OLD)
    p.with_name("ranktable.json.bak").mkdir()  # the backup cannot be written
    results = {r.node: r for r in await push(pool, cluster, NEW)}
    assert results["prefill-0"].ok
    assert not results["decode-0"].ok and "back up" in (results["decode-0"].error or "")
    assert p.read_text() == OLD

"""The pollers against the simulator over real SSH: NPU, processes, ranktable, proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pdtui.cluster import Cluster, load
from pdtui.launch.control import launch, stop_all, wait_ready
from pdtui.live import LiveModel, step_views
from pdtui.live.sources import poll_npu, poll_processes, poll_proxy, poll_ranktable
from pdtui.ranktable import dumps, generate
from pdtui.ranktable.sync import push
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for


@pytest.fixture
async def rig(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Cluster, SshPool, Simulator]]:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    sim = Simulator(
        runbook_spec(), tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.49", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            yield cluster, pool, sim
            await stop_all(pool, cluster, grace=5)


@pytest.mark.slow
async def test_polls_feed_the_model_and_a_stop_clears_the_process(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _ = rig
    model = LiveModel()
    await poll_npu(pool, cluster, model)
    assert sorted(model.npu) == ["decode-0", "prefill-0"]
    assert all(s.live and s.health.reachable for s in model.npu.values())
    assert all(link.connected for link in model.nodes.values())

    await poll_ranktable(pool, cluster, model)
    assert {c.state for c in model.ranktable.values()} == {"missing"}
    text = dumps(generate(cluster, {n: s.health for n, s in model.npu.items()}))
    assert all(r.ok for r in await push(pool, cluster, text))
    model.apply_generated(text, pushed_to=[n.name for n in cluster.nodes])
    await poll_ranktable(pool, cluster, model)
    assert {c.state for c in model.ranktable.values()} == {"same"}

    await launch(pool, cluster, ["decode"])
    await wait_ready(pool, cluster, ["decode"], timeout=60, interval=0.3)
    model.apply_run_started([("decode", "Decode instances ready")])
    model.apply_step("decode", "Decode instances ready", "passed")
    model.apply_run_finished()
    await poll_processes(pool, cluster, model)
    decode = model.processes["decode-0"]
    assert (decode.state, decode.stage) == ("ready", "ready") and decode.pid
    assert model.processes["prefill-0"].state == "stopped"

    await stop_all(pool, cluster, ["decode"], grace=5)
    await poll_processes(pool, cluster, model)
    decode = model.processes["decode-0"]
    assert (decode.state, decode.stage, decode.pid, decode.since) == ("stopped", None, None, None)
    view = step_views(model)[0]
    assert (view.state, view.label) == ("failed", "stopped")

    await poll_proxy(pool, cluster, model)
    proxy = next(b for b in model.proxy.backends if b.name == "proxy")
    assert not proxy.ok and "{" not in proxy.detail

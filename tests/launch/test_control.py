"""The runbook's deployment on the simulator: launch, ready, a request through the proxy, stop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pdtui.cluster import Cluster, load
from pdtui.launch.control import (
    launch,
    launchables,
    read_plogs,
    statuses,
    stop_all,
    wait_ready,
)
from pdtui.npu.health import sweep
from pdtui.ranktable import dumps, generate
from pdtui.ranktable.sync import push
from pdtui.sim.faults import apply_fault
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.sim.state import modify_state
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for


@pytest.fixture
async def rig(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Cluster, SshPool, Simulator]]:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")  # inherited by the fake nodes' shells
    sim = Simulator(
        runbook_spec(), tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.14", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            yield cluster, pool, sim
            await stop_all(pool, cluster, grace=5)


async def push_ranktable(cluster: Cluster, pool: SshPool) -> None:
    live = {n.name: n for n in await sweep(pool, cluster)}
    results = await push(pool, cluster, dumps(generate(cluster, live)))
    assert all(r.ok for r in results)


@pytest.mark.slow
async def test_the_runbook_deployment_comes_up_and_answers_through_the_proxy(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, sim = rig
    await push_ranktable(cluster, pool)
    started = await launch(pool, cluster)
    assert [s.name for s in started] == ["prefill-0", "decode-0", "proxy"]
    assert all(s.error is None for s in started)
    final = await wait_ready(pool, cluster, timeout=60, interval=0.3)
    assert [(s.name, s.state, s.stage) for s in final] == [
        ("prefill-0", "ready", "ready"),
        ("decode-0", "ready", "ready"),
        ("proxy", "ready", "ready"),
    ]
    proxy = next(n for n in sim.nodes if n.name == "prefill-0")
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"http://{proxy.listen_host}:8080/v1/completions",
            json={
                "model": "deepseek_v3.2",
                "prompt": "Who are you?",
                "max_tokens": 20,
                "temperature": 0,
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["completion_tokens"] == 20 and body["choices"][0]["text"]
    stopped = await stop_all(pool, cluster, grace=5)
    assert stopped == {"proxy": "stopped", "decode-0": "stopped", "prefill-0": "stopped"}
    assert {s.state for s in await statuses(pool, cluster)} == {"stopped"}


@pytest.mark.slow
async def test_a_missing_ranktable_fails_with_the_connector_message_and_a_hint(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _sim = rig
    await launch(pool, cluster, ["prefill-0"])
    final = await wait_ready(pool, cluster, ["prefill-0"], timeout=30, interval=0.3)
    assert final[0].state == "failed"
    assert [f.key for f in final[0].findings] == ["ranktable-missing", "engine-init"]
    assert "pdtui ranktable" in final[0].findings[0].hint


@pytest.mark.slow
async def test_a_crash_on_start_is_failed_with_its_fingerprint(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, sim = rig
    await push_ranktable(cluster, pool)
    with modify_state(sim.state_path) as state:
        apply_fault(state, "decode-0:crash-on-start=hccl-timeout")
    await launch(pool, cluster, ["decode"])
    final = await wait_ready(pool, cluster, ["decode"], timeout=30, interval=0.3)
    assert final[0].state == "failed"
    assert [f.key for f in final[0].findings][:1] == ["hccl-timeout"]


@pytest.mark.slow
async def test_a_failure_only_the_plog_shows_is_reported_with_its_file(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, sim = rig
    await push_ranktable(cluster, pool)
    with modify_state(sim.state_path) as state:
        apply_fault(state, "decode-0:crash-on-start=port")
    await launch(pool, cluster, ["decode"])
    final = await wait_ready(pool, cluster, ["decode"], timeout=30, interval=0.3)
    st = final[0]
    assert st.state == "failed"
    first = st.findings[0]
    assert first.key == "port-16666"  # only the CANN plog names the cause
    assert first.source.startswith("plog-") and first.lineno == 1
    assert "hccl-init" in [f.key for f in st.findings]  # stdout: torch_npu's generic error
    assert len(st.plogs) == 1 and st.plogs[0].startswith(final[0].run.dir + "/debug/plog/")
    assert st.to_dict()["fingerprints"][0]["source"] == first.source  # type: ignore[index]
    item = launchables(cluster, ["decode"])[0]
    files = await read_plogs(pool, cluster, item)
    assert [p for p, _ in files] == st.plogs
    assert "specific port[16666] fail" in files[0][1][0]


def test_only_selects_processes_instances_roles_and_the_proxy() -> None:
    root = Path(__file__).resolve().parents[2]
    c = load(root / "sample_clusters" / "mooncake-a3-2p1d.toml")
    assert [i.name for i in launchables(c, ["prefill-1"])] == ["prefill-1.dp0", "prefill-1.dp1"]
    assert len(launchables(c, ["decode"])) == 32
    assert [i.name for i in launchables(c, ["proxy", "decode-0.dp3"])] == ["decode-0.dp3", "proxy"]
    assert os.environ.get("PDTUI_SIM_VLLM_SPEED") is None


@pytest.mark.slow
async def test_a_long_running_server_stays_ready_however_long_its_log(rig) -> None:  # type: ignore[no-untyped-def]
    from pdtui.launch.control import Launchable, process_status
    from pdtui.launch.run import start

    cluster, pool, _sim = rig
    node = cluster.node("decode-0")
    script = (
        "echo '(APIServer pid=1) INFO 09-08 02:52:10 [parallel_state.py:1] rank 0 in "
        "world size 1 is assigned as DP rank 0'; "
        "echo 'INFO:     Application startup complete.'; "
        "i=0; while [ $i -lt 8000 ]; do "
        'echo "INFO:     127.0.0.1:1 - \\"POST /v1/completions HTTP/1.1\\" 200 OK '
        'padding-padding-padding $i"; i=$((i+1)); done; sleep 30'
    )
    await start(pool, node, cluster.name, "long", {}, ["sh", "-c", script])
    item = Launchable("long", "decode", node.name, "http://x:1", {}, [])
    for _ in range(50):
        st = await process_status(pool, cluster, item)
        if st.log_tail and "7999" in st.log_tail[-1]:
            break
    assert st.run.log_size is not None and st.run.log_size > 500_000
    assert (st.state, st.stage) == ("ready", "ready")
    assert len(st.log_tail) == 20


@pytest.mark.slow
async def test_plogs_go_to_the_run_folder_unless_set(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pdtui.launch.run import run_dir, start

    cluster, pool, _sim = rig
    node = cluster.node("decode-0")
    argv = ["sh", "-c", 'echo "plog=$ASCEND_PROCESS_LOG_PATH"']
    mine = tmp_path / "my-ascend-logs"
    await start(pool, node, cluster.name, "dflt", {}, argv)
    await start(pool, node, cluster.name, "own", {"ASCEND_PROCESS_LOG_PATH": str(mine)}, argv)
    for name, want in (("dflt", run_dir(node, cluster.name, "dflt")), ("own", str(mine))):
        log = Path(run_dir(node, cluster.name, name)) / "out.log"
        for _ in range(100):
            if log.exists() and log.read_text():
                break
            await asyncio.sleep(0.05)
        assert log.read_text().strip() == f"plog={want}"

"""Serving through the container (``pdtui.launch`` via ``pdtui.place``), on the simulator with
``--containers`` and real podman: the whole runbook, the pids on both sides, stop, a restart
and a removal of the container by hand."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pdtui.cluster import Cluster, load
from pdtui.launch.control import launchables, process_status, stop_all
from pdtui.runbook import run_all, verification
from pdtui.sim.podman import runtime_env
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for

PREFIX = "127.0.95"


@pytest.fixture
async def boxed(
    tmp_path: Path,
    podman_conf: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Cluster, SshPool]]:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    sim = Simulator(
        runbook_spec(),
        tmp_path / "c.toml",
        latency_ms=0,
        address_prefix=PREFIX,
        port=0,
        containers=True,
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            try:
                yield cluster, pool
            finally:
                await stop_all(pool, cluster, grace=5)


def _top(conf: Path, name: str) -> list[str]:
    out = subprocess.run(
        ["podman", "top", name, "args"],
        env=runtime_env(conf),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()[1:]


@pytest.mark.slow
async def test_the_runbook_passes_with_both_nodes_in_containers_and_stop_empties_them(
    boxed: tuple[Cluster, SshPool], tmp_path: Path, podman_conf: Path
) -> None:
    cluster, pool = boxed
    report = await run_all(
        pool,
        cluster,
        verification(pool, cluster),
        ready_timeout=60,
        ranktable_file=tmp_path / "report" / "ranktable.json",
    )
    assert report.passed, [(s.key, s.state, s.reason) for s in report.steps]
    assert report.steps[0].key == "containers" and report.steps[1].key == "network"
    names = {n.name: n.container.name for n in cluster.nodes}  # type: ignore[union-attr]
    for item in launchables(cluster):
        st = await process_status(pool, cluster, item)
        assert st.where == f"container {names[item.node]}" and st.state == "ready", st
        assert st.pid is not None and st.run.host_pid is not None
        nspid = Path(f"/proc/{st.run.host_pid}/status").read_text()
        fields = next(x for x in nspid.splitlines() if x.startswith("NSpid:")).split()
        assert fields[1] == str(st.run.host_pid) and fields[-1] == str(st.pid)
    assert any("pdtui.sim.vllm serve" in line for line in _top(podman_conf, names["decode-0"]))
    stopped = await stop_all(pool, cluster, grace=5)
    assert set(stopped.values()) == {"stopped"}, stopped
    for name in names.values():  # the containers run on, with nothing of pdtui's inside
        assert [x.split()[0] for x in _top(podman_conf, name)] == ["/run/podman-init", "tail"]


@pytest.mark.slow
async def test_a_restarted_container_shows_its_process_stopped_and_a_gone_one_an_error(
    boxed: tuple[Cluster, SshPool], podman_conf: Path
) -> None:
    from pdtui.launch.control import launch

    cluster, pool = boxed
    started = await launch(pool, cluster, ["decode-0"])
    assert all(s.error is None for s in started), started
    item = next(i for i in launchables(cluster) if i.name == "decode-0")
    box = cluster.node("decode-0").container
    assert box is not None
    env = runtime_env(podman_conf)
    subprocess.run(
        ["podman", "restart", "-t", "0", box.name], env=env, check=True, capture_output=True
    )
    st = await process_status(pool, cluster, item)
    assert st.run.state == "stopped" and st.run.host_pid is None, st.run
    subprocess.run(
        ["podman", "rm", "-f", "-t", "0", box.name], env=env, check=True, capture_output=True
    )
    st = await process_status(pool, cluster, item)
    assert st.run.state == "unknown"
    assert st.run.error is not None and "no such container" in st.run.error


@pytest.mark.slow
async def test_the_ranktable_goes_to_the_path_the_container_sees(
    boxed: tuple[Cluster, SshPool], tmp_path: Path, podman_conf: Path
) -> None:
    from pdtui.cluster import dump_spec, loads
    from pdtui.ranktable.sync import fetch_all, push

    cluster, pool = boxed
    inside = "/vllm-workspace/vllm-ascend/examples/disaggregated_prefill_v1/ranktable.json"
    spec = cluster.spec.model_copy(
        update={
            "ranktable": cluster.spec.ranktable.model_copy(  # type: ignore[union-attr]
                update={"path": inside}
            )
        }
    )
    cluster = loads(dump_spec(spec), path=cluster.path)
    text = '{"status": "completed", "version": "1.0"}\n'
    first = await push(pool, cluster, text)
    assert all(r.ok and r.changed and r.backup is None for r in first), first
    again = await push(pool, cluster, text)
    assert all(r.ok and not r.changed for r in again), again
    changed = await push(pool, cluster, text.replace("1.0", "1.1"))
    assert all(r.ok and r.backup == inside + ".bak" for r in changed), changed
    assert not Path(inside).exists()  # only inside the containers
    copies = await fetch_all(pool, cluster, text.replace("1.0", "1.1"))
    assert [c.state for c in copies] == ["same", "same"]
    box = cluster.node("decode-0").container
    assert box is not None
    cat = subprocess.run(
        ["podman", "exec", box.name, "cat", inside + ".bak"],
        env=runtime_env(podman_conf),
        capture_output=True,
        text=True,
    )
    assert cat.stdout == text


@pytest.mark.slow
async def test_a_killed_pdtui_mid_launch_and_a_new_one_finds_the_processes(
    boxed: tuple[Cluster, SshPool],
) -> None:
    import asyncio
    import os
    import signal
    import sys

    from pdtui.launch.control import wait_ready
    from pdtui.npu.health import check
    from pdtui.ranktable import dumps, generate
    from pdtui.ranktable.sync import push

    cluster, pool = boxed
    live = {n.name: n for n in (await check(pool, cluster, ping=False)).nodes}
    assert all(r.ok for r in await push(pool, cluster, dumps(generate(cluster, live))))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pdtui",
        "launch",
        str(cluster.path),
        "--wait",
        "--only",
        "prefill-0",
        "decode-0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PDTUI_SIM_VLLM_SPEED": "1"},
    )
    assert proc.stdout is not None
    started: list[str] = []
    while len(started) < 2:  # both started: pdtui now waits for them to be ready
        line = (await proc.stdout.readline()).decode()
        assert line, f"pdtui launch ended early: {started}"
        if line.startswith("✓ ") and " pid " in line:
            started.append(line.split()[1])
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    async with pool_for(cluster) as fresh:  # a new pdtui: new connections, nothing remembered
        final = await wait_ready(fresh, cluster, ["prefill-0", "decode-0"], timeout=120)
    assert sorted(started) == ["decode-0", "prefill-0"]
    assert [(s.name, s.state) for s in final] == [("prefill-0", "ready"), ("decode-0", "ready")]
    assert all(s.run.host_pid for s in final)

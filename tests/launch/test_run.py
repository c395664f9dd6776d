"""Detached start, status, stop and log tail on simulated nodes over real SSH."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pdtui.cluster import Cluster, load
from pdtui.launch.run import LogLine, run_dir, start, status, stop, tail, tail_batches
from pdtui.sim.rig import Simulator, runbook_spec
from pdtui.ssh import SshPool
from pdtui.ssh.remote import pool_for

TICKER = [
    "sh",
    "-c",
    'trap "echo got TERM; exit 0" TERM; i=0; '
    'while true; do echo "line $i $VALUE"; i=$((i+1)); sleep 0.05; done',
]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Cluster, SshPool, Simulator]]:
    sim = Simulator(
        runbook_spec(), tmp_path / "c.toml", latency_ms=0, address_prefix="127.0.13", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            yield cluster, pool, sim


@pytest.mark.slow
async def test_start_status_stop_and_values_arrive_verbatim(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _sim = rig
    node = cluster.node("decode-0")
    canary = tmp_path / "CANARY"
    nasty = f"a b; $(touch {canary}) `touch {canary}` 'q' \"d\""
    s = await start(
        pool, node, cluster.name, "tick", {"VALUE": nasty, "HF_TOKEN": "hf_" + "x" * 34}, TICKER
    )
    assert s.error is None and s.pid
    await asyncio.sleep(0.3)
    st = await status(pool, node, cluster.name, "tick")
    assert (st.state, st.pid, st.run_id) == ("running", s.pid, s.run_id)
    d = Path(run_dir(node, cluster.name, "tick"))
    assert f"line 0 {nasty}" in (d / "out.log").read_text()
    assert "hf_xxx" not in (d / "env.redacted").read_text()
    assert (d / "env.sh").stat().st_mode & 0o777 == 0o600
    again = await start(pool, node, cluster.name, "tick", {}, TICKER)
    assert again.error is not None and "already running" in again.error

    assert await stop(pool, node, cluster.name, "tick", grace=5) == "stopped"
    st = await status(pool, node, cluster.name, "tick")
    assert st.state == "stopped"
    assert "got TERM" in (d / "out.log").read_text()
    assert not canary.exists()


@pytest.mark.slow
async def test_a_process_survives_the_connection_dropping(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, sim = rig
    node = cluster.node("prefill-0")
    await start(pool, node, cluster.name, "survivor", {"VALUE": "v"}, TICKER)
    for n in sim.nodes:  # drop every SSH connection from the server side
        await n.server.stop()
        await n.server.start()
    pool.reset("prefill-0")
    await asyncio.sleep(0.2)
    assert (await status(pool, node, cluster.name, "survivor")).state == "running"
    assert await stop(pool, node, cluster.name, "survivor", grace=5) == "stopped"


@pytest.mark.slow
async def test_exit_status_is_recorded(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _sim = rig
    node = cluster.node("prefill-0")
    await start(pool, node, cluster.name, "fails", {}, ["sh", "-c", "echo bye; exit 3"])
    await asyncio.sleep(0.4)
    st = await status(pool, node, cluster.name, "fails")
    assert (st.state, st.exit_status) == ("exited", 3)
    assert await stop(pool, node, cluster.name, "fails") == "not-running"
    assert (await status(pool, node, cluster.name, "never")).state == "not-started"


@pytest.mark.slow
async def test_stop_refuses_a_reused_pid(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _sim = rig
    node = cluster.node("prefill-0")
    await start(pool, node, cluster.name, "victim", {}, ["sleep", "30"])
    await asyncio.sleep(0.2)
    d = Path(run_dir(node, cluster.name, "victim"))
    (d / "run_id").write_text("someone-else\n")  # as if the pid now belonged to another run
    assert await stop(pool, node, cluster.name, "victim") == "pid-reused"
    (d / "run_id").write_text((d / "env.sh").read_text().split("PDTUI_RUN_ID=")[1].strip() + "\n")
    assert await stop(pool, node, cluster.name, "victim", grace=5) == "stopped"


@pytest.mark.slow
async def test_tail_resumes_at_the_byte_offset_without_loss_or_repeat(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _sim = rig
    node = cluster.node("decode-0")
    await start(pool, node, cluster.name, "tick2", {"VALUE": "é"}, TICKER)
    path = run_dir(node, cluster.name, "tick2") + "/out.log"
    first: list[LogLine] = []
    async for line in tail(pool, node, path, 0):
        first.append(line)
        if len(first) == 5:
            break
    await asyncio.sleep(0.3)  # lines keep coming while nobody reads
    second: list[LogLine] = []
    async for line in tail(pool, node, path, first[-1].offset):
        second.append(line)
        if len(second) == 5:
            break
    await stop(pool, node, cluster.name, "tick2", grace=5)
    texts = [x.text for x in first + second]
    assert texts == [f"line {i} é" for i in range(10)]
    last: list[LogLine] = []
    async for line in tail(pool, node, path, follow=False, start_lines=2):
        last.append(line)
    assert [x.text for x in last][-1] == "got TERM"


async def test_tail_batches_hand_over_many_lines_at_a_time_and_resume_exactly(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _sim = rig
    node = cluster.node("prefill-0")
    log = Path(run_dir(node, cluster.name, "burst")) / "out.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"line {i} é\n" for i in range(5000)))
    batches = [b async for b in tail_batches(pool, node, str(log), follow=False)]
    assert [x for b in batches for x in b.lines] == [f"line {i} é" for i in range(5000)]
    assert len(batches) < 100  # one per read chunk, not one per line
    assert batches[-1].offset == log.stat().st_size
    with log.open("a") as f:
        f.write("late 1\nlate 2\n")
    again = [b async for b in tail_batches(pool, node, str(log), batches[-1].offset, follow=False)]
    assert [x for b in again for x in b.lines] == ["late 1", "late 2"]
    assert again[-1].offset == log.stat().st_size
    log.write_text("after truncation\n")  # shrank: read again from the start
    shrunk = [b async for b in tail_batches(pool, node, str(log), again[-1].offset, follow=False)]
    assert [x for b in shrunk for x in b.lines] == ["after truncation"]
    last = [b async for b in tail_batches(pool, node, str(log), follow=False, start_lines=1)]
    assert [x for b in last for x in b.lines] == ["after truncation"]


@pytest.mark.slow
async def test_processes_started_on_fake_nodes_end_with_the_simulator(tmp_path: Path) -> None:
    sim = Simulator(
        runbook_spec(), tmp_path / "s.toml", latency_ms=0, address_prefix="127.0.16", port=0
    )
    async with sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            s = await start(
                pool, cluster.node("prefill-0"), cluster.name, "left", {}, ["sleep", "60"]
            )
    assert s.pid is not None
    for _ in range(40):
        if not Path(f"/proc/{s.pid}").exists():
            break
        await asyncio.sleep(0.05)
    assert not Path(f"/proc/{s.pid}").exists()

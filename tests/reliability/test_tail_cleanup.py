"""No remote ``tail -F`` is left behind on a node (issue 13 item 11): closing a log stream
kills the remote tail's process group, after 20 opens and closes, when ``pdtui logs -f``
ends (ctrl+c) and when the app that follows a log closes.

Fake nodes over real SSH at 127.0.103.*: their processes are processes of this machine, so
``pgrep -f`` with the log's unique path counts the tails (and any wrapper) still running.
Waits are bounded loops, never timed asserts.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui import cluster as cl
from pdtui.launch.control import launchables
from pdtui.launch.run import LogLine, run_dir, tail
from pdtui.sim.rig import Simulator
from pdtui.ssh.remote import pool_for


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with runbook_sim(tmp_path, "127.0.103") as s:
        yield s


def tails(path: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-a", "-f", f"tail .*{path}"], capture_output=True, text=True)
    return out.stdout.splitlines()


async def none_left(path: Path) -> list[str]:
    """The processes still following ``path`` once they had up to ~10 s to go."""
    for _ in range(100):
        if not tails(path):
            return []
        await asyncio.sleep(0.1)
    return tails(path)


def planted_log(cluster: cl.Cluster) -> tuple[str, Path]:
    item = next(i for i in launchables(cluster) if i.node == "decode-0")
    d = Path(run_dir(cluster.node(item.node), cluster.name, item.name))
    d.mkdir(parents=True, mode=0o700)
    d.parent.chmod(0o700)
    (d / "pid").write_text("999999\n")
    (d / "run_id").write_text("0123456789abcdef\n")
    (d / "out.log").write_text("".join(f"line {i}\n" for i in range(50)))
    return item.name, d / "out.log"


@pytest.mark.slow
async def test_twenty_opens_and_closes_leave_no_tail(sim: Simulator) -> None:
    cluster = cl.load(sim.cluster_file)
    _name, log = planted_log(cluster)
    node = cluster.node("decode-0")
    async with pool_for(cluster) as pool:
        for i in range(20):
            stream = tail(pool, node, str(log))
            assert isinstance(stream, AsyncGenerator)
            got = [await anext(stream) for _ in range(3)]
            assert got[0].text == "line 0"
            if i % 2:
                await stream.aclose()
            else:  # a consumer cancelled while it waits for the next line
                task = asyncio.ensure_future(anext(stream, None))
                async for _ in _until_waiting(task):
                    pass
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await stream.aclose()
        assert await none_left(log) == []


async def _until_waiting(task: asyncio.Future[LogLine | None]) -> AsyncIterator[None]:
    for _ in range(20):  # let it read the rest and block on the live end of the file
        if task.done():
            return
        await asyncio.sleep(0.05)
        yield None


@pytest.mark.slow
async def test_pdtui_logs_follow_leaves_no_tail_after_ctrl_c(sim: Simulator) -> None:
    cluster = cl.load(sim.cluster_file)
    name, log = planted_log(cluster)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pdtui",
        "logs",
        str(sim.cluster_file),
        name,
        "-f",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    for _ in range(50):
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.startswith(b"line 49"):
            break
    assert tails(log)  # it is following
    proc.send_signal(signal.SIGINT)
    await asyncio.wait_for(proc.wait(), 60)
    assert await none_left(log) == []


@pytest.mark.slow
async def test_closing_the_app_leaves_no_tail(sim: Simulator) -> None:
    from textual.widgets import DataTable  # noqa: F401 (the app's widgets load with it)
    from tui.pilot_helpers import wait_for

    from pdtui.settings import Settings
    from pdtui.tui.app import PdTui

    cluster = cl.load(sim.cluster_file)
    for item in launchables(cluster):  # whichever process the Launch view selects has a log
        d = Path(run_dir(cluster.node(item.node), cluster.name, item.name))
        d.mkdir(parents=True, mode=0o700, exist_ok=True)
        d.parent.chmod(0o700)
        (d / "out.log").write_text("line 0\n")
    app = PdTui(cluster, settings=Settings(), persist_settings=False)
    async with app.run_test(size=(190, 40)) as pilot:
        await pilot.press("f5")
        await wait_for(pilot, lambda: bool(tails(sim.dir)), timeout=60)
    assert await none_left(sim.dir) == []

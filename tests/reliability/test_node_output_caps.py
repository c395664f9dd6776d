"""A node that prints without end: every read pdtui makes of it is capped, says so, and
keeps pdtui's memory flat (issue 13 item 5).

Fake nodes over real SSH at 127.0.100.*; the hostile output comes from real commands and
files on them (``head -c 1G /dev/zero``, a 300 MB log line, a 64 MB ranktable).
"""

from __future__ import annotations

import dataclasses
import shlex
import tracemalloc
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import pytest
from simdata import runbook_sim

from pdtui import cluster as cl
from pdtui.launch.control import launchables, process_status
from pdtui.launch.run import run_dir
from pdtui.npu.health import probe_node
from pdtui.ranktable.sync import fetch
from pdtui.sim.rig import Simulator
from pdtui.ssh import SshPool
from pdtui.ssh import pool as pool_module
from pdtui.ssh.remote import pool_for, target

T = TypeVar("T")
GIB = 1 << 30
MIB = 1 << 20
MAX_OUTPUT: int = getattr(pool_module, "MAX_OUTPUT", 16 * MIB)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[cl.Cluster, SshPool, Simulator]]:
    async with runbook_sim(tmp_path, "127.0.100") as sim:
        cluster = cl.load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            yield cluster, pool, sim


async def peak_of(work: Awaitable[T]) -> tuple[T, int]:
    """``work``'s result and the peak of Python allocations while it ran."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = await work
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
async def test_a_command_printing_1_gib_is_cut_and_memory_stays_flat(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _ = rig
    node = target(cluster.node("decode-0"))
    res, peak = await peak_of(pool.run(node, f"head -c {GIB} /dev/zero; echo done", timeout=120))
    assert res.truncated and len(res.stdout) == MAX_OUTPUT
    assert "output cut at" in res.stderr and "done" not in res.stdout
    assert peak < 50 * MIB + MAX_OUTPUT * 3, f"peak {peak / MIB:.0f} MiB"
    # stderr is capped too
    res = await pool.run(node, f"head -c {GIB} /dev/zero >&2", timeout=120)
    assert res.truncated and len(res.stderr) < 2 * MIB
    # an ordinary command is untouched
    res = await pool.run(node, "echo hi", timeout=30)
    assert (res.stdout, res.truncated) == ("hi\n", False)


@pytest.mark.slow
async def test_a_tool_printing_1_gib_on_one_device_cuts_that_call_only(  # type: ignore[no-untyped-def]
    rig, tmp_path: Path
) -> None:
    cluster, pool, sim = rig
    real = sim.dir / "nodes" / "prefill-0" / "bin" / "hccn_tool"
    wrapper = tmp_path / "loud-bin" / "hccn_tool"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/bash\n"
        f"case \" $* \" in *' -i 3 -link '*) head -c {GIB} /dev/zero; exit 0;; "
        "esac\n"
        f'exec {shlex.quote(str(real))} "$@"\n'
    )
    wrapper.chmod(0o755)
    node = dataclasses.replace(cluster.node("prefill-0"), hccn_tool=str(wrapper))
    health, peak = await peak_of(probe_node(pool, node, timeout=60))
    assert peak < 50 * MIB, f"peak {peak / MIB:.0f} MiB"
    link = health.devices[3].raw["link"]
    assert "output cut at" in link.stderr
    other = health.devices[4].raw["link"]
    assert other.rc == 0 and "output cut" not in other.stderr


@pytest.mark.slow
async def test_a_300_mb_log_line_gives_a_cut_status_line(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, _ = rig
    item = next(i for i in launchables(cluster) if i.node == "decode-0")
    d = Path(run_dir(cluster.node(item.node), cluster.name, item.name))
    d.mkdir(parents=True, mode=0o700)
    d.parent.chmod(0o700)
    (d / "pid").write_text("999999\n")
    (d / "run_id").write_text("0123456789abcdef\n")
    with (d / "out.log").open("wb") as f:
        f.write(b"INFO start\n")
        chunk = b"ERROR " + b"x" * (MIB - 6)
        for _ in range(300):
            f.write(chunk)
        f.write(b"\nINFO end\n")
    st, peak = await peak_of(process_status(pool, cluster, item))
    assert peak < 50 * MIB, f"peak {peak / MIB:.0f} MiB"
    assert st.log_tail and st.log_tail[-1] == "INFO end"
    assert any("[line cut at" in x and len(x) < 10_000 for x in st.log_tail)


async def test_ranktable_diff_reads_a_capped_copy(rig) -> None:  # type: ignore[no-untyped-def]
    cluster, pool, sim = rig
    node = cluster.node("decode-0")
    huge = sim.dir / "huge-ranktable.json"
    with huge.open("wb") as f:
        f.write(b'{"x": "')
        for _ in range(64):
            f.write(b"y" * MIB)
        f.write(b'"}')
    copy, peak = await peak_of(fetch(pool, node, str(huge), "{}"))
    assert peak < 50 * MIB, f"peak {peak / MIB:.0f} MiB"
    assert copy.text is None and copy.error is not None and "larger than" in copy.error

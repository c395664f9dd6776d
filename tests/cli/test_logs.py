"""`pdtui logs` through a real subprocess against the simulator: a start that fails with port
16666 taken, which only the CANN plog names; `-f` ends by itself once the process has exited."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from simdata import runbook_sim

from pdtui.cluster import load
from pdtui.launch.control import launch, stop_all, wait_ready
from pdtui.npu.health import sweep
from pdtui.ranktable import dumps, generate
from pdtui.ranktable.sync import push
from pdtui.ssh.remote import pool_for


async def _logs(cluster: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pdtui",
        "logs",
        str(cluster),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)  # a guard, not a measure
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow
async def test_plog_shows_the_cause_stdout_lacks_and_follow_ends_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDTUI_SIM_VLLM_SPEED", "0.2")
    async with runbook_sim(tmp_path, "127.0.111", "decode-0:crash-on-start=port") as sim:
        cluster = load(sim.cluster_file)
        async with pool_for(cluster) as pool:
            live = {n.name: n for n in await sweep(pool, cluster)}
            await push(pool, cluster, dumps(generate(cluster, live)))
            await launch(pool, cluster, ["decode-0"])
            final = await wait_ready(pool, cluster, ["decode-0"], timeout=60, interval=0.3)
            assert final[0].state == "failed"
            c = sim.cluster_file
            rc, out, err = await _logs(c, "decode-0")
            assert rc == 0 and "HCCL function error" in out, err
            assert "16666" not in out  # stdout has torch_npu's generic error only
            rc, out, err = await _logs(c, "decode-0", "--plog")
            assert rc == 0, err
            head, *records = out.splitlines()
            assert head.startswith(f"==> {final[0].run.dir}/debug/plog/plog-")
            assert "specific port[16666] fail" in records[0]
            rc, out, err = await _logs(c, "decode-0", "--plog", "-f")
            assert rc == 0 and "specific port[16666] fail" in out.splitlines()[0], err
            assert "following " in err and "decode-0 is not running" in err
            rc, out, err = await _logs(c, "decode-0", "-f", "-n", "5")
            assert rc == 0 and len(out.splitlines()) == 5, err
            assert "decode-0 is not running: that was the end of its log" in err
            rc, _out, err = await _logs(c, "prefill-0", "--plog")
            assert rc == 1 and "prefill-0: no CANN log of this run in " in err
            await stop_all(pool, cluster, grace=5)
